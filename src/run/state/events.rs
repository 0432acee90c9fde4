//! What happens to a run, as the run state hears of it: plain data, which
//! the Scheduler actor receives as messages and hands on as is.

use crate::protocol::{Interruption, Leak, PhaseRecord, TestDone};

/// A worker wants more work (`ready`).
pub struct WorkRequest {
    pub worker: usize,
}

/// A worker finished a test (`test_done`).
pub struct TestFinished {
    pub worker: usize,
    pub done: TestDone,
}

/// A worker was told there is no more work and has finished (`finished`).
pub struct WorkerFinished {
    pub worker: usize,
}

/// A test raised KeyboardInterrupt or called `pytest.exit()`.
pub struct TestInterrupted {
    pub worker: usize,
    pub interruption: Interruption,
}

/// A worker's session set `shouldfail` or `shouldstop`.
pub struct StopRequested {
    pub reason: String,
    /// pytest's `session.shouldstop`: an interruption (exit 2), not a failure budget.
    pub interrupted: bool,
}

/// Ctrl-C: the workers were sent SIGINT. The run stops as pytest's does on
/// KeyboardInterrupt (exit 2); the interrupted test's own report, when it
/// comes, says where the interrupt landed.
pub struct RunInterrupted;

/// The zygote tore the shared session fixtures down; `phases` is a
/// teardown failure to report on the last test, as pytest does.
pub struct SharedFixturesTornDown {
    pub phases: Vec<PhaseRecord>,
}

/// The Supervisor's memory watch: `worker` runs no test after its current
/// one; once it has finished, a fresh process takes its unstarted tests.
pub struct RetireWorker {
    pub worker: usize,
}

/// A worker is gone for good without finishing; `cause` says how it ended.
pub struct WorkerLost {
    pub worker: usize,
    pub cause: String,
    /// The tail of its fault log (faulthandler's stacks), if it wrote one.
    pub log: Option<String>,
    /// It was stopped for passing this time limit (seconds).
    pub timed_out: Option<f64>,
}

/// The zygote is gone while workers ran (killed, or stopped and then
/// ended by rpytest): nothing can start any more. `cause` names it ("the
/// zygote was killed by signal 9 (SIGKILL)"); the Supervisor reports each
/// worker as lost with it next.
pub struct ZygoteLost {
    pub cause: String,
}

/// A worker's tests left these processes running; it has killed them.
pub struct TestsLeaked {
    pub worker: usize,
    pub leaks: Vec<Leak>,
}
