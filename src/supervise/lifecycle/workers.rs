//! The lifecycle's workers: starting each in its slot, the start-up
//! watchdog, acting on how each one ended (`slots`), and stopping one
//! from outside: a test past its time limit (SIGUSR1 for the stack dump,
//! SIGTERM, then SIGKILL), or a worker silent where a reply was due.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Action, Lifecycle, Timer};
use crate::config::WorkerStart;
use crate::protocol::{ToPython, WorkerExit};
use crate::run::timeouts;
use crate::supervise::launch::WorkerSpawn;
use crate::supervise::silence::Silent;
use crate::supervise::slots::SlotVerdict;

/// How long a forked worker may take to connect; a spawned one collects
/// the suite first, so it gets longer. `RPYTEST_WORKER_CONNECT_TIMEOUT`
/// (seconds) sets both.
const FORKED_CONNECT_LIMIT: Duration = Duration::from_secs(30);
const SPAWNED_CONNECT_LIMIT: Duration = Duration::from_secs(300);

fn connect_limit(start: WorkerStart) -> Duration {
    let from_env = std::env::var("RPYTEST_WORKER_CONNECT_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok());
    match (from_env, start) {
        (Some(secs), _) if secs > 0.0 => Duration::from_secs_f64(secs),
        (_, WorkerStart::Fork) => FORKED_CONNECT_LIMIT,
        (_, WorkerStart::Spawn) => SPAWNED_CONNECT_LIMIT,
    }
}

impl Lifecycle {
    /// The zygote forked `worker` as `pid`.
    pub fn on_worker_forked(&mut self, worker: usize, pid: u32, _now: Instant) -> Vec<Action> {
        self.slots.forked(worker, pid);
        self.take()
    }

    /// The zygote ran `pytest_configure_node` for a spawned worker: it
    /// starts now, with `input`, if its slot still waits for it.
    pub fn on_node_configured(&mut self, worker: usize, input: PathBuf, _now: Instant) -> Vec<Action> {
        if self.slots.awaits_process(worker) {
            self.spawn(worker, Some(input));
        }
        self.take()
    }

    pub fn on_worker_spawned(&mut self, worker: usize, pid: u32, _now: Instant) -> Vec<Action> {
        self.slots.spawned(worker, pid);
        self.take()
    }

    /// The worker said hello.
    pub fn on_worker_connected(&mut self, worker: usize, pid: u32, _now: Instant) -> Vec<Action> {
        self.slots.connected(worker, pid);
        self.take()
    }

    pub fn on_worker_disconnected(&mut self, worker: usize, pid: u32, finished: bool, now: Instant) -> Vec<Action> {
        if let Some(verdict) = self.slots.disconnected(worker, pid, finished, now) {
            self.on_verdict(verdict, now);
        }
        self.take()
    }

    /// The worker finished its session: plugins hear of it in the zygote
    /// (xdist's `pytest_testnodedown`) before the Scheduler does, so a
    /// restart it asks for waits for this process to end.
    pub fn on_worker_output(
        &mut self,
        worker: usize,
        pid: u32,
        output: Option<rmpv::Value>,
        _: Instant,
    ) -> Vec<Action> {
        if self.slots.finished(worker, pid) {
            self.tell_zygote(ToPython::NodeDown { worker, workeroutput: output, error: None });
        }
        self.take()
    }

    /// A worker process ended (its exit status, from the zygote or our wait).
    pub fn on_worker_exit(&mut self, exit: WorkerExit, now: Instant) -> Vec<Action> {
        let Some(stopped_by_us) = self.slots.stopped_by_us(exit.worker, exit.pid) else { return self.take() };
        let cause = self.exits.cause(exit.exit_code, exit.signal, stopped_by_us);
        if let Some(verdict) = self.slots.exited(exit.worker, exit.pid, cause, now) {
            self.on_verdict(verdict, now);
        }
        self.take()
    }

    /// The Scheduler wants a fresh process in `worker`'s slot.
    pub fn on_restart_worker(&mut self, worker: usize, _now: Instant) -> Vec<Action> {
        if self.slots.restart_now(worker) {
            self.start_worker(worker);
        }
        self.take()
    }

    /// Every worker is done: the zygote tears the shared session fixtures
    /// down (`last_ran` carries a teardown failure).
    pub fn on_teardown_shared(&mut self, last_ran: Option<usize>, _now: Instant) -> Vec<Action> {
        match self.zygote.connected {
            true => self.emit(Action::ToZygote(ToPython::TeardownShared { index: last_ran })),
            false => self.emit(Action::TornDown(Vec::new())),
        }
        self.take()
    }

    /// The test `worker` runs passed its limit of `secs`: SIGUSR1 for the
    /// stack dump, then SIGTERM (`Timer::TimeoutTerm`), then SIGKILL.
    pub fn on_stop_timed_out(&mut self, worker: usize, secs: f64, _now: Instant) -> Vec<Action> {
        let Some(pid) = self.slots.time_out(worker, secs) else { return self.take() };
        self.say(format!("rpytest: {} on worker gw{worker} (pid {pid}): stopping it", timeouts::describe(secs)));
        self.emit(Action::Signal { pid, signal: libc::SIGUSR1 });
        self.arm(timeouts::DUMP_WAIT, Timer::TimeoutTerm { pid });
        self.take()
    }

    /// A worker silent where a reply was due (`supervise::silence`) is
    /// named, with what rpytest waited for, and treated as crashed: its
    /// stacks go to its fault log (SIGUSR1), then it and everything under
    /// it are killed. Its slot ends as a crash with that cause.
    pub fn on_worker_silent(&mut self, worker: usize, pid: u32, silent: Silent, _now: Instant) -> Vec<Action> {
        let why = format!("it sent nothing for {}s while rpytest waited for {}", silent.secs, silent.waited_for);
        let Some(pid) = self.slots.silenced(worker, pid, format!("{why}; rpytest stopped it")) else {
            return self.take();
        };
        self.say(format!("rpytest: error: worker gw{worker} (pid {pid}): {why}; treating it as crashed"));
        self.emit(Action::Signal { pid, signal: libc::SIGUSR1 });
        self.arm(timeouts::DUMP_WAIT, Timer::KillWorker { pid });
        self.take()
    }

    /// A new process in `worker`'s slot, under the start-up watchdog.
    pub(super) fn start_worker(&mut self, worker: usize) {
        let generation = self.slots.start(worker);
        let limit = connect_limit(self.workers.start);
        self.arm(limit, Timer::Connect { worker, generation, limit });
        let count = self.workers.requested;
        match (self.workers.start, self.zygote.connected) {
            (WorkerStart::Fork, true) => self.emit(Action::ToZygote(ToPython::Fork { worker, count })),
            (WorkerStart::Fork, false) => {}
            // The zygote runs `pytest_configure_node` for it first, as
            // xdist's controller does; its answer spawns it.
            (WorkerStart::Spawn, true) => self.emit(Action::ToZygote(ToPython::ConfigureNode { worker, count })),
            (WorkerStart::Spawn, false) => self.spawn(worker, None),
        }
    }

    fn spawn(&mut self, worker: usize, input: Option<PathBuf>) {
        let (count, shard_keep) = (self.workers.requested, self.shard_keep.clone());
        self.emit(Action::SpawnWorker(WorkerSpawn { worker, count, input, shard_keep }));
    }

    /// What settling a worker's slot decided.
    pub(super) fn on_verdict(&mut self, verdict: SlotVerdict, now: Instant) {
        match verdict {
            SlotVerdict::WaitUntil(at) => self.arm(at.saturating_duration_since(now), Timer::SlotGrace),
            SlotVerdict::Lost { worker, cause, process, timed_out, said_hello } => {
                if said_hello {
                    let error = Some(format!("worker gw{worker} {cause}"));
                    self.tell_zygote(ToPython::NodeDown { worker, workeroutput: None, error });
                }
                self.emit(Action::WorkerLost { worker, cause, process, timed_out });
            }
            SlotVerdict::Ended { worker, process, restart } => {
                self.emit(Action::FaultLog { worker, process });
                if restart {
                    self.start_worker(worker);
                }
            }
        }
    }

    pub(super) fn slot_grace_over(&mut self, now: Instant) {
        for verdict in self.slots.expire(now) {
            self.on_verdict(verdict, now);
        }
    }

    /// A timed-out worker has dumped its stacks: what its test started
    /// dies now, the worker gets SIGTERM and a grace period before SIGKILL.
    pub(super) fn term_timed_out(&mut self, pid: u32) {
        self.emit(Action::KillDescendants { pid });
        self.emit(Action::SignalTree { pid, signal: libc::SIGTERM });
        self.arm(timeouts::TERM_GRACE, Timer::KillWorker { pid });
    }

    /// The start-up watchdog: a worker that has not said hello in time
    /// (a lock inherited through fork, an import that hangs) is named and
    /// stopped, which ends its slot like a crash before its first test. If
    /// the zygote never even forked it, the zygote is ended, and with it
    /// the run (`zygote.rs`).
    pub(super) fn check_connected(&mut self, worker: usize, generation: u64, limit: Duration) {
        let Some(process) = self.slots.not_connected(worker, generation) else { return };
        let secs = limit.as_secs_f64();
        if let Some(pid) = process {
            self.say(format!(
                "rpytest: error: worker gw{worker} (pid {pid}) did not connect within {secs}s; stopping it"
            ));
            return self.emit(Action::Signal { pid, signal: libc::SIGKILL });
        }
        self.say(format!(
            "rpytest: error: the zygote (pid {}) did not start worker gw{worker} within {secs}s; stopping the run",
            self.zygote.pid.unwrap_or(0)
        ));
        if self.zygote.pid.is_some() {
            // Its exit ends the run with every test accounted for.
            self.zygote.ended_by_us = Some(format!("killed by rpytest: it did not start worker gw{worker} in {secs}s"));
            return self.kill_zygote();
        }
        self.kill_everything();
        self.forget_zygote();
        self.summarize(
            crate::exit_code::ExitCode::InternalError,
            Some(crate::report::Stopped::plain("the zygote stopped responding")),
        );
    }
}
