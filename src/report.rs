//! What the user sees of a run: per-test progress lines and pytest's closing
//! sections (ERRORS, FAILURES, warnings summary, short test summary, the
//! counts line), built from the records workers send.
//!
//! Failure text is formatted by pytest in the worker (so `--tb`, `-l`, `-vv`
//! apply); this module only arranges it as pytest's terminal reporter would.
//! Sections list tests in collection order, not completion order, so a
//! parallel run reads the same as a serial one.

use crate::protocol::{CollectReport, Inventory, PhaseRecord, WarningRecord};
use crate::render::{markup, sep, session_duration, trimmed_message, Counts, Mark};

/// Settings pytest resolved in the zygote, and ours.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub verbosity: i32,
    pub reportchars: String,
    pub tbstyle: String,
    pub summary_untrimmed: bool,
    pub no_summary: bool,
    pub fold_skipped: bool,
    pub xfail_tb: bool,
    pub max_warnings: Option<usize>,
    pub show_capture: String,
    pub junitxml: Option<String>,
    /// `--durations=N` (0: all); `None` without the flag.
    pub durations: Option<usize>,
    pub durations_min: f64,
    /// Whether pytest adds "Use -vv to show these durations." to the hidden note.
    pub durations_hint: bool,
    pub width: usize,
    pub color: bool,
    /// pytest's (major, minor), for output that changed between versions.
    pub pytest_version: (u32, u32),
}

impl ReportSettings {
    pub fn from_inventory(inv: &Inventory, width: usize, color: bool) -> Self {
        ReportSettings {
            verbosity: inv.verbosity,
            reportchars: inv.reportchars.clone(),
            tbstyle: inv.tbstyle.clone(),
            summary_untrimmed: inv.summary_untrimmed,
            no_summary: inv.no_summary,
            fold_skipped: inv.fold_skipped,
            xfail_tb: inv.xfail_tb,
            max_warnings: inv.max_warnings,
            show_capture: inv.show_capture.clone(),
            junitxml: inv.junitxml.clone(),
            durations: inv.durations,
            durations_min: inv.durations_min,
            durations_hint: inv.durations_hint,
            width,
            color,
            pytest_version: inv.pytest_version,
        }
    }
}

/// A finished test as the reporter keeps it.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub index: usize,
    /// The id pytest shows (relative to the invocation directory).
    pub nodeid: String,
    /// The rootdir-relative node id, as in pytest's report objects.
    pub id: String,
    pub worker: usize,
    pub phases: Vec<PhaseRecord>,
    pub warnings: Vec<WarningRecord>,
    /// Tries it took (`--retries`): more than one and passed is FLAKY.
    pub tries: usize,
}

impl TestResult {
    /// Passed on a later try (`--retries`).
    pub fn flaky(&self) -> bool {
        self.tries > 1 && !self.phases.iter().any(|p| p.outcome == "failed" && p.wasxfail.is_none())
    }
}

/// What a flaky test shows instead of PASSED, and its `-q` letter.
const FLAKY_WORD: &str = "FLAKY";
const FLAKY_LETTER: &str = "K";
/// The `-q` letter of a failed try that will be retried (pytest-rerunfailures' R).
const RETRY_LETTER: &str = "R";

/// A folded skip: (path, line, reason), as pytest's short summary groups them.
type SkipKeyTuple = (String, Option<i64>, String);

/// Why a run ended before every test ran, and how pytest words it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The `!!! ... !!!` banner: "stopping after 1 failures", "KeyboardInterrupt".
    pub banner: String,
    /// Lines under the banner (where a KeyboardInterrupt was raised).
    pub detail: Vec<String>,
    /// pytest prints the banner after the counts line when `pytest.exit()`
    /// chose an exit code other than "interrupted".
    pub after_counts: bool,
    /// pytest skips its summary sections for exit codes outside 0-2, 4, 5.
    pub sections: bool,
}

impl Stopped {
    /// A stop that pytest reports before its counts line, with sections.
    pub fn plain(banner: impl Into<String>) -> Self {
        Stopped { banner: banner.into(), detail: Vec::new(), after_counts: false, sections: true }
    }
}

/// The reporter's state: everything needed for the closing sections.
pub struct RunReport {
    settings: ReportSettings,
    results: Vec<TestResult>,
    collect_reports: Vec<CollectReport>,
    collect_warnings: Vec<WarningRecord>,
    counts: Counts,
    column: usize,
    /// What plugins wrote in `pytest_terminal_summary`, printed in its place.
    plugin_summary: String,
}

impl RunReport {
    pub fn new(settings: ReportSettings, inv: &Inventory) -> Self {
        let mut counts = Counts::default();
        counts.add("deselected", inv.deselected);
        counts.add("warnings", inv.warnings.len());
        for report in &inv.collect_reports {
            counts.add(if report.outcome == "failed" { "error" } else { "skipped" }, 1);
        }
        RunReport {
            settings,
            results: Vec::new(),
            collect_reports: inv.collect_reports.clone(),
            collect_warnings: inv.warnings.clone(),
            counts,
            column: 0,
            plugin_summary: String::new(),
        }
    }

    fn paint(&self, marks: &[Mark], text: &str) -> String {
        if self.settings.color {
            markup(text, marks)
        } else {
            text.to_string()
        }
    }

    /// pytest's `_get_node_id_with_markup`: the part after the file in bold.
    fn nodeid(&self, nodeid: &str) -> String {
        match nodeid.split_once("::") {
            Some((path, rest)) => format!("{path}::{}", self.paint(&[Mark::Bold], rest)),
            None => nodeid.to_string(),
        }
    }

    /// Records a finished test; returns the progress text to print for it.
    pub fn record(&mut self, result: TestResult) -> String {
        let mut out = String::new();
        let flaky = result.flaky();
        if flaky {
            self.counts.add("flaky", 1);
        }
        for phase in &result.phases {
            self.counts.add(&phase.category, 1);
            if phase.letter.is_empty() && phase.word.is_empty() {
                continue;
            }
            let (mark, letter, word) = match flaky && phase.when == "call" {
                true => (Mark::Yellow, FLAKY_LETTER, format!("{FLAKY_WORD} (passed on try {})", result.tries)),
                false => (word_style(phase), phase.letter.as_str(), phase.word.clone()),
            };
            out += &self.progress(&result.nodeid, result.worker, &[mark], letter, &word);
        }
        self.counts.add("warnings", result.warnings.len());
        self.results.push(result);
        out
    }

    /// A failed try that goes back in the queue (`--retries`): its line
    /// (`path::test FAILED (try 1 of 3, retrying)`) or, under `-q`, an R.
    pub fn retrying(
        &mut self,
        nodeid: &str,
        worker: usize,
        failed: Option<&PhaseRecord>,
        (n, of): (usize, usize),
    ) -> String {
        let word = failed.map_or("CRASHED", |p| p.word.as_str());
        let word = if word.is_empty() { "FAILED" } else { word };
        self.progress(nodeid, worker, &[Mark::Red], RETRY_LETTER, &format!("{word} (try {n} of {of}, retrying)"))
    }

    /// One progress item: a letter under `-q`, else a line (with the worker under `-v`).
    fn progress(&mut self, nodeid: &str, worker: usize, style: &[Mark], letter: &str, word: &str) -> String {
        let mut out = String::new();
        if self.settings.verbosity < 0 {
            if self.column >= self.settings.width {
                out.push('\n');
                self.column = 0;
            }
            out += &self.paint(style, letter);
            self.column += letter.chars().count();
            return out;
        }
        if self.settings.verbosity > 0 {
            out += &format!("[worker {worker}] ");
        }
        out + &format!("{nodeid} {}\n", self.paint(style, word))
    }

    /// Everything after the last test: `notes` (one line each), then
    /// pytest's closing sections and counts line.
    pub fn add_plugin_summary(&mut self, text: &str) {
        self.plugin_summary.push_str(text);
    }

    /// The junit file was not written: leave out "generated xml file".
    pub fn forget_junit(&mut self) {
        self.settings.junitxml = None;
    }

    pub fn summary(&mut self, elapsed: f64, stopped: Option<&Stopped>, notes: &[String]) -> String {
        let mut out = String::new();
        if self.settings.verbosity < 0 && self.column > 0 {
            out.push('\n');
            self.column = 0;
        } else if self.settings.verbosity >= 0 {
            // pytest leaves a blank line between the progress and the sections.
            out.push('\n');
        }
        notes.iter().for_each(|note| push_text(&mut out, note));
        self.results.sort_by_key(|r| r.index);
        let since_8 = self.settings.pytest_version >= (8, 0);
        if !self.settings.no_summary && stopped.is_none_or(|s| s.sections) {
            self.errors_section(&mut out);
            self.failures_section(&mut out, "failed", "FAILURES");
            if since_8 && self.settings.xfail_tb {
                self.failures_section(&mut out, "xfailed", "XFAILURES");
            }
            self.warnings_section(&mut out);
            if self.settings.reportchars.contains('P') {
                self.passes_section(&mut out, "passed", "PASSES");
            }
            if since_8 && self.settings.reportchars.contains('X') {
                self.passes_section(&mut out, "xpassed", "XPASSES");
            }
            // pytest 9 leaves this line out at -q; older versions print it always.
            let junit_line = self.settings.verbosity >= 0 || self.settings.pytest_version < (9, 0);
            if let Some(path) = self.settings.junitxml.as_ref().filter(|_| junit_line) {
                out += &sep('-', Some(&format!("generated xml file: {path}")), self.settings.width);
                out.push('\n');
            }
            out += &self.plugin_summary;
            self.durations_section(&mut out);
            self.short_summary(&mut out);
        }
        let stopped = stopped.filter(|s| !s.banner.is_empty());
        if self.max_warnings_exceeded(stopped.is_some()) {
            let (count, max) = (self.counts.get("warnings"), self.settings.max_warnings.unwrap_or(0));
            let line = format!("Tests pass, but maximum allowed warnings exceeded: {count} > {max}");
            out += &self.paint(&[Mark::Red], &line);
            out.push('\n');
        }
        if let Some(stopped) = stopped.filter(|s| !s.after_counts) {
            self.banner(&mut out, stopped);
        }
        self.counts_line(&mut out, elapsed);
        if let Some(stopped) = stopped.filter(|s| s.after_counts) {
            self.banner(&mut out, stopped);
        }
        out
    }

    /// pytest's summary_stats: `=`-framed, bare under `-q`, absent under `-qq`.
    fn counts_line(&self, out: &mut String, elapsed: f64) {
        if self.settings.verbosity < -1 {
            return;
        }
        let duration = session_duration(elapsed);
        let width = (self.settings.verbosity >= 0).then_some(self.settings.width);
        if self.settings.color {
            *out += &self.counts.colored_line(&duration, width);
        } else {
            let line = format!("{} in {duration}", self.counts.phrase());
            *out += &width.map_or(line.clone(), |width| sep('=', Some(&line), width));
        }
        out.push('\n');
    }

    /// pytest's `--durations` section: every phase, slowest first; those
    /// under `--durations-min` are counted, not listed.
    fn durations_section(&self, out: &mut String) {
        let Some(limit) = self.settings.durations else { return };
        let mut phases: Vec<(&str, &PhaseRecord)> = self
            .results
            .iter()
            .flat_map(|r| r.phases.iter().filter(|p| p.when != "crash").map(move |p| (r.id.as_str(), p)))
            .collect();
        if phases.is_empty() {
            return;
        }
        phases.sort_by(|a, b| b.1.duration.total_cmp(&a.1.duration));
        let title = if limit == 0 { "slowest durations".to_string() } else { format!("slowest {limit} durations") };
        if limit > 0 {
            phases.truncate(limit);
        }
        out.push_str(&sep('=', Some(&title), self.settings.width));
        out.push('\n');
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

    fn banner(&self, out: &mut String, stopped: &Stopped) {
        out.push_str(&self.paint(&[Mark::Red], &sep('!', Some(&stopped.banner), self.settings.width)));
        out.push('\n');
        for line in &stopped.detail {
            out.push_str(line);
            out.push('\n');
        }
    }

    /// pytest's `--max-warnings` check: everything passed, too many warnings.
    pub fn max_warnings_exceeded(&self, interrupted: bool) -> bool {
        let passed = !interrupted && self.counts.get("failed") == 0 && self.counts.get("error") == 0;
        passed && self.settings.max_warnings.is_some_and(|max| self.counts.get("warnings") > max)
    }

    fn failed_phases(&self, category: &str) -> Vec<(&TestResult, &PhaseRecord)> {
        self.results
            .iter()
            .flat_map(|r| r.phases.iter().filter(|p| p.category == category).map(move |p| (r, p)))
            .collect()
    }

    fn heading(&self, title: &str) -> String {
        self.heading_in(&[Mark::Red, Mark::Bold], title)
    }

    fn heading_in(&self, marks: &[Mark], title: &str) -> String {
        format!("{}\n", self.paint(marks, &sep('_', Some(title), self.settings.width)))
    }

    fn errors_section(&self, out: &mut String) {
        let phases = self.failed_phases("error");
        let collect_errors: Vec<_> = self.collect_reports.iter().filter(|c| c.outcome == "failed").collect();
        if self.settings.tbstyle == "no" || (phases.is_empty() && collect_errors.is_empty()) {
            return;
        }
        *out += &sep('=', Some("ERRORS"), self.settings.width);
        out.push('\n');
        for report in collect_errors {
            *out += &self.heading(&format!("ERROR collecting {}", report.id));
            push_text(out, &report.longrepr);
        }
        for (result, phase) in phases {
            let head = head_line(result, phase);
            *out += &self.heading(&format!("ERROR at {} of {head}", phase.when));
            self.outrep(out, phase);
        }
    }

    /// The phases of `category` after a `== title ==` rule; none, and no rule,
    /// when there are none or `--tb=no` hides such sections.
    fn section_phases(&self, out: &mut String, category: &str, title: &str) -> Vec<(&TestResult, &PhaseRecord)> {
        let phases = self.failed_phases(category);
        if self.settings.tbstyle == "no" || phases.is_empty() {
            return Vec::new();
        }
        *out += &sep('=', Some(title), self.settings.width);
        out.push('\n');
        phases
    }

    /// pytest's `summary_failures_combined`: FAILURES, or XFAILURES (`--xfail-tb`).
    fn failures_section(&self, out: &mut String, category: &str, title: &str) {
        for (result, phase) in self.section_phases(out, category, title) {
            if self.settings.tbstyle == "line" {
                // pytest 9: the report as formatted, then its crash line;
                // pytest<9: the crash line alone.
                if self.settings.pytest_version >= (9, 0) {
                    self.outrep(out, phase);
                }
                push_text(out, phase.crash_line.as_deref().unwrap_or(""));
                continue;
            }
            *out += &self.heading(&head_line(result, phase));
            self.outrep(out, phase);
            self.teardown_sections(out, result);
        }
    }

    /// pytest's `summary_passes_combined`: PASSES (`-rP`) or XPASSES (`-rX`,
    /// pytest>=8), the captured output of tests that passed.
    fn passes_section(&self, out: &mut String, category: &str, title: &str) {
        for (result, phase) in self.section_phases(out, category, title) {
            if !phase.sections.is_empty() {
                *out += &self.heading_in(&[Mark::Green, Mark::Bold], &head_line(result, phase));
                self.outrep(out, phase);
            }
            self.teardown_sections(out, result);
        }
    }

    /// pytest's `_outrep_summary`: the traceback, then captured output.
    fn outrep(&self, out: &mut String, phase: &PhaseRecord) {
        if let Some(text) = &phase.longrepr {
            push_text(out, text);
        }
        self.captured(out, phase, |_| true);
    }

    /// Output a passing teardown captured, shown under the test's failure.
    fn teardown_sections(&self, out: &mut String, result: &TestResult) {
        for phase in result.phases.iter().filter(|p| p.when == "teardown" && p.category.is_empty()) {
            self.captured(out, phase, |name| name.contains("teardown"));
        }
    }

    /// The captured-output sections `--show-capture` lets through.
    fn captured(&self, out: &mut String, phase: &PhaseRecord, wanted: impl Fn(&str) -> bool) {
        let show = self.settings.show_capture.as_str();
        if show == "no" {
            return;
        }
        for (name, content) in &phase.sections {
            if (show == "all" || name.contains(show)) && wanted(name) {
                *out += &sep('-', Some(name), self.settings.width);
                out.push('\n');
                push_text(out, content.strip_suffix('\n').unwrap_or(content));
            }
        }
    }

    fn warnings_section(&self, out: &mut String) {
        if !self.settings.reportchars.contains('w') {
            return;
        }
        let all: Vec<&WarningRecord> =
            self.collect_warnings.iter().chain(self.results.iter().flat_map(|r| r.warnings.iter())).collect();
        if all.is_empty() {
            return;
        }
        let mut groups: Vec<(&str, Vec<&WarningRecord>)> = Vec::new();
        for w in all {
            match groups.iter_mut().find(|(m, _)| *m == w.message) {
                Some((_, list)) => list.push(w),
                None => groups.push((&w.message, vec![w])),
            }
        }
        *out += &self.paint(&[Mark::Yellow], &sep('=', Some("warnings summary"), self.settings.width));
        out.push('\n');
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
        out.push_str("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n");
    }

    fn short_summary(&self, out: &mut String) {
        let mut lines = Vec::new();
        for ch in self.settings.reportchars.chars() {
            match ch {
                'f' => {
                    self.simple_lines(&mut lines, "failed");
                    self.flaky_lines(&mut lines);
                }
                'E' => self.simple_lines(&mut lines, "error"),
                'p' => self.simple_lines(&mut lines, "passed"),
                'x' => self.xfail_lines(&mut lines, "xfailed"),
                'X' => self.xfail_lines(&mut lines, "xpassed"),
                's' | 'S' => self.skip_lines(&mut lines),
                _ => {}
            }
        }
        if lines.is_empty() {
            return;
        }
        let title = sep('=', Some("short test summary info"), self.settings.width);
        *out += &self.paint(&[Mark::Cyan, Mark::Bold], &title);
        out.push('\n');
        for line in lines {
            *out += &line;
            out.push('\n');
        }
    }

    /// pytest's `_get_line_with_reprcrash_message`.
    fn simple_lines(&self, lines: &mut Vec<String>, category: &str) {
        if category == "error" {
            for report in self.collect_reports.iter().filter(|c| c.outcome == "failed") {
                lines.push(format!("{} {}", self.paint(&[Mark::Red], "ERROR"), self.nodeid(&report.id)));
            }
        }
        for (result, phase) in self.failed_phases(category) {
            let word = self.paint(&[word_style(phase)], &phase.word);
            let mut line = format!("{} {}", word, self.nodeid(&result.nodeid));
            if let Some(msg) = &phase.crash {
                // pytest measures the line with wcswidth, which is -1 when the
                // line holds escape sequences: colour leaves one column more.
                let used = if self.settings.color {
                    -1
                } else {
                    (phase.word.chars().count() + 1 + result.nodeid.chars().count()) as isize
                };
                if self.settings.summary_untrimmed {
                    line += &format!(" - {msg}");
                } else if let Some(m) = trimmed_message(msg, self.settings.width as isize - used) {
                    line += &m;
                }
            }
            lines.push(line);
        }
    }

    /// `--retries`: each test that passed on a later try, with that try.
    fn flaky_lines(&self, lines: &mut Vec<String>) {
        for result in self.results.iter().filter(|r| r.flaky()) {
            let word = self.paint(&[Mark::Yellow], FLAKY_WORD);
            lines.push(format!("{word} {} - passed on try {}", self.nodeid(&result.nodeid), result.tries));
        }
    }

    fn xfail_lines(&self, lines: &mut Vec<String>, category: &str) {
        let version = self.settings.pytest_version;
        for (result, phase) in self.failed_phases(category) {
            let mut line = self.paint(&[Mark::Yellow], &phase.word);
            if category == "xfailed" && phase.when != "call" && version >= (9, 0) {
                line += &format!(" at {} of", phase.when);
            }
            line += &format!(" {}", self.nodeid(&result.nodeid));
            let reason = phase.wasxfail.as_deref().unwrap_or("");
            if category == "xpassed" && version < (8, 0) {
                line += &format!(" {reason}"); // pytest<8: no dash, even without a reason
            } else if !reason.is_empty() {
                line += &format!(" - {reason}");
            }
            lines.push(line);
        }
    }

    fn skip_lines(&self, lines: &mut Vec<String>) {
        let word = self.paint(&[Mark::Yellow], "SKIPPED");
        if !self.settings.fold_skipped {
            // --no-fold-skipped: one line per skip, the reason as it was given.
            let collected = self.collect_reports.iter().filter_map(|c| Some((c.id.as_str(), c.skip.as_ref()?)));
            let phases = self.failed_phases("skipped");
            let ran = phases.iter().filter_map(|(r, p)| Some((r.nodeid.as_str(), p.skip.as_ref()?)));
            for (nodeid, (_, _, reason)) in collected.chain(ran) {
                let mut line = format!("{word} {}", self.nodeid(nodeid));
                if !reason.is_empty() {
                    line += &format!(" - {reason}");
                }
                lines.push(line);
            }
            return;
        }
        let mut folded: Vec<(SkipKeyTuple, usize)> = Vec::new();
        let keys = self
            .collect_reports
            .iter()
            .filter_map(|c| c.skip.clone())
            .chain(self.failed_phases("skipped").into_iter().filter_map(|(_, p)| p.skip.clone()));
        for key in keys {
            match folded.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => folded.push((key, 1)),
            }
        }
        for ((path, line, reason), n) in folded {
            let reason = reason.strip_prefix("Skipped: ").unwrap_or(&reason);
            lines.push(match line {
                Some(line) => format!("{word} [{n}] {path}:{line}: {reason}"),
                None => format!("{word} [{n}] {path}: {reason}"),
            });
        }
    }
}

/// pytest's colours for an outcome word.
fn word_style(phase: &PhaseRecord) -> Mark {
    match (phase.outcome.as_str(), phase.wasxfail.is_some()) {
        ("passed", false) => Mark::Green,
        ("failed", _) => Mark::Red,
        _ => Mark::Yellow,
    }
}

fn head_line(result: &TestResult, phase: &PhaseRecord) -> String {
    phase.head_line.clone().unwrap_or_else(|| domain_of(&result.nodeid))
}

/// `tests/test_a.py::TestX::test_y[1]` -> `TestX.test_y[1]`, as pytest's head line.
/// Python's `format(x, "g")` for the small values `--durations-min` takes.
fn format_g(x: f64) -> String {
    let text = format!("{x}");
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e16) {
        return format!("{x:e}");
    }
    text
}

pub fn domain_of(nodeid: &str) -> String {
    match nodeid.split_once("::") {
        Some((_, rest)) => rest.replace("::", "."),
        None => nodeid.to_string(),
    }
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

fn push_text(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}
