//! pytest's `warnings summary` (`-rw`, on by default): the warnings of
//! collection, of every test and of the session's end, grouped by message, each group under the
//! places that raised it (per-file counts from ten places on).

use super::render::{sep, Mark};
use super::{push_line, push_text, RunReport};
use crate::protocol::WarningRecord;

/// Where the section sends readers, as pytest does.
const DOCS_LINE: &str = "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n";

impl RunReport {
    pub(super) fn warnings_section(&self, out: &mut String) {
        if !self.settings.reportchars.contains('w') {
            return;
        }
        let tests = self.results.iter().flat_map(|r| r.warnings.iter());
        let all = self.collect_warnings.iter().chain(tests).chain(&self.session_end_warnings);
        let groups = group_by_message(all);
        if groups.is_empty() {
            return;
        }
        push_line(out, &self.paint(&[Mark::Yellow], &sep('=', Some("warnings summary"), self.settings.width)));
        for (message, reports) in groups {
            let locations: Vec<&str> = reports.iter().filter_map(|w| w.location.as_deref()).collect();
            if locations.is_empty() {
                push_text(out, message.trim_end());
            } else {
                push_text(out, &collapse_locations(&locations));
                let indented: Vec<String> = message.lines().map(|l| format!("  {l}")).collect();
                push_text(out, indented.join("\n").trim_end());
            }
            out.push('\n');
        }
        out.push_str(DOCS_LINE);
    }
}

/// The warnings by message, in the order each message first appeared.
fn group_by_message<'a>(all: impl Iterator<Item = &'a WarningRecord>) -> Vec<(&'a str, Vec<&'a WarningRecord>)> {
    let mut groups: Vec<(&str, Vec<&WarningRecord>)> = Vec::new();
    for w in all {
        match groups.iter_mut().find(|(m, _)| *m == w.message) {
            Some((_, list)) => list.push(w),
            None => groups.push((&w.message, vec![w])),
        }
    }
    groups
}

/// pytest's `collapsed_location_report`: ten or more become per-file counts.
fn collapse_locations(locations: &[&str]) -> String {
    if locations.len() < 10 {
        return locations.join("\n");
    }
    let mut files: Vec<(&str, usize)> = Vec::new();
    for loc in locations {
        let file = loc.split("::").next().unwrap_or(loc);
        match files.iter_mut().find(|(f, _)| *f == file) {
            Some((_, n)) => *n += 1,
            None => files.push((file, 1)),
        }
    }
    files
        .iter()
        .map(|(f, n)| format!("{f}: {n} warning{}", if *n > 1 { "s" } else { "" }))
        .collect::<Vec<_>>()
        .join("\n")
}
