//! The messages between the engine's actors, in one place: what each
//! actor accepts is listed in its module doc, and defined here (the run's
//! event seam, the Reporter's inputs, in `events.rs`, named here too), so
//! no actor file names another actor's internals.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::history::LastRun;
use crate::protocol::{FromPython, Inventory, ReplayEntry, ToPython, WorkerExit};
use crate::report::Stopped;
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

/// The run's event seam (`events.rs`): named here too, so an actor finds
/// every message it sends or accepts in one module.
pub use super::events::{Begin, Drain, EventBus, PluginSummary, RunEvent, Status, Summarize};

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
    pub exitstatus: crate::exit_code::ExitCode,
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

// --- To the History: what the run learns ---

/// Save everything; `run` describes the run that just ended. Answers with
/// a line for the terminal, if there is one to show.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct Flush {
    pub run: Option<LastRun>,
}
