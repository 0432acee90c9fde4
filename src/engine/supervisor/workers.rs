//! The Supervisor's workers: starting (forked or spawned), sampling
//! their memory, and acting on how each one ended.

use std::path::Path;
use std::time::Instant;

use actix::prelude::*;

use super::Supervisor;
use crate::config::WorkerStart;
use crate::engine::messages::*;
use crate::protocol::{ToPython, WorkerExit};
use crate::supervise::launch::{spawn_watched, SpawnedWorker};
use crate::supervise::slots::Ending;

impl Supervisor {
    pub(super) fn start_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let generation = self.slots.start(worker);
        let limit = super::finishing::connect_limit(self.worker_start);
        ctx.run_later(limit, move |act, ctx| act.check_connected(worker, generation, limit, ctx));
        match (self.worker_start, &self.zygote) {
            (WorkerStart::Fork, Some(zygote)) => {
                let _ = zygote.send(ToPython::Fork { worker, count: self.requested_workers });
            }
            (WorkerStart::Fork, None) => {}
            // The zygote runs `pytest_configure_node` for it first, as
            // xdist's controller does; its answer spawns it.
            (WorkerStart::Spawn, Some(zygote)) => {
                let _ = zygote.send(ToPython::ConfigureNode { worker, count: self.requested_workers });
            }
            (WorkerStart::Spawn, None) => self.spawn_worker(worker, None, ctx),
        }
    }

    /// `input`: the zygote's `node_configured` file for it.
    pub(super) fn spawn_worker(&mut self, worker: usize, input: Option<&Path>, ctx: &mut Context<Self>) {
        let failed = WorkerExitSeen(WorkerExit { worker, pid: 0, exit_code: None, signal: None });
        let keep = match self.shard_keep.as_ref().map(|keep| self.launch.write_shard_keep(keep)).transpose() {
            Ok(keep) => keep,
            Err(e) => {
                self.say(format!("rpytest: error: cannot pass the shard selection to a spawned worker: {e}"));
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
            group: self.zygote_pid,
            input,
        };
        let addr = ctx.address();
        let on_exit = move |pid, exit_code, signal| {
            addr.do_send(WorkerExitSeen(WorkerExit { worker, pid, exit_code, signal }));
        };
        match spawn_watched(self.launch.spawned_worker(&spec), on_exit) {
            Ok(pid) => self.slots.spawned(worker, pid),
            Err(e) => {
                self.say(format!("rpytest: cannot spawn worker gw{worker}: {e}"));
                ctx.notify(failed);
            }
        }
    }

    /// One `--max-memory` sample; a worker over the budget is retired
    /// after its current test (see `memory_watch`).
    pub(super) fn watch_memory(&mut self) {
        let Some(memory) = self.memory.as_mut().filter(|_| !self.end.finishing) else { return };
        if let Some(retire) = memory.sample(Instant::now(), self.zygote_pid, &self.slots.processes()) {
            self.say(retire.why);
            self.scheduler.retire.do_send(RetireWorker { worker: retire.worker });
        }
    }

    /// Runs what settling a worker's slot decided.
    pub(super) fn on_ending(&mut self, ending: Ending, ctx: &mut Context<Self>) {
        match ending {
            Ending::WaitUntil(at) => {
                ctx.run_later(at.saturating_duration_since(Instant::now()), |_, ctx| ctx.notify(GraceCheck));
            }
            Ending::Lost { worker, cause, process, timed_out, said_hello } => {
                let log = crate::run::crash::fault_log_tail(&self.launch.socket, worker, process);
                if said_hello {
                    self.node_down(worker, None, Some(format!("worker gw{worker} {cause}")));
                }
                self.scheduler.lost.do_send(WorkerLost { worker, cause, log, timed_out });
            }
            Ending::Ended { worker, process, restart } => {
                if let Some(log) = crate::run::crash::fault_log_tail(&self.launch.socket, worker, process) {
                    self.say(format!("rpytest: worker gw{worker} wrote to its fault log:\n{log}"));
                }
                if restart {
                    self.start_worker(worker, ctx);
                }
            }
        }
    }

    /// Tells the zygote a worker process ended (xdist's `pytest_testnodedown`).
    pub(super) fn node_down(&self, worker: usize, workeroutput: Option<rmpv::Value>, error: Option<String>) {
        if let Some(zygote) = &self.zygote {
            let _ = zygote.send(ToPython::NodeDown { worker, workeroutput, error });
        }
    }
}
