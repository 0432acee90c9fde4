//! Reporter actor: owns the terminal while tests run.
//!
//! Accepts `Begin` (the inventory is known), `TestReported` (a test
//! finished; print its progress) and `Summarize` (print pytest's closing
//! sections and counts line). On a TTY (and not in CI) it keeps a live
//! status under the streamed lines: done/total, failures so far, the time
//! left by the history, and each worker's running test with its elapsed
//! time (`Status`, from the Scheduler). Elsewhere it writes plain text.
//! `TestSlow` (a test past `--slow-timeout`) is a SLOW line on stderr.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Failed and errored tests so far, and the latest `Status`.
    failed: usize,
    status: Option<Status>,
}

/// How often the live status redraws (elapsed times move on their own).
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Running tests listed under the bar; the rest are counted.
const STATUS_ROWS: usize = 8;

/// What the live status line shows besides the counts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Status {
    /// (worker, node id, started at) of each running test.
    pub running: Vec<(usize, String, Instant)>,
    /// Expected seconds of work left, from the history (0: unknown).
    pub expected_left: f64,
    pub workers: usize,
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

/// A test has run longer than `--slow-timeout`: said on stderr, as
/// nextest's SLOW, so a long or hung test shows in a CI log while it runs.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TestSlow {
    pub nodeid: String,
    pub worker: usize,
    pub secs: f64,
}

/// What plugins' `pytest_terminal_summary` hooks wrote, for the summary.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PluginSummary {
    pub text: String,
}

/// Answers whether `--max-warnings` was exceeded (pytest then exits 6).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Summarize {
    pub stopped: Option<Stopped>,
    /// Lines to show before the closing sections (e.g. "Stored test durations in ...").
    pub notes: Vec<String>,
    /// False when the run ended without pytest ending its session, so no
    /// junit file was written: the summary must not claim one.
    pub junit_written: bool,
}

impl Reporter {
    pub fn new(color: bool, started: Instant, progress_bar: bool) -> Self {
        Reporter { color, progress_bar, started, report: None, progress: None, silent: false, failed: 0, status: None }
    }

    /// Redraws the status under the bar: failures, time left, running tests.
    fn refresh(&self) {
        let Some(bar) = &self.progress else { return };
        let width = crate::render::terminal_width();
        let mut text = String::new();
        if self.failed > 0 {
            text += &format!(" · {} failed", self.failed);
        }
        let Some(status) = &self.status else { return bar.set_message(text) };
        if status.expected_left > 0.0 {
            text += &format!(" · ~{:.0}s left", (status.expected_left / status.workers as f64).ceil());
        }
        let mut running: Vec<&(usize, String, Instant)> = status.running.iter().collect();
        running.sort_by_key(|(w, _, _)| *w);
        for (worker, nodeid, since) in running.iter().take(STATUS_ROWS) {
            let line = format!("  gw{worker} {nodeid} {:.1}s", since.elapsed().as_secs_f64());
            text += &format!("\n{}", console::truncate_str(&line, width.saturating_sub(1), "…"));
        }
        if running.len() > STATUS_ROWS {
            text += &format!("\n  … and {} more", running.len() - STATUS_ROWS);
        }
        bar.set_message(text);
    }

    fn emit(&self, text: &str) {
        if text.is_empty() || self.silent {
            return;
        }
        self.above_bar(std::io::stdout(), text);
    }

    /// Writes `text` to `stream`, above the live status when there is one.
    fn above_bar(&self, stream: impl Write, text: &str) {
        let write = || {
            let mut stream = stream;
            let _ = stream.write_all(text.as_bytes());
            let _ = stream.flush();
        };
        match &self.progress {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// The local mode flags (`c_lflag`) of the terminal on stdout, if it is one.
fn terminal_local_flags() -> Option<libc::tcflag_t> {
    // SAFETY: tcgetattr fills a zeroed termios for a descriptor we only read.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(libc::STDOUT_FILENO, &mut termios) == 0).then_some(termios.c_lflag)
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
        self.above_bar(std::io::stderr(), &line);
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
        let tty = self.progress_bar && console::Term::stdout().is_term() && settings.verbosity >= 0 && !self.silent;
        self.report = Some(RunReport::new(settings, &msg.inventory));
        if msg.inventory.verbosity >= 0 {
            self.emit("\n");
        }
        if tty {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tests{msg}")
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
                let sigint = crate::signals::received() == Some(libc::SIGINT);
                let mut out = std::io::stdout().lock();
                let _ =
                    out.write_all(crate::render::before_interrupted_clear(sigint, terminal_local_flags()).as_bytes());
                let _ = out.flush();
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
