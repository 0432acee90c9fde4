//! The messages between the engine's actors, in one place: what each
//! actor accepts is listed in its module doc, and defined here, so no
//! actor file names another actor's internals.

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{FromPython, ReplayEntry, ToPython, WorkerExit};
use crate::report::Stopped;

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

/// A slot's grace period for the missing half of an ending may be over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GraceCheck;

/// The test worker `worker` runs has passed its time limit: stop the worker.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTimedOut {
    pub worker: usize,
    pub secs: f64,
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
    pub exitstatus: i32,
    pub stopped: Option<Stopped>,
    /// Lines for the summary (LEAK notes).
    pub notes: Vec<String>,
}

/// Ctrl-C, SIGTERM or SIGHUP.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Interrupt;
