//! Supervisor actor: owns the run's Python processes. A thin shell over
//! `crate::supervise` (slots, launch, run start, ending): it starts the
//! zygote (or adopts a warm one), plans the run once collected, starts and
//! replaces workers, stops timed-out ones from outside, samples memory
//! with `--max-memory`, and at the end hands the zygote the run's reports
//! so pytest ends the session there; that session's exit status is the
//! run's (`ending.rs`).
//!
//! Accepts: `ZygoteConnected`, `FromZygote`, `ZygoteBroken`, `ZygoteExited`,
//! `WarmZygoteEnded`, `WorkerConnected`, `WorkerDisconnected`, `WorkerOutput`,
//! `WorkerExitSeen`, `GraceCheck`, `RestartWorker`, `StopTimedOut`,
//! `TeardownShared`, `RunComplete`, `Interrupt` (see `messages.rs`).

mod finishing;
mod handlers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::history::History;
pub use super::messages::{
    FromZygote, GraceCheck, Interrupt, RestartWorker, RunComplete, StopTimedOut, TeardownShared, WarmZygoteEnded,
    WorkerConnected, WorkerDisconnected, WorkerExitSeen, WorkerOutput, ZygoteBroken, ZygoteConnected, ZygoteExited,
};
use super::reporter::{Begin, Reporter};
use super::scheduler::{RetireWorker, Scheduler, StartRun};
use crate::config::WorkerStart;
use crate::daemon::client::WarmHandover;
use crate::plan::RunPlan;
use crate::protocol::{Inventory, ToPython, WorkerExit};
use crate::run::crash::ExitNamer;
use crate::supervise::launch::{spawn_watched, Launcher, SpawnedWorker};
use crate::supervise::memory_watch::RunMemory;
use crate::supervise::run_start::{plan_run, Surroundings};
use crate::supervise::slots::{Ending, Slots};

/// How long to wait for the other half of a worker's ending.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often `--max-memory` samples the run's processes.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(200);

pub struct Supervisor {
    plan: Arc<RunPlan>,
    launch: Launcher,
    scheduler: Addr<Scheduler>,
    reporter: Addr<Reporter>,
    history: Option<Addr<History>>,
    done: Option<oneshot::Sender<i32>>,
    zygote: Option<UnboundedSender<ToPython>>,
    zygote_pid: Option<u32>,
    /// A warm zygote the daemon handed over, to adopt instead of starting one.
    warm_zygote: Option<WarmHandover>,
    inventory: Option<Arc<Inventory>>,
    slots: Slots,
    /// How this run's workers start: the plan's, unless threads in the
    /// zygote make forking unsafe.
    worker_start: WorkerStart,
    /// The `-n` in force: `PYTEST_XDIST_WORKER_COUNT` as xdist would set it.
    requested_workers: usize,
    worker_count: usize,
    /// This shard's selection, for spawned workers to apply to their own collection.
    shard_keep: Option<Vec<usize>>,
    end: finishing::EndState,
    exits: ExitNamer,
    memory: Option<RunMemory>,
}

impl Supervisor {
    pub fn new(
        plan: Arc<RunPlan>,
        pyworker_dir: PathBuf,
        socket: PathBuf,
        scheduler: Addr<Scheduler>,
        reporter: Addr<Reporter>,
        done: oneshot::Sender<i32>,
        warm_zygote: Option<WarmHandover>,
    ) -> Self {
        Supervisor {
            launch: Launcher::new(&plan, pyworker_dir, socket),
            requested_workers: plan.workers,
            worker_start: plan.worker_start,
            plan,
            scheduler,
            reporter,
            history: None,
            done: Some(done),
            zygote: None,
            zygote_pid: None,
            warm_zygote,
            inventory: None,
            slots: Slots::new(EXIT_GRACE),
            worker_count: 0,
            shard_keep: None,
            end: finishing::EndState::default(),
            exits: ExitNamer::default(),
            memory: None,
        }
    }

    fn start_zygote(&mut self, ctx: &mut Context<Self>) {
        crate::trace::event(|| "starting the zygote".into());
        let addr = ctx.address();
        let on_exit = move |_, code, signal| addr.do_send(ZygoteExited { code, signal });
        match spawn_watched(self.launch.zygote(), on_exit) {
            Ok(pid) => self.zygote_pid = Some(pid),
            Err(e) => {
                eprintln!("rpytest: error: cannot start {}: {e}", self.plan.python.display());
                self.finish(3);
            }
        }
    }

    /// A warm zygote is the daemon's child: watch its exit through a pidfd.
    fn adopt_zygote(&mut self, pid: u32, ctx: &mut Context<Self>) {
        crate::trace::event(|| format!("adopting warm zygote {pid}"));
        self.zygote_pid = Some(pid);
        let addr = ctx.address();
        actix::spawn(async move {
            crate::daemon::zygote_exited(pid).await;
            addr.do_send(WarmZygoteEnded);
        });
    }

    fn on_collected(&mut self, inventory: Inventory, ctx: &mut Context<Self>) {
        crate::trace::event(|| format!("collected {} tests", inventory.items.len()));
        if self.end.exit_after_zygote.is_some() {
            return; // interrupted during collection
        }
        let around = Surroundings {
            zygote_pid: self.zygote_pid,
            runs_beside: self.warm_zygote.as_ref().map_or(0, |handover| handover.runs_beside as usize),
        };
        let start = plan_run(&self.plan, &inventory, &around);
        start.notices.iter().for_each(|line| eprintln!("{line}"));
        let inventory = Arc::new(inventory);
        let history = History::new(start.store, self.plan.store_durations.clone()).start();
        self.history = Some(history.clone());
        (self.worker_start, self.requested_workers) = (start.worker_start, start.requested_workers);
        self.worker_count = start.queue.workers();
        self.inventory = Some(inventory.clone());
        self.reporter.do_send(Begin { inventory: inventory.clone() });
        let (queue, watchdog, restarts) = (start.queue, start.watchdog, start.restarts);
        self.scheduler.do_send(StartRun { inventory, queue, supervisor: ctx.address(), history, watchdog, restarts });
        (0..self.worker_count).for_each(|worker| self.start_worker(worker, ctx));
        if let Some(budget) = self.plan.memory.max_memory {
            self.memory = Some(RunMemory::new(budget, self.worker_start == WorkerStart::Fork));
            ctx.run_interval(MEMORY_SAMPLE_EVERY, |act, _| act.watch_memory());
        }
    }

    fn start_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let generation = self.slots.start(worker);
        let limit = finishing::connect_limit(self.worker_start);
        ctx.run_later(limit, move |act, ctx| act.check_connected(worker, generation, limit, ctx));
        match (self.worker_start, &self.zygote) {
            (WorkerStart::Fork, Some(zygote)) => {
                let _ = zygote.send(ToPython::Fork { worker, count: self.requested_workers });
            }
            (WorkerStart::Fork, None) => {}
            (WorkerStart::Spawn, _) => self.spawn_worker(worker, ctx),
        }
    }

    fn spawn_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let failed = WorkerExitSeen(WorkerExit { worker, pid: 0, exit_code: None, signal: None });
        let keep = match self.shard_keep.as_ref().map(|keep| self.launch.write_shard_keep(keep)).transpose() {
            Ok(keep) => keep,
            Err(e) => {
                eprintln!("rpytest: error: cannot pass the shard selection to a spawned worker: {e}");
                return ctx.notify(failed);
            }
        };
        let inventory = self.inventory.as_ref().expect("workers start after collection");
        let spec = SpawnedWorker {
            worker,
            count: self.requested_workers,
            basetemp: &inventory.basetemp,
            testrunuid: &inventory.testrunuid,
            shard_keep: keep.as_deref(),
        };
        let addr = ctx.address();
        let on_exit = move |pid, exit_code, signal| {
            addr.do_send(WorkerExitSeen(WorkerExit { worker, pid, exit_code, signal }));
        };
        match spawn_watched(self.launch.spawned_worker(&spec), on_exit) {
            Ok(pid) => self.slots.spawned(worker, pid),
            Err(e) => {
                eprintln!("rpytest: cannot spawn worker gw{worker}: {e}");
                ctx.notify(failed);
            }
        }
    }

    /// One `--max-memory` sample; a worker over the budget is retired
    /// after its current test (see `memory_watch`).
    fn watch_memory(&mut self) {
        let Some(memory) = self.memory.as_mut().filter(|_| !self.end.finishing) else { return };
        if let Some(retire) = memory.sample(Instant::now(), self.zygote_pid, &self.slots.processes()) {
            eprintln!("{}", retire.why);
            self.scheduler.do_send(RetireWorker { worker: retire.worker });
        }
    }

    /// Runs what settling a worker's slot decided.
    fn on_ending(&mut self, ending: Ending, ctx: &mut Context<Self>) {
        match ending {
            Ending::WaitUntil(at) => {
                ctx.run_later(at.saturating_duration_since(Instant::now()), |_, ctx| ctx.notify(GraceCheck));
            }
            Ending::Lost { worker, cause, process, timed_out, said_hello } => {
                let log = crate::run::crash::fault_log_tail(&self.launch.socket, worker, process);
                if said_hello {
                    self.node_down(worker, None, Some(format!("worker gw{worker} {cause}")));
                }
                self.scheduler.do_send(super::scheduler::WorkerLost { worker, cause, log, timed_out });
            }
            Ending::Ended { worker, process, restart } => {
                if let Some(log) = crate::run::crash::fault_log_tail(&self.launch.socket, worker, process) {
                    eprintln!("rpytest: worker gw{worker} wrote to its fault log:\n{log}");
                }
                if restart {
                    self.start_worker(worker, ctx);
                }
            }
        }
    }

    /// Tells the zygote a worker process ended (xdist's `pytest_testnodedown`).
    fn node_down(&self, worker: usize, workeroutput: Option<rmpv::Value>, error: Option<String>) {
        if let Some(zygote) = &self.zygote {
            let _ = zygote.send(ToPython::NodeDown { worker, workeroutput, error });
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match self.warm_zygote.as_ref().map(|handover| handover.pid) {
            Some(pid) => self.adopt_zygote(pid, ctx),
            None => self.start_zygote(ctx),
        }
        let addr = ctx.address();
        actix::spawn(async move {
            let Some(mut signals) = crate::supervise::signals::StopSignals::install() else { return };
            while signals.next().await.is_some() {
                addr.do_send(Interrupt);
            }
        });
    }
}
