//! Supervisor actor: owns the run's Python processes, as a thin shell over
//! the run's lifecycle (`supervise::lifecycle`), which decides. Every
//! message goes to it with the time (`routing.rs`), and this actor performs
//! the actions it returns (`perform.rs`), and plans the run once the
//! zygote has collected (`supervise::run_start`).
//!
//! Accepts: `ZygoteConnected`, `FromZygote`, `ZygoteBroken`, `ZygoteExited`,
//! `WarmZygoteEnded`, `WorkerConnected`, `WorkerDisconnected`, `WorkerOutput`,
//! `WorkerExitSeen`, `RestartWorker`, `StopTimedOut`, `WorkerSilent`,
//! `TeardownShared`, `RunComplete`, `Interrupt` (see `messages.rs`).

mod perform;
mod routing;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::messages::*;
use crate::daemon::client::WarmHandover;
use crate::exit_code::ExitCode;
use crate::plan::RunPlan;
use crate::protocol::{Inventory, ToPython};
use crate::supervise::launch::Launcher;
use crate::supervise::lifecycle::{Action, Lifecycle, Settings};
use crate::supervise::run_start::{plan_run, Surroundings};

pub struct Supervisor {
    plan: Arc<RunPlan>,
    life: Lifecycle,
    launch: Launcher,
    scheduler: SchedulerLink,
    reporter: ReporterLink,
    /// The run's subscribers: the Reporter, then the History.
    events: EventBus,
    start_history: HistoryStarter,
    history: Option<HistoryLink>,
    done: Option<oneshot::Sender<ExitCode>>,
    zygote: Option<UnboundedSender<ToPython>>,
    /// A warm zygote the daemon handed over, to adopt instead of starting one.
    warm_zygote: Option<WarmHandover>,
    inventory: Option<Arc<Inventory>>,
    worker_count: usize,
    /// The junit file pytest could not write was written here.
    junit_written: bool,
}

impl Supervisor {
    pub fn new(
        plan: Arc<RunPlan>,
        pyworker_dir: PathBuf,
        socket: PathBuf,
        (scheduler, reporter, start_history): (SchedulerLink, ReporterLink, HistoryStarter),
        done: oneshot::Sender<ExitCode>,
        warm_zygote: Option<WarmHandover>,
    ) -> Self {
        Supervisor {
            life: Lifecycle::new(Settings::new(&plan, warm_zygote.as_ref().map(|handover| handover.pid))),
            launch: Launcher::new(&plan, pyworker_dir, socket),
            plan,
            scheduler,
            events: EventBus::new(vec![reporter.events.clone()]),
            reporter,
            start_history,
            history: None,
            done: Some(done),
            zygote: None,
            warm_zygote,
            inventory: None,
            worker_count: 0,
            junit_written: false,
        }
    }

    /// Hands an event to the lifecycle, with the time, and performs what it decided.
    fn apply(&mut self, ctx: &mut Context<Self>, event: impl FnOnce(&mut Lifecycle, Instant) -> Vec<Action>) {
        let actions = event(&mut self.life, Instant::now());
        self.perform(actions, ctx);
    }

    /// The zygote collected: the run is planned, the History and the
    /// Scheduler start, and then the workers.
    fn plan_run(&mut self, inventory: Inventory, ctx: &mut Context<Self>) {
        let runs_beside = self.warm_zygote.as_ref().map_or(0, |handover| handover.runs_beside as usize);
        let start = plan_run(&self.plan, &inventory, &Surroundings { zygote_pid: self.life.zygote_pid(), runs_beside });
        start.notices.into_iter().for_each(|line| self.events.diagnostic(line));
        let inventory = Arc::new(inventory);
        let history = (self.start_history)(start.store, self.plan.store_durations.clone());
        self.history = Some(history.clone());
        self.worker_count = start.queue.workers();
        self.inventory = Some(inventory.clone());
        self.events.subscribe(history.events.clone());
        self.events.emit(RunEvent::Began(Arc::new(Begin { inventory: inventory.clone() })));
        let (queue, watchdog, restarts, supervisor) =
            (start.queue, start.watchdog, start.restarts, super::supervisor_link(ctx.address()));
        let junit = inventory.junitxml.is_some();
        self.scheduler.start.do_send(StartRun { inventory, queue, supervisor, history, watchdog, restarts });
        let (worker_start, requested, count) = (start.worker_start, start.requested_workers, self.worker_count);
        self.apply(ctx, |life, _| life.on_collected(worker_start, requested, count, junit));
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.apply(ctx, Lifecycle::on_start);
        let addr = ctx.address();
        actix::spawn(crate::supervise::signals::forward(move || addr.do_send(Interrupt)));
    }
}
