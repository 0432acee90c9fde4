//! The messages between the engine's actors, in one place: what each
//! actor accepts is listed in its module doc, and defined here, so no
//! actor file names another actor's internals.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::history::LastRun;
use crate::protocol::{FromPython, Inventory, PhaseRecord, ReplayEntry, ToPython, WorkerExit};
use crate::report::{Stopped, TestResult};
use crate::run::crash::RestartBudget;
use crate::run::timeouts::Watchdog;
use crate::schedule::run_queue::RunQueue;

/// What the Scheduler sends the Supervisor: recipients, so that neither
/// actor names the other's type.
#[derive(Clone)]
pub struct SupervisorLink {
    pub restart: Recipient<RestartWorker>,
    pub stop_timed_out: Recipient<StopTimedOut>,
    pub teardown: Recipient<TeardownShared>,
    pub complete: Recipient<RunComplete>,
}

/// What the Scheduler and the Supervisor ask of the Reporter besides the
/// run's events: the live status, the plugins' summary, the closing
/// summary (it answers), and a drain before the process exits.
#[derive(Clone)]
pub struct ReporterLink {
    pub events: Recipient<RunEvent>,
    pub status: Recipient<Status>,
    pub plugin_summary: Recipient<PluginSummary>,
    pub summarize: Recipient<Summarize>,
    pub drain: Recipient<Drain>,
}

/// The History: a subscriber to the run's events, and a flush at the end
/// (it answers with a line for the summary).
#[derive(Clone)]
pub struct HistoryLink {
    pub events: Recipient<RunEvent>,
    pub flush: Recipient<Flush>,
}

/// What happened in the run. The one seam the run's events leave through
/// (`EventBus`): every subscriber (the Reporter, the History; a daemon
/// client or a JSON stream could be next) gets every event, in order, and
/// takes what it needs.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum RunEvent {
    /// Collected: the run begins.
    Began(Arc<Begin>),
    /// A test's final result.
    TestFinished(Arc<TestReported>),
    /// What the history learns from a finished test.
    Observed(Arc<Observe>),
    /// `--retries`: a try failed and the test runs again.
    Retrying(Arc<TestRetrying>),
    /// A test has run longer than `--slow-timeout`.
    Slow(Arc<TestSlow>),
    /// A line for stderr (a warning, an error, a notice).
    Diagnostic(Arc<Diagnostic>),
}

/// The run's subscribers; `emit` sends each event to all of them.
#[derive(Clone, Default)]
pub struct EventBus {
    subscribers: Vec<Recipient<RunEvent>>,
}

impl EventBus {
    pub fn new(subscribers: Vec<Recipient<RunEvent>>) -> Self {
        EventBus { subscribers }
    }

    pub fn subscribe(&mut self, subscriber: Recipient<RunEvent>) {
        self.subscribers.push(subscriber);
    }

    pub fn emit(&self, event: RunEvent) {
        self.subscribers.iter().for_each(|subscriber| subscriber.do_send(event.clone()));
    }

    pub fn diagnostic(&self, line: impl Into<String>) {
        self.emit(RunEvent::Diagnostic(Arc::new(Diagnostic(line.into()))));
    }
}

/// Starts the History actor once the rootdir (hence the history file) is
/// known: given by the engine, so the Supervisor does not name it.
pub type HistoryStarter = Box<dyn Fn(crate::history::HistoryStore, Option<std::path::PathBuf>) -> HistoryLink>;

/// What the Supervisor sends the Scheduler.
#[derive(Clone)]
pub struct SchedulerLink {
    pub start: Recipient<StartRun>,
    pub torn_down: Recipient<SharedFixturesTornDown>,
    pub lost: Recipient<WorkerLost>,
    pub zygote_lost: Recipient<ZygoteLost>,
    pub retire: Recipient<RetireWorker>,
    pub interrupted: Recipient<RunInterrupted>,
}

// --- To the Supervisor: the Python processes' lives ---

/// The zygote said hello; `link` writes to its connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ZygoteConnected {
    pub link: UnboundedSender<ToPython>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct FromZygote(pub FromPython);

/// The zygote's connection failed (a malformed frame, an I/O error).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ZygoteBroken {
    pub error: String,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct ZygoteExited {
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// The warm zygote (the daemon's child) ended; its status is the daemon's.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WarmZygoteEnded;

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerConnected {
    pub worker: usize,
    pub pid: u32,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerDisconnected {
    pub worker: usize,
    pub pid: u32,
    pub finished: bool,
}

/// A worker finished its session (sent with its `finished`): its
/// `config.workeroutput`, for the zygote.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerOutput {
    pub worker: usize,
    pub pid: u32,
    pub workeroutput: Option<rmpv::Value>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerExitSeen(pub WorkerExit);

/// The test worker `worker` runs has passed its time limit: stop the worker.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTimedOut {
    pub worker: usize,
    pub secs: f64,
}

/// Worker `worker` (process `pid`) has been silent past the limit where a
/// reply was due (`supervise::silence`): stop it, as crashed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerSilent {
    pub worker: usize,
    pub pid: u32,
    pub silent: crate::supervise::silence::Silent,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartWorker {
    pub worker: usize,
}

/// Every worker is done: the zygote tears the shared session fixtures down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TeardownShared {
    /// The last test run, which carries a teardown failure.
    pub index: Option<usize>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RunComplete {
    pub entries: Vec<ReplayEntry>,
    pub exitstatus: crate::run::exit_code::ExitCode,
    pub stopped: Option<Stopped>,
    /// Lines for the summary (LEAK notes).
    pub notes: Vec<String>,
}

/// Ctrl-C, SIGTERM or SIGHUP.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Interrupt;

// --- To the Scheduler: the run's events ---

#[derive(Message)]
#[rtype(result = "()")]
pub struct StartRun {
    pub inventory: Arc<Inventory>,
    /// The ordered queue, built from the inventory, history and `--dist`.
    pub queue: RunQueue,
    pub supervisor: SupervisorLink,
    pub history: HistoryLink,
    /// Per-test time limits (`--timeout`, marks, pytest-timeout).
    pub watchdog: Watchdog,
    /// Lost workers to replace before the run gives up.
    pub restarts: RestartBudget,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerJoined {
    pub worker: usize,
    pub inventory: Option<String>,
    pub link: UnboundedSender<ToPython>,
}

/// The run's events (plain structs of `run::state`, which decides on
/// them) are messages as they are.
macro_rules! events_are_messages {
    ($($event:ident),*) => {
        $(impl Message for $event {
            type Result = ();
        })*
    };
}

pub use crate::run::state::{
    RetireWorker, RunInterrupted, SharedFixturesTornDown, StopRequested, TestFinished, TestInterrupted, TestsLeaked,
    WorkRequest, WorkerFinished, WorkerLost, ZygoteLost,
};
events_are_messages!(
    RetireWorker,
    RunInterrupted,
    SharedFixturesTornDown,
    StopRequested,
    TestFinished,
    TestInterrupted,
    TestsLeaked,
    WorkRequest,
    WorkerFinished,
    WorkerLost,
    ZygoteLost
);

// --- To the Reporter: what the terminal shows ---

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

#[derive(Clone)]
pub struct Begin {
    pub inventory: Arc<Inventory>,
}

#[derive(Clone)]
pub struct TestReported(pub TestResult);

/// `--retries`: a try failed and the test goes back in the queue.
#[derive(Clone)]
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
#[derive(Clone)]
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
    /// Warnings pytest recorded while it ended the session in the zygote
    /// (its cache plugin's, when it cannot write): counted and shown too.
    pub warnings: Vec<crate::protocol::WarningRecord>,
}

/// A line for stderr from any actor (a warning, an error, a notice):
/// the Reporter prints it above the live status, in the order sent.
#[derive(Clone)]
pub struct Diagnostic(pub String);

/// Answered once everything sent to the Reporter before it is written:
/// the run's exit waits for it, so no diagnostic is lost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

// --- To the History: what the run learns ---

#[derive(Clone)]
pub struct Observe {
    pub nodeid: String,
    /// `None` when the test did not run to the end (its worker crashed).
    pub duration: Option<f64>,
    pub outcome: String,
    pub peak_rss_kb: Option<u64>,
    /// It passed after failed tries (`--retries`).
    pub flaky: bool,
}

/// Save everything; `run` describes the run that just ended. Answers with
/// a line for the terminal, if there is one to show.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct Flush {
    pub run: Option<LastRun>,
}
