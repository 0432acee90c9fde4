//! What the lifecycle asks of the Supervisor actor, and the timers it
//! arms: the actor performs each `Action` in order and hands each `Timer`
//! back to `Lifecycle::on_timer` once it is due.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::exit_code::ExitCode;
use crate::protocol::{Inventory, PhaseRecord, ReplayEntry, ToPython, WarningRecord};
use crate::report::Stopped;
use crate::supervise::launch::WorkerSpawn;

/// One thing for the actor to do.
#[derive(Debug)]
pub enum Action {
    /// A line for stderr, through the Reporter.
    Say(String),
    /// One signal to one process.
    Signal { pid: u32, signal: i32 },
    /// A signal to a worker and every process under it.
    SignalTree { pid: u32, signal: i32 },
    /// SIGKILL to what a timed-out worker's test started (detached ones
    /// would otherwise be orphaned), before the worker itself is stopped.
    KillDescendants { pid: u32 },
    /// SIGKILL to the zygote and its forked children.
    KillZygote { pid: u32 },
    /// `Lifecycle::on_timer(timer)` after `after`.
    Arm { after: Duration, timer: Timer },
    /// `Lifecycle::on_tick(tick)` every `every`, for the run's life.
    Repeat { every: Duration, tick: Tick },
    /// Start the zygote (`Lifecycle::on_zygote_spawned` hears how it went).
    StartZygote,
    /// Watch the exit of the warm zygote `pid`, the daemon's child.
    WatchWarmZygote { pid: u32 },
    /// Ask the daemon for the warm zygote's exit status.
    AskDaemonExitStatus,
    /// The zygote's connection, for the messages to come.
    ZygoteLink(UnboundedSender<ToPython>),
    /// A message on the zygote's connection.
    ToZygote(ToPython),
    /// Nothing more goes to the zygote: its connection is dropped.
    ForgetZygote,
    /// The run's reports and `finish`, sent to the zygote once the Reporter
    /// has written every progress line (pytest ends the session there).
    EndSession(Vec<ToPython>),
    /// The zygote collected: plan the run, start the Scheduler and the
    /// History, then call `Lifecycle::on_collected`.
    PlanRun(Box<Inventory>),
    /// Spawn a worker as a process of its own.
    SpawnWorker(WorkerSpawn),
    /// `--max-memory`: the Scheduler retires the worker after its test.
    RetireWorker { worker: usize },
    /// The worker died under its tests: the Scheduler hears of it, with
    /// its fault log.
    WorkerLost { worker: usize, cause: String, process: Option<u32>, timed_out: Option<f64> },
    /// The worker ended after its session: say what its fault log holds.
    FaultLog { worker: usize, process: Option<u32> },
    /// The Scheduler ends every test left: the zygote is gone.
    ZygoteLost { cause: String },
    /// The Scheduler stops the run (Ctrl-C).
    InterruptRun,
    /// The shared session fixtures are torn down (by the zygote, or there
    /// is no zygote to): for the Scheduler.
    TornDown(Vec<PhaseRecord>),
    /// What plugins' `pytest_terminal_summary` wrote: for the Reporter.
    PluginSummary(String),
    /// Write the junit file pytest could not, from the run's reports.
    WriteJunit(Vec<ReplayEntry>),
    /// The closing summary (the Reporter's and the History's); its answer
    /// goes to `Lifecycle::on_summarized`.
    Summarize(Summary),
    /// The run is over with this code (once the Reporter has drained).
    Finish(ExitCode),
}

/// What the closing summary is given.
#[derive(Debug)]
pub struct Summary {
    pub code: ExitCode,
    pub stopped: Option<Stopped>,
    /// Lines for the summary (LEAK notes).
    pub notes: Vec<String>,
    /// What pytest warned of while it ended the session.
    pub warnings: Vec<WarningRecord>,
    /// pytest ended the session in the zygote, so its junit file is written.
    pub session_finished: bool,
}

/// What is sampled at intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Whether the zygote is stopped (SIGSTOP).
    ZygoteWatch,
    /// `--max-memory`: the run's memory.
    MemorySample,
}

/// A timer the lifecycle armed.
#[derive(Debug, Clone, PartialEq)]
pub enum Timer {
    /// Say that collection is still running.
    StillCollecting,
    /// A worker slot's wait for the other half of its ending may be over.
    SlotGrace,
    /// The start-up watchdog of one worker process.
    Connect { worker: usize, generation: u64, limit: Duration },
    /// A timed-out worker has dumped its stacks: SIGTERM it.
    TimeoutTerm { pid: u32 },
    /// SIGKILL the worker (past SIGTERM's grace, or silent).
    KillWorker { pid: u32 },
    /// Teardown after the first Ctrl-C has had its time.
    InterruptGrace,
    /// The zygote had its time to report an interrupted collection.
    CollectionInterruptGrace,
    /// The zygote had its time to exit once the run's code was decided.
    ZygoteExitGrace(ExitCode),
    /// Say that pytest is still ending the session.
    SessionFinishNotice,
    /// pytest ended the session with this status, and the zygote has had
    /// its time to exit.
    ZygoteExitAfterSession(ExitCode),
    /// A run that lost its zygote has waited for its last outcomes.
    LostRunLimit { cause: String },
}
