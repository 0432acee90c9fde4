//! Reporter actor: owns the terminal while tests run.
//!
//! Accepts `Begin` (the inventory is known), `TestReported` (a test
//! finished; print its progress) and `Summarize` (print pytest's closing
//! sections and counts line). On a TTY it keeps a live progress bar under
//! the streamed lines; elsewhere it writes plain text.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::protocol::Inventory;
use crate::render::terminal_width;
use crate::report::{ReportSettings, RunReport, Stopped, TestResult};

pub struct Reporter {
    color: bool,
    /// A progress bar would draw over a debugger's prompt.
    progress_bar: bool,
    started: Instant,
    report: Option<RunReport>,
    progress: Option<ProgressBar>,
    /// `-p no:terminal`: pytest prints nothing, so neither do we.
    silent: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Begin {
    pub inventory: Arc<Inventory>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct TestReported(pub TestResult);

/// `--retries`: a try failed and the test goes back in the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TestRetrying {
    pub nodeid: String,
    pub worker: usize,
    /// This try's number (1 for the first) and the most there will be.
    pub attempt: usize,
    pub of: usize,
    /// The phase that failed (`None` for a crash without phases).
    pub failed: Option<crate::protocol::PhaseRecord>,
}

/// Print the closing sections; `stopped` says why the run ended early.
/// Answers whether `--max-warnings` was exceeded (pytest then exits 6).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Summarize {
    pub stopped: Option<Stopped>,
    /// Lines to show before the closing sections (e.g. "Stored test durations in ...").
    pub notes: Vec<String>,
}

impl Reporter {
    pub fn new(color: bool, started: Instant, progress_bar: bool) -> Self {
        Reporter { color, progress_bar, started, report: None, progress: None, silent: false }
    }

    fn emit(&self, text: &str) {
        if text.is_empty() || self.silent {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        };
        match &self.progress {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl Actor for Reporter {
    type Context = Context<Self>;
}

impl Handler<Begin> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Begin, _: &mut Context<Self>) {
        let settings = ReportSettings::from_inventory(&msg.inventory, terminal_width(), self.color);
        let total = msg.inventory.items.len() as u64;
        self.silent = !msg.inventory.terminal;
        let tty = self.progress_bar && console::Term::stdout().is_term() && settings.verbosity >= 0 && !self.silent;
        self.report = Some(RunReport::new(settings, &msg.inventory));
        if msg.inventory.verbosity >= 0 {
            self.emit("\n");
        }
        if tty {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tests")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            self.progress = Some(bar);
        }
    }
}

impl Handler<TestReported> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: TestReported, _: &mut Context<Self>) {
        let Some(report) = self.report.as_mut() else { return };
        let text = report.record(msg.0);
        self.emit(&text);
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
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

impl Handler<Summarize> for Reporter {
    type Result = bool;

    fn handle(&mut self, msg: Summarize, _: &mut Context<Self>) -> bool {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let Some(report) = self.report.as_mut() else { return false };
        let text = report.summary(elapsed, msg.stopped.as_ref(), &msg.notes);
        let too_many_warnings = report.max_warnings_exceeded(msg.stopped.is_some());
        self.emit(&text);
        too_many_warnings
    }
}
