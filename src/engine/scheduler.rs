//! Scheduler actor: owns the run's state (`RunState`, `src/run/state.rs`)
//! and each worker's connection, and is the only source of test events for
//! the Reporter and History.
//!
//! Accepts `StartRun` (inventory and durations known), `WorkerJoined`,
//! `WorkRequest` (a worker wants more), `TestFinished`, `TestInterrupted`
//! (KeyboardInterrupt or `pytest.exit()` in a test), `RunInterrupted`
//! (Ctrl-C), `StopRequested` (a worker's session set shouldfail/shouldstop),
//! `WorkerFinished` and `WorkerLost` (from the Supervisor, once a worker's
//! death is certain), `ZygoteLost` (the zygote died while workers ran),
//! `RetireWorker` (the Supervisor's memory watch),
//! `TestsLeaked` (processes a worker's tests left running) and
//! `SharedFixturesTornDown` (the zygote tore down the shared session fixtures).
//!
//! A thin shell: every message goes to the `RunState`, which decides; this
//! actor performs the `Effect`s it returns (messages to the workers, the
//! Reporter, History and Supervisor) and keeps the run's clock and timers.
//! With time limits the watchdog looks at the running tests every 100 ms,
//! and the Supervisor stops a worker whose test passed its limit
//! (`StopTimedOut`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use super::messages::*;
use crate::protocol::ToPython;
use crate::run::state::{Effect, RunState, Settings};

/// How often the watchdog looks at the running tests' clocks (limits and
/// `--slow-timeout`).
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How often a worker told to wait for the others' fair share (see
/// `RunQueue::must_wait`) is reconsidered, besides after every dispatch.
const FAIR_START_RETRY: Duration = Duration::from_millis(100);

pub struct Scheduler {
    reporter: ReporterLink,
    /// Feed the reporter's live status line (a terminal, not CI).
    live: bool,
    settings: Settings,
    run: Option<Run>,
}

/// A started run: its state, and what acting for it takes.
struct Run {
    state: RunState,
    /// The run's clock: the queue plans from how long running tests have run.
    started: Instant,
    links: HashMap<usize, UnboundedSender<ToPython>>,
    supervisor: SupervisorLink,
    /// The run's subscribers: the Reporter, and the History once it exists.
    events: EventBus,
}

impl Scheduler {
    pub fn new(reporter: ReporterLink, retries: u32, live: bool, rerun_isolated: bool) -> Self {
        Scheduler { reporter, live, settings: Settings { retries, rerun_isolated }, run: None }
    }

    /// Hands an event to the run state, with the seconds since the run
    /// started, and performs what it decided.
    fn apply(&mut self, ctx: &mut Context<Self>, event: impl FnOnce(&mut RunState, f64) -> Vec<Effect>) {
        let Some(run) = self.run.as_mut() else { return };
        let effects = event(&mut run.state, run.started.elapsed().as_secs_f64());
        self.perform(effects, ctx);
    }

    /// The effects in order; the live status once, after them, as it stands.
    fn perform(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        let mut status_changed = false;
        for effect in effects {
            match effect {
                Effect::ToWorker { worker, message } => {
                    if let Some(link) = run.links.get(&worker) {
                        let _ = link.send(message);
                    }
                }
                Effect::DropLink { worker } => {
                    run.links.remove(&worker);
                }
                Effect::Event(event) => run.events.emit(event),
                Effect::StatusChanged => status_changed = true,
                Effect::RestartWorker { worker } => run.supervisor.restart.do_send(RestartWorker { worker }),
                Effect::StopTimedOut { worker, secs } => {
                    run.supervisor.stop_timed_out.do_send(StopTimedOut { worker, secs })
                }
                Effect::TeardownShared { last_ran } => {
                    run.supervisor.teardown.do_send(TeardownShared { index: last_ran })
                }
                Effect::RunComplete { entries, exit, stopped, notes } => {
                    run.supervisor.complete.do_send(RunComplete { entries, exitstatus: exit, stopped, notes });
                }
                Effect::RetryWaitingLater => {
                    ctx.run_later(FAIR_START_RETRY, |act, ctx| act.apply(ctx, RunState::on_fair_start_retry));
                }
            }
        }
        if status_changed && self.live {
            self.send_status();
        }
    }

    fn send_status(&self) {
        let Some(run) = self.run.as_ref() else { return };
        let status = run.state.status();
        let at = |since: f64| run.started + Duration::from_secs_f64(since.max(0.0));
        let running = status.running.into_iter().map(|(worker, nodeid, since)| (worker, nodeid, at(since)));
        let (expected_left, workers) = (status.expected_left, status.workers);
        self.reporter.status.do_send(Status { running: running.collect(), expected_left, workers });
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;
}

impl Handler<StartRun> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: StartRun, ctx: &mut Context<Self>) {
        if msg.watchdog.active() {
            ctx.run_interval(WATCH_EVERY, |act, ctx| act.apply(ctx, RunState::on_watch));
        }
        let state = RunState::new(msg.inventory, msg.queue, msg.watchdog, msg.restarts, self.settings);
        let events = EventBus::new(vec![self.reporter.events.clone(), msg.history.events]);
        let supervisor = msg.supervisor;
        self.run = Some(Run { state, started: Instant::now(), links: HashMap::new(), supervisor, events });
    }
}

impl Handler<WorkerJoined> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerJoined, _: &mut Context<Self>) {
        crate::trace::event(|| format!("worker gw{} said hello", msg.worker));
        let Some(run) = self.run.as_mut() else { return };
        match run.state.on_worker_joined(msg.worker, msg.inventory.as_deref()) {
            Ok(()) => {
                run.links.insert(msg.worker, msg.link);
            }
            Err(refusal) => {
                run.events.diagnostic(refusal);
                let _ = msg.link.send(ToPython::Shutdown);
            }
        }
    }
}

/// The run's events are messages that go to the run state as they are
/// (`at now`: with the run's clock).
macro_rules! route {
    ($event:ident => $on:ident) => {
        route!(@handler $event, |state: &mut RunState, event: $event, _| state.$on(event));
    };
    ($event:ident => $on:ident at now) => {
        route!(@handler $event, |state: &mut RunState, event: $event, now| state.$on(event, now));
    };
    (@handler $event:ident, $call:expr) => {
        impl Handler<$event> for Scheduler {
            type Result = ();

            fn handle(&mut self, event: $event, ctx: &mut Context<Self>) {
                self.apply(ctx, |state, now| ($call)(state, event, now));
            }
        }
    };
}

route!(WorkRequest => on_work_request at now);
route!(TestFinished => on_test_finished at now);
route!(WorkerFinished => on_worker_finished at now);
route!(TestInterrupted => on_test_interrupted);
route!(RunInterrupted => on_run_interrupted);
route!(StopRequested => on_stop_requested);
route!(SharedFixturesTornDown => on_shared_fixtures_torn_down);
route!(WorkerLost => on_worker_lost);
route!(ZygoteLost => on_zygote_lost);
route!(RetireWorker => on_retire_worker);
route!(TestsLeaked => on_tests_leaked);
