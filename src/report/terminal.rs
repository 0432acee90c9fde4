//! The terminal sink: owns stdout and stderr while tests run, and prints
//! what `RunReport` builds from the run's events. Plain: the Reporter actor
//! (`engine/reporter.rs`) only routes messages here and ticks its clock, so
//! its rendering is tested by feeding events and reading the bytes
//! (`report/tests/terminal.rs`). A warm run renders here too: the daemon's
//! zygote connects to the client's own engine.
//!
//! On a TTY (and not in CI) it keeps a live status under the streamed
//! lines: done/total, failures so far, the time left by the history, and
//! each worker's running test with its elapsed time.
//!
//! On a terminal, with `-s` and under a debugger each progress character is
//! flushed as it comes, as pytest does. Otherwise, to a pipe or a file (CI
//! logs), the text goes out a line at a time, and what is left of a line
//! at least every tick (`tick`, from the actor): a flush per test woke the
//! reader (`tee`, the CI runner) 500 times in a 500-test run, on the cores
//! the workers need. Before anything goes to stderr, and before the zygote
//! ends the session (`drain`), stdout is flushed, so a log that merges both
//! streams keeps their order.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;

use super::events::{Begin, EventSink, RunEvent, TestRetrying, TestSlow};
use super::live::{progress_bar, status_text, Running};
use super::render::{before_interrupted_clear, terminal_local_flags, terminal_width};
use super::{Collection, ReportSettings, RunReport, Stopped, TestResult};
use crate::protocol::WarningRecord;

/// What the live status line shows besides the counts.
pub struct Status {
    /// (worker, node id, started at) of each running test.
    pub running: Vec<(usize, String, Instant)>,
    /// Expected seconds of work left, from the history (0: unknown).
    pub expected_left: f64,
    pub workers: usize,
}

/// The end of the run: what the closing text needs besides the results.
pub struct Summarize {
    pub stopped: Option<Stopped>,
    /// Lines to show before the closing sections (e.g. "Stored test durations in ...").
    pub notes: Vec<String>,
    /// False when the run ended without pytest ending its session, so no
    /// junit file was written: the summary must not claim one.
    pub junit_written: bool,
    /// Warnings pytest recorded while it ended the session in the zygote
    /// (its cache plugin's, when it cannot write): counted and shown too.
    pub warnings: Vec<WarningRecord>,
}

pub struct TerminalReporter {
    color: bool,
    /// Draw the live status on stdout: the engine says so on a terminal,
    /// not in CI, not under a debugger (it would draw over its prompt).
    progress_bar: bool,
    /// The width pytest prints for; `None`: the terminal's, at `Began`.
    width: Option<usize>,
    report: Option<RunReport>,
    progress: Option<ProgressBar>,
    /// `-p no:terminal`: pytest prints nothing, so neither do we.
    silent: bool,
    /// Failed and errored tests so far, and the latest `Status`.
    failed: usize,
    status: Option<Status>,
    /// Where the run's text goes, and its diagnostics and SLOW lines.
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    /// Flush stdout after every write (a terminal, which any live status
    /// implies), else see the module doc.
    flush_each: bool,
}

impl TerminalReporter {
    /// `streams`: stdout and stderr; `flush_each`: stdout is a terminal
    /// (see the module doc).
    pub fn new(color: bool, progress_bar: bool, streams: [Box<dyn Write + Send>; 2], flush_each: bool) -> Self {
        let [out, err] = streams;
        TerminalReporter {
            color,
            progress_bar,
            width: None,
            report: None,
            progress: None,
            silent: false,
            failed: 0,
            status: None,
            out,
            err,
            flush_each,
        }
    }

    /// Prints for `width` columns rather than the terminal's.
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = Some(width);
        self
    }

    /// The clock's tick: redraws the live status, and lets out what is left
    /// of a line.
    pub fn tick(&mut self) {
        self.refresh();
        let _ = self.out.flush();
    }

    /// Everything received so far is written.
    pub fn drain(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    /// What is running now, for the live status.
    pub fn status(&mut self, status: Status) {
        self.status = Some(status);
        self.refresh();
    }

    /// What plugins' `pytest_terminal_summary` hooks wrote, for the summary.
    pub fn plugin_summary(&mut self, text: &str) {
        if let Some(report) = self.report.as_mut() {
            report.add_plugin_summary(text);
        }
    }

    /// Prints pytest's closing sections and counts line, after `elapsed`
    /// seconds; `sigint`: the run was stopped by Ctrl-C. Answers whether
    /// `--max-warnings` was exceeded (pytest then exits 6).
    pub fn summarize(&mut self, msg: Summarize, elapsed: f64, sigint: bool) -> bool {
        if let Some(bar) = self.progress.take() {
            if msg.stopped.is_some() {
                write_above(None, &mut self.out, before_interrupted_clear(sigint, terminal_local_flags()));
            }
            bar.finish_and_clear();
        }
        let Some(report) = self.report.as_mut() else { return false };
        if !msg.junit_written {
            report.forget_junit();
        }
        report.add_session_end_warnings(msg.warnings);
        let text = report.summary(elapsed, msg.stopped.as_ref(), &msg.notes);
        let too_many_warnings = report.max_warnings_exceeded(msg.stopped.is_some());
        self.emit(&text);
        too_many_warnings
    }

    /// Redraws the status under the bar: failures, time left, running tests.
    fn refresh(&self) {
        let Some(bar) = &self.progress else { return };
        let running = self.status.as_ref().map(|s| Running {
            tests: &s.running,
            expected_left: s.expected_left,
            workers: s.workers,
        });
        bar.set_message(status_text(self.failed, running.as_ref(), terminal_width(), Instant::now()));
    }

    fn emit(&mut self, text: &str) {
        if text.is_empty() || self.silent {
            return;
        }
        if self.flush_each {
            write_above(self.progress.as_ref(), &mut self.out, text);
        } else {
            let _ = self.out.write_all(text.as_bytes());
        }
    }

    /// A line for stderr, after what stdout holds.
    fn emit_err(&mut self, text: &str) {
        let _ = self.out.flush();
        write_above(self.progress.as_ref(), &mut self.err, text);
    }
}

/// Writes `text` to `stream`, above the live status when there is one.
fn write_above(bar: Option<&ProgressBar>, stream: &mut dyn Write, text: &str) {
    let mut write = || {
        let _ = stream.write_all(text.as_bytes());
        let _ = stream.flush();
    };
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

impl EventSink for TerminalReporter {
    fn event(&mut self, event: RunEvent) {
        match event {
            RunEvent::Began(begin) => self.on_begin(&begin),
            RunEvent::TestFinished(result) => self.on_test_finished(Arc::unwrap_or_clone(result)),
            RunEvent::Retrying(retrying) => self.on_retrying(&retrying),
            RunEvent::Slow(slow) => self.on_slow(&slow),
            RunEvent::Diagnostic(line) => self.emit_err(&format!("{line}\n")),
            RunEvent::Observed(_) => {}
        }
    }
}

/// The run's events, one method each.
impl TerminalReporter {
    fn on_slow(&mut self, msg: &TestSlow) {
        let line = format!("SLOW [>{}s] {} (gw{})\n", msg.secs, msg.nodeid, msg.worker);
        self.emit_err(&line);
    }

    fn on_begin(&mut self, msg: &Begin) {
        let width = self.width.unwrap_or_else(terminal_width);
        let settings = ReportSettings::from_inventory(&msg.inventory, width, self.color);
        let total = msg.inventory.items.len() as u64;
        self.silent = !msg.inventory.terminal;
        // -s: tests print between the progress characters, which must not lag.
        self.flush_each |= msg.inventory.capture == "no";
        let tty = self.progress_bar && settings.verbosity >= 0 && !self.silent;
        self.report = Some(RunReport::new(settings, Collection::of(&msg.inventory)));
        if msg.inventory.verbosity >= 0 {
            self.emit("\n");
        }
        if tty {
            self.progress = Some(progress_bar(total));
        }
    }

    fn on_test_finished(&mut self, result: TestResult) {
        let Some(report) = self.report.as_mut() else { return };
        let failed = result.phases.iter().any(|p| matches!(p.category.as_str(), "failed" | "error"));
        self.failed += usize::from(failed);
        let text = report.record(result);
        self.emit(&text);
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
        self.refresh();
    }

    fn on_retrying(&mut self, msg: &TestRetrying) {
        let Some(report) = self.report.as_mut() else { return };
        let text = report.retrying(&msg.nodeid, msg.worker, msg.failed.as_ref(), (msg.attempt, msg.of));
        self.emit(&text);
    }
}
