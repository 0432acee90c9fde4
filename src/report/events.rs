//! The run's events: what happened, as plain data, and the one trait that
//! takes them.
//!
//! `RunState` (`src/run/state`) decides them and returns them as
//! `Effect::Event`; the Supervisor emits the start of the run and its own
//! diagnostics. Every consumer is an `EventSink`: the terminal
//! (`report::terminal`, also the daemon client's output, since a warm run
//! renders in the client's own engine), the history
//! (`history::recorder`). None of this knows actix: the engine's actors
//! carry these events between threads of control and hand them to the sinks,
//! so a sink is tested by calling it.

use std::sync::Arc;

use super::TestResult;
use crate::protocol::{Inventory, PhaseRecord};

/// What happened in the run, in the order it happened. Payloads are shared
/// (`Arc`): every sink gets every event and takes what it needs.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// Collected: the run begins.
    Began(Arc<Begin>),
    /// A test's final result.
    TestFinished(Arc<TestResult>),
    /// What the history learns from a finished test.
    Observed(Arc<Observe>),
    /// `--retries`: a try failed and the test runs again.
    Retrying(Arc<TestRetrying>),
    /// A test has run longer than `--slow-timeout`.
    Slow(Arc<TestSlow>),
    /// A line for stderr (a warning, an error, a notice), without its newline.
    Diagnostic(Arc<str>),
}

impl RunEvent {
    pub fn diagnostic(line: impl Into<String>) -> Self {
        RunEvent::Diagnostic(Arc::from(line.into()))
    }
}

/// A consumer of the run's events: the terminal, the history.
pub trait EventSink {
    fn event(&mut self, event: RunEvent);
}

/// Collected: the inventory the run works through.
#[derive(Debug, Clone)]
pub struct Begin {
    pub inventory: Arc<Inventory>,
}

/// `--retries`: a try failed and the test goes back in the queue.
#[derive(Debug, Clone)]
pub struct TestRetrying {
    pub nodeid: String,
    pub worker: usize,
    /// This try's number (1 for the first) and the most there will be.
    pub attempt: usize,
    pub of: usize,
    /// The phase that failed (`None` for a crash without phases).
    pub failed: Option<PhaseRecord>,
}

/// A test has run longer than `--slow-timeout`: said on stderr, as
/// nextest's SLOW, so a long or hung test shows in a CI log while it runs.
#[derive(Debug, Clone)]
pub struct TestSlow {
    pub nodeid: String,
    pub worker: usize,
    pub secs: f64,
}

/// What a finished test teaches the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Observe {
    pub nodeid: String,
    /// `None` when the test did not run to the end (its worker crashed).
    pub duration: Option<f64>,
    pub outcome: String,
    pub peak_rss_kb: Option<u64>,
    /// It passed after failed tries (`--retries`).
    pub flaky: bool,
}
