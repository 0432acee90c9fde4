//! pytest's `--durations` section: the slowest phases first, those under
//! `--durations-min` counted in a note rather than listed.

use super::render::sep;
use super::{push_line, RunReport};
use crate::protocol::{PhaseRecord, When};

impl RunReport {
    pub(super) fn durations_section(&self, out: &mut String) {
        let Some(limit) = self.settings.durations else { return };
        let mut phases: Vec<(&str, &PhaseRecord)> = self
            .results
            .iter()
            .flat_map(|r| r.phases.iter().filter(|p| p.when != When::Crash).map(move |p| (r.id.as_str(), p)))
            .collect();
        if phases.is_empty() {
            return;
        }
        phases.sort_by(|a, b| b.1.duration.total_cmp(&a.1.duration));
        let title = if limit == 0 { "slowest durations".to_string() } else { format!("slowest {limit} durations") };
        if limit > 0 {
            phases.truncate(limit);
        }
        push_line(out, &sep('=', Some(&title), self.settings.width));
        let min = self.settings.durations_min;
        for (i, (nodeid, phase)) in phases.iter().enumerate() {
            if phase.duration < min {
                let hint = if self.settings.durations_hint { "  Use -vv to show these durations." } else { "" };
                out.push_str(&format!("\n({} durations < {}s hidden.{hint})\n", phases.len() - i, format_g(min)));
                break;
            }
            out.push_str(&format!("{:.2}s {:<8} {nodeid}\n", phase.duration, phase.when));
        }
    }
}

/// Python's `format(x, "g")` for the small values `--durations-min` takes.
fn format_g(x: f64) -> String {
    let text = format!("{x}");
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e16) {
        return format!("{x:e}");
    }
    text
}
