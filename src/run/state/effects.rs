//! What the run state asks of the Scheduler, and the live status it shows.

use std::sync::Arc;

use crate::exit_code::ExitCode;
use crate::protocol::{ReplayEntry, ToPython};
use crate::report::events::{Observe, RunEvent, TestRetrying, TestSlow};
use crate::report::{Stopped, TestResult};

/// What the Scheduler does for the run state.
#[derive(Debug)]
pub enum Effect {
    /// Send `message` to the worker's connection.
    ToWorker { worker: usize, message: ToPython },
    /// The worker's connection is void (lost, or being stopped): drop it.
    DropLink { worker: usize },
    /// Something the run's sinks (the terminal, the history) hear of:
    /// a result, a retry, a slow test, what a test taught, a line for stderr.
    Event(RunEvent),
    /// What the live status shows (`status()`) has changed.
    StatusChanged,
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

    /// An event for the run's sinks.
    pub(super) fn event(&mut self, event: RunEvent) {
        self.emit(Effect::Event(event));
    }

    pub(super) fn report(&mut self, result: TestResult) {
        self.event(RunEvent::TestFinished(Arc::new(result)));
    }

    pub(super) fn observe(&mut self, observed: Observe) {
        self.event(RunEvent::Observed(Arc::new(observed)));
    }

    pub(super) fn retrying(&mut self, retrying: TestRetrying) {
        self.event(RunEvent::Retrying(Arc::new(retrying)));
    }

    pub(super) fn slow(&mut self, slow: TestSlow) {
        self.event(RunEvent::Slow(Arc::new(slow)));
    }

    /// A line for the user on stderr.
    pub(super) fn say(&mut self, line: impl Into<String>) {
        self.event(RunEvent::diagnostic(line));
    }

    /// What the event just handled decided, in order.
    pub(super) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}
