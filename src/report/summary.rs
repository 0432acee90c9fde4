//! Everything after the last test, in pytest's order: notes, the sections
//! (ERRORS, FAILURES, warnings, PASSES, the junit line, plugins' text,
//! durations, the short summary), a stop's `!!! ... !!!` banner and the
//! counts line, `N passed in X.XXs`. The sections themselves are built in
//! the sibling modules; this one decides which appear and where.

use super::render::{sep, session_duration, Mark};
use super::{push_line, push_text, RunReport, Stopped};

impl RunReport {
    /// Everything after the last test: `notes` (one line each), then
    /// pytest's closing sections and counts line. `elapsed` is the run's
    /// wall time in seconds.
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
        if !self.settings.no_summary && stopped.is_none_or(|s| s.sections) {
            self.sections(&mut out);
        }
        let stopped = stopped.filter(|s| !s.banner.is_empty());
        if self.max_warnings_exceeded(stopped.is_some()) {
            let (count, max) = (self.counts.get("warnings"), self.settings.max_warnings.unwrap_or(0));
            let line = format!("Tests pass, but maximum allowed warnings exceeded: {count} > {max}");
            push_line(&mut out, &self.paint(&[Mark::Red], &line));
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

    /// pytest's `--max-warnings` check: everything passed, too many warnings.
    pub fn max_warnings_exceeded(&self, interrupted: bool) -> bool {
        let passed = !interrupted && self.counts.get("failed") == 0 && self.counts.get("error") == 0;
        passed && self.settings.max_warnings.is_some_and(|max| self.counts.get("warnings") > max)
    }

    /// The sections between the progress and the counts line, in
    /// pytest's order (its `pytest_terminal_summary` and `summary_*` calls).
    pub(super) fn sections(&self, out: &mut String) {
        let since_8 = self.settings.pytest_version >= (8, 0);
        self.errors_section(out);
        if !self.settings.instafail {
            self.failures_section(out, "failed", "FAILURES");
        }
        if since_8 && self.settings.xfail_tb {
            self.failures_section(out, "xfailed", "XFAILURES");
        }
        self.warnings_section(out);
        if self.settings.reportchars.contains('P') {
            self.passes_section(out, "passed", "PASSES");
        }
        if since_8 && self.settings.reportchars.contains('X') {
            self.passes_section(out, "xpassed", "XPASSES");
        }
        self.junit_line(out);
        *out += &self.plugin_summary;
        self.durations_section(out);
        self.short_summary(out);
    }

    /// `--- generated xml file: PATH ---`; pytest 9 leaves it out at -q,
    /// older versions print it always.
    fn junit_line(&self, out: &mut String) {
        let shown = self.settings.verbosity >= 0 || self.settings.pytest_version < (9, 0);
        if let Some(path) = self.settings.junitxml.as_ref().filter(|_| shown) {
            push_line(out, &sep('-', Some(&format!("generated xml file: {path}")), self.settings.width));
        }
    }

    /// pytest's summary_stats: `=`-framed, bare under `-q`, absent under `-qq`.
    fn counts_line(&self, out: &mut String, elapsed: f64) {
        let duration = session_duration(elapsed);
        tell_the_watch(&format!("{} in {duration}", self.counts.phrase()));
        if self.settings.verbosity < -1 {
            return;
        }
        let width = (self.settings.verbosity >= 0).then_some(self.settings.width);
        if self.settings.color {
            *out += &self.counts.colored_line(&duration, width);
        } else {
            let line = format!("{} in {duration}", self.counts.phrase());
            *out += &width.map_or(line.clone(), |width| sep('=', Some(&line), width));
        }
        out.push('\n');
    }

    /// The `!!! banner !!!` rule in red, and the lines under it.
    fn banner(&self, out: &mut String, stopped: &Stopped) {
        push_line(out, &self.paint(&[Mark::Red], &sep('!', Some(&stopped.banner), self.settings.width)));
        for line in &stopped.detail {
            push_line(out, line);
        }
    }
}

/// The child of `rpytest --watch` reads it: where to write its closing
/// counts ("12 passed in 0.21s") for the watch's status line. Here, below
/// both the watch that sets it and the daemon key that leaves it out (only
/// the client reads it), so neither names the other.
pub const RESULT_FILE_VAR: &str = "RPYTEST_WATCH_RESULT";

/// A run started by `rpytest --watch` writes its counts where the watch
/// said (`RPYTEST_WATCH_RESULT`), for the watch's status line: the watch
/// cannot read them off a terminal the run draws on directly.
fn tell_the_watch(counts: &str) {
    if let Some(path) = std::env::var_os(RESULT_FILE_VAR) {
        if let Err(e) = std::fs::write(&path, counts) {
            crate::trace::event(|| format!("watch: cannot write the result to {path:?}: {e}"));
        }
    }
}
