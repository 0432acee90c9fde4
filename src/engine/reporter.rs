//! Reporter actor: owns the terminal while tests run, over `RunReport`
//! (`src/report/`), which builds every line it prints.
//!
//! Accepts `Begin` (the inventory is known), `TestReported` (a test
//! finished; print its progress), `TestRetrying` (a try failed and runs
//! again), `Status` (what is running, from the Scheduler), `TestSlow` (a
//! test past `--slow-timeout`: a SLOW line on stderr), `PluginSummary`
//! (plugins' terminal summaries) and `Summarize` (print pytest's closing
//! sections and counts line). It writes to the stream it is given (the
//! engine gives stdout). On a TTY (and not in CI) it keeps a live status
//! under the streamed lines: done/total, failures so far, the time left by
//! the history, and each worker's running test with its elapsed time.

use std::io::Write;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{
    Begin, Diagnostic, Drain, PluginSummary, Status, Summarize, TestReported, TestRetrying, TestSlow,
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
}

/// How often the live status redraws (elapsed times move on their own).
const STATUS_EVERY: Duration = Duration::from_millis(250);

impl Reporter {
    pub fn new(color: bool, started: Instant, progress_bar: bool, streams: [Box<dyn Write + Send>; 2]) -> Self {
        let (report, progress, status) = (None, None, None);
        let [out, err] = streams;
        Reporter { color, progress_bar, started, report, progress, silent: false, failed: 0, status, out, err }
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
        write_above(self.progress.as_ref(), &mut self.out, text);
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
        ctx.run_interval(STATUS_EVERY, |act, _| act.refresh());
    }
}

impl Handler<TestSlow> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: TestSlow, _: &mut Context<Self>) {
        let line = format!("SLOW [>{}s] {} (gw{})\n", msg.secs, msg.nodeid, msg.worker);
        write_above(self.progress.as_ref(), &mut self.err, &line);
    }
}

impl Handler<Diagnostic> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Diagnostic, _: &mut Context<Self>) {
        write_above(self.progress.as_ref(), &mut self.err, &format!("{}\n", msg.0));
    }
}

impl Handler<Drain> for Reporter {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

impl Handler<Status> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Status, _: &mut Context<Self>) {
        self.status = Some(msg);
        self.refresh();
    }
}

impl Handler<Begin> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Begin, _: &mut Context<Self>) {
        let settings = ReportSettings::from_inventory(&msg.inventory, terminal_width(), self.color);
        let total = msg.inventory.items.len() as u64;
        self.silent = !msg.inventory.terminal;
        let tty = self.progress_bar && settings.verbosity >= 0 && !self.silent;
        self.report = Some(RunReport::new(settings, Collection::of(&msg.inventory)));
        if msg.inventory.verbosity >= 0 {
            self.emit("\n");
        }
        if tty {
            self.progress = Some(progress_bar(total));
        }
    }
}

impl Handler<TestReported> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: TestReported, _: &mut Context<Self>) {
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
}

impl Handler<TestRetrying> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: TestRetrying, _: &mut Context<Self>) {
        let Some(report) = self.report.as_mut() else { return };
        let text = report.retrying(&msg.nodeid, msg.worker, msg.failed.as_ref(), (msg.attempt, msg.of));
        self.emit(&text);
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
        let text = report.summary(elapsed, msg.stopped.as_ref(), &msg.notes);
        let too_many_warnings = report.max_warnings_exceeded(msg.stopped.is_some());
        self.emit(&text);
        too_many_warnings
    }
}
