//! Supervisor actor: owns the run's Python processes. A thin shell over
//! `crate::supervise` (slots, launch, run start, ending): it starts the
//! zygote (or adopts a warm one), plans the run once collected, starts and
//! replaces workers, stops timed-out ones from outside, samples memory
//! with `--max-memory`, and at the end hands the zygote the run's reports
//! so pytest ends the session there; that session's exit status is the
//! run's (`ending.rs`). A zygote lost mid-run ends the run with every test
//! accounted for (`zygote_lost.rs`).
//!
//! Accepts: `ZygoteConnected`, `FromZygote`, `ZygoteBroken`, `ZygoteExited`,
//! `WarmZygoteEnded`, `WorkerConnected`, `WorkerDisconnected`, `WorkerOutput`,
//! `WorkerExitSeen`, `GraceCheck`, `RestartWorker`, `StopTimedOut`, `WorkerSilent`,
//! `TeardownShared`, `RunComplete`, `Interrupt` (see `messages.rs`).

mod finishing;
mod handlers;
mod session_end;
mod workers;
mod zygote_lost;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::messages::*;
use crate::config::WorkerStart;
use crate::daemon::client::WarmHandover;
use crate::plan::RunPlan;
use crate::protocol::{Inventory, ToPython};
use crate::run::crash::ExitNamer;
use crate::supervise::launch::{spawn_watched, Launcher};
use crate::supervise::memory_watch::RunMemory;
use crate::supervise::run_start::{plan_run, Surroundings};
use crate::supervise::slots::Slots;

/// How long to wait for the other half of a worker's ending.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How often `--max-memory` samples the run's processes.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(200);

pub struct Supervisor {
    plan: Arc<RunPlan>,
    launch: Launcher,
    scheduler: SchedulerLink,
    reporter: ReporterLink,
    /// The run's subscribers: the Reporter, then the History.
    events: EventBus,
    start_history: HistoryStarter,
    history: Option<HistoryLink>,
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
    watch: zygote_lost::ZygoteWatch,
    exits: ExitNamer,
    memory: Option<RunMemory>,
}

impl Supervisor {
    pub fn new(
        plan: Arc<RunPlan>,
        pyworker_dir: PathBuf,
        socket: PathBuf,
        peers: (SchedulerLink, ReporterLink, HistoryStarter),
        done: oneshot::Sender<i32>,
        warm_zygote: Option<WarmHandover>,
    ) -> Self {
        Supervisor {
            launch: Launcher::new(&plan, pyworker_dir, socket),
            requested_workers: plan.workers,
            worker_start: plan.worker_start,
            plan,
            scheduler: peers.0,
            events: EventBus::new(vec![peers.1.events.clone()]),
            reporter: peers.1,
            start_history: peers.2,
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
            watch: zygote_lost::ZygoteWatch::default(),
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
                self.say(format!("rpytest: error: cannot start {}: {e}", self.plan.python.display()));
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
        start.notices.iter().for_each(|line| self.say(line.clone()));
        let inventory = Arc::new(inventory);
        let history = (self.start_history)(start.store, self.plan.store_durations.clone());
        self.history = Some(history.clone());
        (self.worker_start, self.requested_workers) = (start.worker_start, start.requested_workers);
        self.worker_count = start.queue.workers();
        self.inventory = Some(inventory.clone());
        self.events.subscribe(history.events.clone());
        self.events.emit(RunEvent::Began(Arc::new(Begin { inventory: inventory.clone() })));
        let (queue, watchdog, restarts) = (start.queue, start.watchdog, start.restarts);
        let supervisor = self.link(ctx);
        self.scheduler.start.do_send(StartRun { inventory, queue, supervisor, history, watchdog, restarts });
        (0..self.worker_count).for_each(|worker| self.start_worker(worker, ctx));
        if let Some(budget) = self.plan.memory.max_memory {
            self.memory = Some(RunMemory::new(budget, self.worker_start == WorkerStart::Fork));
            ctx.run_interval(MEMORY_SAMPLE_EVERY, |act, _| act.watch_memory());
        }
    }

    /// Where the Scheduler sends what it asks of this actor.
    fn link(&self, ctx: &mut Context<Self>) -> SupervisorLink {
        let me = ctx.address();
        SupervisorLink {
            restart: me.clone().recipient(),
            stop_timed_out: me.clone().recipient(),
            teardown: me.clone().recipient(),
            complete: me.recipient(),
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
        self.watch_zygote(ctx);
        // Collection may take as long as it takes, but not in silence.
        if !self.plan.interactive {
            ctx.run_later(crate::supervise::silence::limit(), |act, _| act.still_collecting());
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
