//! pytest's per-test closing sections: ERRORS, FAILURES (XFAILURES with
//! `--xfail-tb`) and PASSES (XPASSES), each test under a `___ head ___`
//! rule with its traceback and the captured output `--show-capture` lets
//! through. The traceback text comes formatted from the worker; `--tb=no`
//! and `--tb=line` are the styles arranged here.

use super::render::{sep, Mark};
use super::result::head_line;
use super::{push_line, push_text, RunReport, TestResult};
use crate::protocol::PhaseRecord;

impl RunReport {
    /// pytest's `summary_errors`: collection errors, then phases that
    /// errored (those were shown as they happened under `--instafail`).
    pub(super) fn errors_section(&self, out: &mut String) {
        let phases = if self.settings.instafail { Vec::new() } else { self.phases_of("error") };
        let collect_errors: Vec<_> = self.collect_errors().collect();
        if self.settings.tbstyle == "no" || (phases.is_empty() && collect_errors.is_empty()) {
            return;
        }
        push_line(out, &sep('=', Some("ERRORS"), self.settings.width));
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

    /// pytest's `summary_failures_combined`: FAILURES, or XFAILURES (`--xfail-tb`).
    pub(super) fn failures_section(&self, out: &mut String, category: &str, title: &str) {
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

    /// pytest-instafail's `print_failure`, for each phase of `result` that
    /// failed or errored (an xfail is neither): what FAILURES or ERRORS
    /// would show of it, printed as soon as the test ends.
    pub(super) fn instant_failures(&self, result: &TestResult) -> String {
        let mut out = String::new();
        let failed = result.phases.iter().filter(|p| p.outcome == "failed" && p.wasxfail.is_none());
        for phase in failed.filter(|_| self.settings.tbstyle != "no") {
            if self.settings.tbstyle == "line" {
                push_text(&mut out, phase.crash_line.as_deref().unwrap_or(""));
                continue;
            }
            let head = head_line(result, phase);
            let title = if phase.when == "call" { head } else { format!("ERROR at {} of {head}", phase.when) };
            out += &self.heading(&title);
            self.outrep(&mut out, phase);
        }
        out
    }

    /// pytest's `summary_passes_combined`: PASSES (`-rP`) or XPASSES (`-rX`,
    /// pytest>=8), the captured output of tests that passed.
    pub(super) fn passes_section(&self, out: &mut String, category: &str, title: &str) {
        for (result, phase) in self.section_phases(out, category, title) {
            if !phase.sections.is_empty() {
                *out += &self.heading_in(&[Mark::Green, Mark::Bold], &head_line(result, phase));
                self.outrep(out, phase);
            }
            self.teardown_sections(out, result);
        }
    }

    /// The phases of `category` after a `== title ==` rule; none, and no rule,
    /// when there are none or `--tb=no` hides such sections.
    fn section_phases(&self, out: &mut String, category: &str, title: &str) -> Vec<(&TestResult, &PhaseRecord)> {
        let phases = self.phases_of(category);
        if self.settings.tbstyle == "no" || phases.is_empty() {
            return Vec::new();
        }
        push_line(out, &sep('=', Some(title), self.settings.width));
        phases
    }

    /// A test's `___ title ___` rule, in bold red.
    fn heading(&self, title: &str) -> String {
        self.heading_in(&[Mark::Red, Mark::Bold], title)
    }

    fn heading_in(&self, marks: &[Mark], title: &str) -> String {
        format!("{}\n", self.paint(marks, &sep('_', Some(title), self.settings.width)))
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
                push_line(out, &sep('-', Some(name), self.settings.width));
                push_text(out, content.strip_suffix('\n').unwrap_or(content));
            }
        }
    }
}
