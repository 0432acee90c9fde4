//! The Supervisor's message routing: each handler hands its message to
//! the slots, the run start or the ending logic, and runs the effects.

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::Supervisor;
use crate::engine::messages::*;
use crate::protocol::{self, FromPython, ToPython};
use crate::schedule::shard;

/// How long teardown may take after the first Ctrl-C.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

impl Handler<ZygoteConnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ZygoteConnected, _: &mut Context<Self>) {
        crate::trace::event(|| "zygote said hello".into());
        self.zygote = Some(msg.link);
    }
}

impl Handler<FromZygote> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: FromZygote, ctx: &mut Context<Self>) {
        match msg.0 {
            FromPython::ShardRequest { ids } => self.on_shard_request(ids),
            FromPython::Collected(inventory) => self.on_collected(*inventory, ctx),
            FromPython::WorkerForked { worker, pid } => self.slots.forked(worker, pid),
            FromPython::NodeConfigured { worker, path } => {
                if self.slots.awaits_process(worker) {
                    self.spawn_worker(worker, Some(Path::new(&path)), ctx);
                }
            }
            FromPython::WorkerExited(exit) => ctx.notify(WorkerExitSeen(exit)),
            FromPython::TerminalSummary { text } => self.reporter.plugin_summary.do_send(PluginSummary { text }),
            FromPython::SessionEnded { exit_code, warnings } => {
                self.end.warnings = warnings;
                self.on_session_ended(exit_code, ctx)
            }
            FromPython::SharedTeardownDone { phases } => {
                crate::trace::event(|| "shared session fixtures torn down".into());
                self.scheduler.torn_down.do_send(SharedFixturesTornDown { phases });
            }
            FromPython::InternalError { message } => self.say(format!("rpytest: zygote: {message}")),
            other => self.say(format!("rpytest: the zygote sent an unexpected {other:?}; ignored")),
        }
    }
}

impl Supervisor {
    /// The zygote collected with sharding on: tell it which tests to keep.
    fn on_shard_request(&mut self, ids: Vec<String>) {
        let (keep, line) = match &self.plan.shard {
            Some(input) => {
                let partition = shard::partition(&ids, input.durations.as_ref().map(|(_, d)| d), input.spec.total);
                (partition.members(input.spec.index), partition.describe(input))
            }
            // Not sharding: keep everything (the zygote waits for an answer).
            None => ((0..ids.len()).collect(), String::new()),
        };
        self.shard_keep = Some(keep.clone());
        if let Some(zygote) = &self.zygote {
            let _ = zygote.send(ToPython::ShardPlan { keep, line });
        }
    }
}

impl Handler<ZygoteBroken> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ZygoteBroken, _: &mut Context<Self>) {
        self.say(format!("rpytest: error: bad message from the zygote ({}); stopping it", msg.error));
        self.kill_zygote();
    }
}

impl Handler<ZygoteExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ZygoteExited, ctx: &mut Context<Self>) {
        self.on_zygote_exited(msg.code, msg.signal, ctx);
    }
}

impl Handler<WarmZygoteEnded> for Supervisor {
    type Result = ();

    /// pytest reported the session's exit status, or the process ended
    /// without one (`os._exit` in `pytest_sessionfinish`): then its own
    /// exit code is the run's, and only the daemon, its parent, has it.
    fn handle(&mut self, _: WarmZygoteEnded, ctx: &mut Context<Self>) {
        let Some(handover) = self.warm_zygote.clone().filter(|_| self.end.session_ended.is_none()) else {
            return ctx.notify(ZygoteExited { code: None, signal: None });
        };
        let addr = ctx.address();
        actix::spawn(async move {
            let asked = tokio::task::spawn_blocking(move || crate::daemon::client::exit_status(&handover)).await;
            let (code, signal) = asked.unwrap_or_default();
            addr.do_send(ZygoteExited { code, signal });
        });
    }
}

impl Handler<WorkerConnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerConnected, _: &mut Context<Self>) {
        self.slots.connected(msg.worker, msg.pid);
    }
}

impl Handler<WorkerDisconnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerDisconnected, ctx: &mut Context<Self>) {
        if let Some(ending) = self.slots.disconnected(msg.worker, msg.pid, msg.finished, Instant::now()) {
            self.on_ending(ending, ctx);
        }
    }
}

impl Handler<WorkerOutput> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerOutput, _: &mut Context<Self>) {
        // Said before the Scheduler hears of it, so a restart it asks for
        // waits for this process to end (see `RestartWorker`).
        if self.slots.finished(msg.worker, msg.pid) {
            self.node_down(msg.worker, msg.workeroutput, None);
        }
    }
}

impl Handler<WorkerExitSeen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerExitSeen, ctx: &mut Context<Self>) {
        let exit = msg.0;
        let Some(stopped_by_us) = self.slots.stopped_by_us(exit.worker, exit.pid) else { return };
        let cause = self.exits.cause(exit.exit_code, exit.signal, stopped_by_us);
        if let Some(ending) = self.slots.exited(exit.worker, exit.pid, cause, Instant::now()) {
            self.on_ending(ending, ctx);
        }
    }
}

impl Handler<GraceCheck> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: GraceCheck, ctx: &mut Context<Self>) {
        for ending in self.slots.expire(Instant::now()) {
            self.on_ending(ending, ctx);
        }
    }
}

impl Handler<StopTimedOut> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopTimedOut, ctx: &mut Context<Self>) {
        self.stop_timed_out(msg.worker, msg.secs, ctx);
    }
}

impl Handler<WorkerSilent> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerSilent, ctx: &mut Context<Self>) {
        self.stop_silent(msg, ctx);
    }
}

impl Handler<RestartWorker> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartWorker, ctx: &mut Context<Self>) {
        if self.slots.restart_now(msg.worker) {
            self.start_worker(msg.worker, ctx);
        }
    }
}

impl Handler<TeardownShared> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: TeardownShared, _: &mut Context<Self>) {
        match &self.zygote {
            Some(zygote) => {
                let _ = zygote.send(ToPython::TeardownShared { index: msg.index });
            }
            None => self.scheduler.torn_down.do_send(SharedFixturesTornDown { phases: Vec::new() }),
        }
    }
}

impl Handler<RunComplete> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RunComplete, ctx: &mut Context<Self>) {
        crate::trace::event(|| "every test finished".into());
        self.end.exitstatus = Some(msg.exitstatus);
        self.end.notes = msg.notes;
        let Some(zygote) = self.zygote.clone() else {
            self.write_junit(&msg.entries);
            return self.summarize(msg.exitstatus, msg.stopped, ctx);
        };
        self.end.stopped = msg.stopped;
        if self.inventory.as_ref().is_some_and(|inventory| inventory.junitxml.is_some()) {
            self.watch.replay = Some(msg.entries.clone());
        }
        self.end_session_in_zygote(zygote, protocol::finish_messages(msg.entries, msg.exitstatus), ctx);
    }
}

/// The first Ctrl-C interrupts the running tests as pytest's does (SIGINT
/// to each worker: the test in flight raises KeyboardInterrupt), then the
/// run ends the normal way, teardown, junit and cache included, within
/// `INTERRUPT_GRACE`. A second Ctrl-C stops everything at once. SIGTERM and
/// SIGHUP count as Ctrl-C (`signals.rs`). During collection pytest gets
/// the SIGINT and reports it itself.
impl Handler<Interrupt> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            return;
        }
        if self.inventory.is_none() {
            return self.interrupt_collection(ctx);
        }
        if self.end.interrupted {
            return self.stop_at_once(ctx);
        }
        self.end.interrupted = true;
        self.say("\nrpytest: interrupted; tearing down (Ctrl-C again to stop at once)");
        if !self.end.finishing {
            for (_, pid) in self.slots.processes() {
                crate::supervise::signal(pid, libc::SIGINT);
            }
            self.scheduler.interrupted.do_send(RunInterrupted);
        }
        ctx.run_later(INTERRUPT_GRACE, |act, ctx| {
            if act.done.is_some() {
                act.say(format!(
                    "rpytest: teardown after Ctrl-C did not end within {}s; stopping everything",
                    INTERRUPT_GRACE.as_secs()
                ));
                act.stop_at_once(ctx);
            }
        });
    }
}
