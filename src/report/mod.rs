//! What the user sees of a run: per-test progress lines and pytest's closing
//! sections (ERRORS, FAILURES, warnings summary, short test summary, the
//! counts line), built from the records workers send.
//!
//! Failure text is formatted by pytest in the worker (so `--tb`, `-l`, `-vv`
//! apply); this module only arranges it as pytest's terminal reporter would.
//! Sections list tests in collection order, not completion order, so a
//! parallel run reads the same as a serial one.
//!
//! `RunReport` holds the run's records; each submodule adds one part of the
//! text: `progress` (the line per test), `summary` (the closing text in
//! order, its banner and counts line), `sections` (ERRORS, FAILURES,
//! PASSES), `warnings`, `durations`, `short_summary`. `result` holds the
//! record types, `render` and `counts` pytest's markup and wording, `live`
//! the status under the progress on a terminal. Only `terminal` writes to a
//! stream: it is the sink that takes the run's events (`events`) and prints
//! what the others return; the Reporter actor only carries messages to it.

mod counts;
mod durations;
pub mod events;
pub mod junit;
pub mod live;
mod progress;
pub mod render;
mod result;
mod sections;
mod short_summary;
mod summary;
pub mod terminal;
mod warnings;

#[cfg(test)]
mod tests;

pub use result::{domain_of, Stopped, TestResult};
pub use summary::RESULT_FILE_VAR;

use crate::protocol::{CollectReport, Inventory, PhaseRecord, WarningRecord};
use counts::Counts;
use render::{markup, Mark};

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
    pub instafail: bool,
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
            instafail: inv.instafail,
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

/// What collection left for the closing sections: deselected tests,
/// failed or skipped collectors, warnings raised while collecting.
pub struct Collection {
    pub deselected: usize,
    /// Of those, left out by `--affected`: "N deselected (unaffected)".
    pub unaffected: usize,
    pub reports: Vec<CollectReport>,
    pub warnings: Vec<WarningRecord>,
}

impl Collection {
    pub fn of(inv: &Inventory) -> Self {
        Collection {
            deselected: inv.deselected,
            unaffected: inv.unaffected,
            reports: inv.collect_reports.clone(),
            warnings: inv.warnings.clone(),
        }
    }
}

/// The reporter's state: everything needed for the closing sections.
pub struct RunReport {
    settings: ReportSettings,
    results: Vec<TestResult>,
    collect_reports: Vec<CollectReport>,
    collect_warnings: Vec<WarningRecord>,
    /// Recorded while pytest ended the session (the cache's), shown last.
    session_end_warnings: Vec<WarningRecord>,
    counts: Counts,
    /// Letters on the current `-q` progress line.
    column: usize,
    /// What plugins wrote in `pytest_terminal_summary`, printed in its place.
    plugin_summary: String,
}

impl RunReport {
    pub fn new(settings: ReportSettings, collection: Collection) -> Self {
        let mut counts = Counts::default();
        counts.add("deselected", collection.deselected);
        counts.unaffected = collection.unaffected;
        counts.add("warnings", collection.warnings.len());
        for report in &collection.reports {
            counts.add(if report.outcome == "failed" { "error" } else { "skipped" }, 1);
        }
        RunReport {
            settings,
            results: Vec::new(),
            collect_reports: collection.reports,
            collect_warnings: collection.warnings,
            session_end_warnings: Vec::new(),
            counts,
            column: 0,
            plugin_summary: String::new(),
        }
    }

    /// What plugins' `pytest_terminal_summary` hooks wrote, shown in its place.
    pub fn add_plugin_summary(&mut self, text: &str) {
        self.plugin_summary.push_str(text);
    }

    /// Warnings recorded as pytest ended the session: pytest counts them
    /// and shows them in its warnings summary, as any other.
    pub fn add_session_end_warnings(&mut self, warnings: Vec<WarningRecord>) {
        self.counts.add("warnings", warnings.len());
        self.session_end_warnings.extend(warnings);
    }

    /// The junit file was not written: leave out "generated xml file".
    pub fn forget_junit(&mut self) {
        self.settings.junitxml = None;
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

    /// Every phase of `category`, with its test, in collection order once
    /// `summary` has sorted the results.
    fn phases_of(&self, category: &str) -> Vec<(&TestResult, &PhaseRecord)> {
        self.results
            .iter()
            .flat_map(|r| r.phases.iter().filter(|p| p.category == category).map(move |p| (r, p)))
            .collect()
    }

    /// The failed collectors, whose errors lead ERRORS and the `E` lines.
    fn collect_errors(&self) -> impl Iterator<Item = &CollectReport> {
        self.collect_reports.iter().filter(|c| c.outcome == "failed")
    }
}

/// Appends `text`, ending it with a newline if it has none.
fn push_text(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}

/// Appends `line` and a newline.
fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}
