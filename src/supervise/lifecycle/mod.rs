//! The run's lifecycle as plain state: where the run stands (`Phase`) and
//! what each thing that happens to its processes means for it.
//!
//! The Supervisor actor (`engine/supervisor.rs`) hands every event here
//! with the time, and performs the `Action`s that come back: signals,
//! timers, messages to the zygote and the Scheduler, the closing summary,
//! the exit code. Nothing here sleeps, spawns or reads the clock, so every
//! path (a timeout's escalation, the connect watchdog, Ctrl-C once and
//! twice, the zygote's death in each phase, a session end that overruns)
//! is a unit test with a fake clock (`tests/`).
//!
//! `workers.rs`: the worker slots, their watchdogs and stops;
//! `zygote.rs`: the zygote's life, its death and the session's end;
//! `zygote_exit.rs`: what its process ending means for the exit code;
//! `interrupt.rs`: Ctrl-C; `closing.rs`: the run's completion, summary and
//! exit code; here: the state, the timers and the samples.

mod actions;
mod closing;
mod interrupt;
mod workers;
mod zygote;
pub mod zygote_exit;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use actions::{Action, Summary, Tick, Timer};

use crate::config::WorkerStart;
use crate::exit_code::ExitCode;
use crate::protocol::{ReplayEntry, ToPython, WarningRecord};
use crate::report::Stopped;
use crate::run::crash::ExitNamer;
use crate::schedule::shard::ShardInput;
use crate::supervise::memory_watch::RunMemory;
use crate::supervise::proctree;
use crate::supervise::slots::Slots;

/// How long to wait for the other half of a worker's ending.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often the zygote's process state is looked at (stopped or not).
const ZYGOTE_WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often `--max-memory` samples the run's processes.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// How long the zygote may take to exit after `shutdown` (it runs the
/// session's exit handlers: pytest removes its basetemp lock there).
const ZYGOTE_EXIT_GRACE: Duration = Duration::from_secs(2);

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The zygote starts and pytest collects.
    Collecting,
    /// Workers run the tests.
    Running,
    /// Every test is done: the zygote ends pytest's session with the
    /// run's reports.
    EndingSession,
    /// The Reporter and the History write the closing summary.
    Summarizing,
    /// The exit code is decided; the zygote's own exit is awaited, briefly.
    AwaitingZygoteExit(ExitCode),
    /// The exit code is delivered: nothing waits any more.
    Done,
}

/// What the lifecycle is told at the start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub python: PathBuf,
    /// Under a debugger: a long collection is not remarked on.
    pub interactive: bool,
    /// The warm zygote the daemon handed over (it said hello there).
    pub warm: Option<u32>,
    /// When to say that collection is still running.
    pub collect_notice: Duration,
    /// How long the zygote may stay stopped (SIGSTOP) before it is ended.
    pub stopped_limit: Duration,
    /// `--shard`: what the zygote's collection is partitioned by.
    pub shard: Option<ShardInput>,
    /// `--max-memory`, in bytes.
    pub max_memory: Option<u64>,
}

impl Settings {
    /// The plan's, and the limits the environment may set.
    pub fn new(plan: &crate::plan::RunPlan, warm: Option<u32>) -> Self {
        Settings {
            python: plan.python.clone(),
            interactive: plan.interactive,
            warm,
            collect_notice: crate::supervise::silence::limit(),
            stopped_limit: zygote::stopped_limit(),
            shard: plan.shard.clone(),
            max_memory: plan.memory.max_memory,
        }
    }
}

/// The zygote, as far as the lifecycle knows it.
#[derive(Debug, Default)]
struct Zygote {
    /// Its process, while it runs.
    pid: Option<u32>,
    /// Its connection is open for messages.
    connected: bool,
    /// Since when it has been seen stopped.
    stopped_since: Option<Instant>,
    /// How rpytest ended it, when it did.
    ended_by_us: Option<String>,
}

/// How the run's workers start, once collected.
#[derive(Debug, Clone, Copy)]
struct WorkerPlan {
    start: WorkerStart,
    /// The `-n` in force: `PYTEST_XDIST_WORKER_COUNT` as xdist would set it.
    requested: usize,
}

/// What the closing summary will need.
#[derive(Debug, Default)]
struct Closing {
    /// Why the run stopped early, kept for the summary after the session ends.
    stopped: Option<Stopped>,
    /// Lines for the summary (LEAK notes), from the run's completion.
    notes: Vec<String>,
    /// What pytest warned of while it ended the session.
    warnings: Vec<WarningRecord>,
    /// The run's reports while pytest ends the session with junit on, to
    /// write the file here should the zygote die doing so.
    replay: Option<Vec<ReplayEntry>>,
    /// pytest ended the session in the zygote (its sessionfinish ran).
    session_finished: bool,
}

/// The run's lifecycle: every `on_*` takes an event and the time, and
/// returns what the actor does, in order.
pub struct Lifecycle {
    settings: Settings,
    phase: Phase,
    zygote: Zygote,
    slots: Slots,
    workers: WorkerPlan,
    /// This shard's selection, for spawned workers' own collection.
    shard_keep: Option<Vec<usize>>,
    collected: bool,
    /// The collected session writes a junit file.
    junit: bool,
    /// Ctrl-C was pressed once: the run is tearing down.
    interrupted: bool,
    /// How the summary names the interrupt (`signals::banner`).
    banner: &'static str,
    /// The exit status pytest's session left, once reported.
    session_ended: Option<ExitCode>,
    /// Every test is done (the Scheduler's `RunComplete`).
    completed: bool,
    closing: Closing,
    exits: ExitNamer,
    /// `--max-memory`'s samples, once the workers start.
    memory: Option<RunMemory>,
    actions: Vec<Action>,
}

impl Lifecycle {
    pub fn new(settings: Settings) -> Self {
        Lifecycle {
            settings,
            phase: Phase::Collecting,
            zygote: Zygote::default(),
            slots: Slots::new(EXIT_GRACE),
            workers: WorkerPlan { start: WorkerStart::Fork, requested: 0 },
            shard_keep: None,
            collected: false,
            junit: false,
            interrupted: false,
            banner: "KeyboardInterrupt",
            session_ended: None,
            completed: false,
            closing: Closing::default(),
            exits: ExitNamer::default(),
            memory: None,
            actions: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn zygote_pid(&self) -> Option<u32> {
        self.zygote.pid
    }

    /// Whether pytest reported the session's exit status.
    pub fn session_ended(&self) -> bool {
        self.session_ended.is_some()
    }

    /// Every live worker process: (worker, pid).
    pub fn processes(&self) -> Vec<(usize, u32)> {
        self.slots.processes()
    }

    /// The zygote collected: the actor has started the run's Scheduler;
    /// `worker_count` workers start now, as `start` says.
    pub fn on_collected(
        &mut self,
        start: WorkerStart,
        requested: usize,
        worker_count: usize,
        junit: bool,
    ) -> Vec<Action> {
        self.collected = true;
        self.junit = junit;
        self.enter(Phase::Running);
        self.workers = WorkerPlan { start, requested };
        self.memory = self.settings.max_memory.map(|budget| RunMemory::new(budget, start == WorkerStart::Fork));
        if self.memory.is_some() {
            self.emit(Action::Repeat { every: MEMORY_SAMPLE_EVERY, tick: Tick::MemorySample });
        }
        (0..worker_count).for_each(|worker| self.start_worker(worker));
        self.take()
    }

    /// A sample is due: the one event that reads the system (/proc).
    pub fn on_tick(&mut self, tick: Tick, now: Instant) -> Vec<Action> {
        match tick {
            Tick::ZygoteWatch => return self.on_zygote_watch(|pid| proctree::is_stopped(pid as i32), now),
            Tick::MemorySample => self.sample_memory(now),
        }
        self.take()
    }

    /// One `--max-memory` sample; a worker over the budget is retired
    /// after its current test. None while pytest ends the session.
    fn sample_memory(&mut self, now: Instant) {
        let ending_session = self.phase == Phase::EndingSession;
        let Some(memory) = self.memory.as_mut().filter(|_| !ending_session) else { return };
        if let Some(retire) = memory.sample(now, self.zygote.pid, &self.slots.processes()) {
            self.say(retire.why);
            self.emit(Action::RetireWorker { worker: retire.worker });
        }
    }

    /// A timer armed earlier is due.
    pub fn on_timer(&mut self, timer: Timer, now: Instant) -> Vec<Action> {
        match timer {
            Timer::StillCollecting => self.still_collecting(),
            Timer::SlotGrace => self.slot_grace_over(now),
            Timer::Connect { worker, generation, limit } => self.check_connected(worker, generation, limit),
            Timer::TimeoutTerm { pid } => self.term_timed_out(pid),
            Timer::KillWorker { pid } => self.emit(Action::SignalTree { pid, signal: libc::SIGKILL }),
            Timer::InterruptGrace => self.interrupt_grace_over(),
            Timer::CollectionInterruptGrace => {
                self.kill_zygote();
                self.finish(ExitCode::Interrupted);
            }
            Timer::ZygoteExitGrace(code) => self.finish(code),
            Timer::SessionFinishNotice => self.session_finish_notice(),
            Timer::ZygoteExitAfterSession(code) => self.session_end_overrun(code),
            Timer::LostRunLimit { cause } => self.lost_run_limit(cause),
        }
        self.take()
    }

    /// Moves to `phase`, unless the run is already over.
    fn enter(&mut self, phase: Phase) {
        if self.phase != Phase::Done {
            self.phase = phase;
        }
    }

    fn kill_zygote(&mut self) {
        if let Some(pid) = self.zygote.pid {
            self.emit(Action::KillZygote { pid });
        }
    }

    fn kill_everything(&mut self) {
        self.kill_zygote();
        for (_, pid) in self.slots.processes() {
            self.emit(Action::SignalTree { pid, signal: libc::SIGKILL });
        }
    }

    fn forget_zygote(&mut self) {
        if self.zygote.connected {
            self.zygote.connected = false;
            self.emit(Action::ForgetZygote);
        }
    }

    /// Sends `message` to the zygote, if it can still hear.
    fn tell_zygote(&mut self, message: ToPython) {
        if self.zygote.connected {
            self.emit(Action::ToZygote(message));
        }
    }

    fn say(&mut self, line: impl Into<String>) {
        self.emit(Action::Say(line.into()));
    }

    fn arm(&mut self, after: Duration, timer: Timer) {
        self.emit(Action::Arm { after, timer });
    }

    fn emit(&mut self, action: Action) {
        self.actions.push(action);
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }
}
