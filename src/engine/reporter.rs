//! Reporter actor: owns the terminal while tests run, over `RunReport`
//! (`src/report/`), which builds every line it prints.
//!
//! Accepts `RunEvent` (it subscribes to the run's events: `Began`, the
//! inventory is known; `TestFinished`, print its progress; `Retrying`, a
//! try failed and runs again; `Slow`, a SLOW line on stderr; `Diagnostic`,
//! a line on stderr), `Status` (what is running, from the Scheduler),
//! `PluginSummary` (plugins' terminal summaries), `Summarize` (print
//! pytest's closing sections and counts line) and `Drain` (answered once
//! all of that is written). It writes to the streams it is given (the
//! engine gives stdout and stderr). On a TTY (and not in CI) it keeps a live status
//! under the streamed lines: done/total, failures so far, the time left by
//! the history, and each worker's running test with its elapsed time.
//!
//! On a terminal, with `-s` and under a debugger each progress character is
//! flushed as it comes, as pytest does. Otherwise, to a pipe or a file (CI
//! logs), the text goes out a line at a time,
//! and what is left of a line at least every `STATUS_EVERY`: a flush per test
//! woke the reader (`tee`, the CI runner) 500 times in a 500-test run, on
//! the cores the workers need. Before anything goes to stderr, and before
//! the zygote ends the session (`Drain`), stdout is flushed, so a log that
//! merges both streams keeps their order.

use std::io::Write;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{
    Begin, Diagnostic, Drain, PluginSummary, RunEvent, Status, Summarize, TestReported, TestRetrying, TestSlow,
};
use indicatif::ProgressBar;

use crate::report::live::{progress_bar, status_text, Running};
use crate::report::render::{before_interrupted_clear, terminal_local_flags, terminal_width};
use crate::report::{Collection, ReportSettings, RunReport};

pub struct Reporter {
    color: bool,
    /// Draw the live status on stdout: the engine says so on a terminal,
    /// not in CI, not under a debugger (it would draw over its prompt).
    progress_bar: bool,
    started: Instant,
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

/// How often the live status redraws (elapsed times move on their own).
const STATUS_EVERY: Duration = Duration::from_millis(250);

impl Reporter {
    /// `flush_each`: stdout is a terminal (see the module doc).
    pub fn new(
        color: bool,
        started: Instant,
        progress_bar: bool,
        streams: [Box<dyn Write + Send>; 2],
        flush_each: bool,
    ) -> Self {
        let (report, progress, status) = (None, None, None);
        let [out, err] = streams;
        Reporter {
            color,
            progress_bar,
            started,
            report,
            progress,
            silent: false,
            failed: 0,
            status,
            out,
            err,
            flush_each,
        }
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

impl Actor for Reporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(STATUS_EVERY, |act, _| {
            act.refresh();
            let _ = act.out.flush();
        });
    }
}

impl Handler<Drain> for Reporter {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

impl Handler<RunEvent> for Reporter {
    type Result = ();

    fn handle(&mut self, event: RunEvent, _: &mut Context<Self>) {
        match event {
            RunEvent::Began(begin) => self.on_begin(&begin),
            RunEvent::TestFinished(result) => self.on_test_finished(std::sync::Arc::unwrap_or_clone(result)),
            RunEvent::Retrying(retrying) => self.on_retrying(&retrying),
            RunEvent::Slow(slow) => self.on_slow(&slow),
            RunEvent::Diagnostic(line) => self.on_diagnostic(&line),
            RunEvent::Observed(_) => {}
        }
    }
}

/// The run's events, one method each.
impl Reporter {
    fn on_slow(&mut self, msg: &TestSlow) {
        let line = format!("SLOW [>{}s] {} (gw{})\n", msg.secs, msg.nodeid, msg.worker);
        self.emit_err(&line);
    }

    fn on_diagnostic(&mut self, msg: &Diagnostic) {
        self.emit_err(&format!("{}\n", msg.0));
    }

    fn on_begin(&mut self, msg: &Begin) {
        let settings = ReportSettings::from_inventory(&msg.inventory, terminal_width(), self.color);
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

    fn on_test_finished(&mut self, msg: TestReported) {
        let Some(report) = self.report.as_mut() else { return };
        let failed = msg.0.phases.iter().any(|p| matches!(p.category.as_str(), "failed" | "error"));
        self.failed += usize::from(failed);
        let text = report.record(msg.0);
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

impl Handler<Status> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Status, _: &mut Context<Self>) {
        self.status = Some(msg);
        self.refresh();
    }
}

impl Handler<PluginSummary> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: PluginSummary, _: &mut Context<Self>) {
        if let Some(report) = self.report.as_mut() {
            report.add_plugin_summary(&msg.text);
        }
    }
}

impl Handler<Summarize> for Reporter {
    type Result = bool;

    fn handle(&mut self, msg: Summarize, _: &mut Context<Self>) -> bool {
        if let Some(bar) = self.progress.take() {
            if msg.stopped.is_some() {
                let sigint = crate::supervise::signals::received() == Some(libc::SIGINT);
                write_above(None, &mut self.out, before_interrupted_clear(sigint, terminal_local_flags()));
            }
            bar.finish_and_clear();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
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
}
