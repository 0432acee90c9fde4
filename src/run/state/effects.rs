//! What the run state asks of the Scheduler, and the live status it shows.

use crate::protocol::{PhaseRecord, ReplayEntry, ToPython};
use crate::report::{Stopped, TestResult};
use crate::run::exit_code::ExitCode;

/// What the Scheduler does for the run state.
#[derive(Debug)]
pub enum Effect {
    /// Send `message` to the worker's connection.
    ToWorker { worker: usize, message: ToPython },
    /// The worker's connection is void (lost, or being stopped): drop it.
    DropLink { worker: usize },
    /// A test's result, for the Reporter.
    Report(TestResult),
    /// A failed try goes back to the queue (`--retries`), for the Reporter.
    Retrying { nodeid: String, worker: usize, attempt: usize, of: usize, failed: Option<Box<PhaseRecord>> },
    /// A running test passed `--slow-timeout`, for the Reporter.
    Slow { nodeid: String, worker: usize, secs: f64 },
    /// What the live status shows (`status()`) has changed.
    StatusChanged,
    /// A finished test, for the History.
    Observe { nodeid: String, duration: Option<f64>, outcome: String, peak_rss_kb: Option<u64>, flaky: bool },
    /// The Supervisor starts a fresh worker process in this slot.
    RestartWorker { worker: usize },
    /// The Supervisor stops the worker: its test passed a limit of `secs`.
    StopTimedOut { worker: usize, secs: f64 },
    /// Every worker is done: the Supervisor has the zygote tear the shared
    /// session fixtures down (`last_ran` carries a teardown failure).
    TeardownShared { last_ran: Option<usize> },
    /// The run is over: what the zygote replays, and how it ended.
    RunComplete { entries: Vec<ReplayEntry>, exit: ExitCode, stopped: Option<Stopped>, notes: Vec<String> },
    /// Workers wait for the others' fair share (`RunQueue::must_wait`):
    /// call `on_fair_start_retry` a little later, in case nothing else
    /// (a finished test) answers them first.
    RetryWaitingLater,
    /// A line for the user on stderr.
    Stderr(String),
}

/// What the live status line shows besides the counts.
#[derive(Debug, PartialEq)]
pub struct LiveStatus {
    /// (worker, node id, running since: seconds on the run's clock).
    pub running: Vec<(usize, String, f64)>,
    /// Expected seconds of work left, from the history (0: unknown).
    pub expected_left: f64,
    pub workers: usize,
}

impl super::RunState {
    pub(super) fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// What the event just handled decided, in order.
    pub(super) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}
