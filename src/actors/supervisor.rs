//! Supervisor actor: owns the Python processes.
//!
//! It starts the zygote, learns the inventory from it, starts the workers
//! (forked by the zygote, or spawned), and watches each worker's two ways of
//! ending: its connection closing and its exit status. Only when both are
//! known (or a grace period passes) is a worker declared lost, so reports
//! still in the socket are never mistaken for a crash. It replaces lost
//! workers on the Scheduler's request, runs the report sink at the end, and
//! delivers the exit code.
//!
//! Accepts: `ZygoteConnected`, `FromZygote`, `ZygoteBroken`, `ZygoteExited`,
//! `WorkerConnected`, `WorkerDisconnected`, `WorkerExitSeen`,
//! `RestartWorker`, `RunComplete`, `Interrupt`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::history::{Flush, History};
use super::reporter::{Begin, Reporter, Summarize};
use super::scheduler::{Scheduler, StartRun, WorkerLost};
use crate::config::{WorkerCount, WorkerStart};
use crate::dist::DistMode;
use crate::engine::RunPlan;
use crate::history::{unix_now, HistoryStore, HistoryView, LastRun};
use crate::interpreter;
use crate::protocol::{FromPython, Inventory, SinkEntry, ToPython, WorkerExit};
use crate::pyworker;
use crate::report::Stopped;
use crate::run_queue::RunQueue;
use crate::shard;

/// How long to wait for the other half of a worker's ending.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long the zygote may take to exit after `shutdown`.
const ZYGOTE_EXIT_GRACE: Duration = Duration::from_secs(2);
/// The zygote's exit status when it cannot import pytest.
const EXIT_NO_PYTEST: i32 = 97;

pub struct Supervisor {
    plan: Arc<RunPlan>,
    pyworker_dir: PathBuf,
    socket: PathBuf,
    scheduler: Addr<Scheduler>,
    reporter: Addr<Reporter>,
    history: Option<Addr<History>>,
    done: Option<oneshot::Sender<i32>>,
    zygote: Option<UnboundedSender<ToPython>>,
    zygote_pid: Option<u32>,
    inventory: Option<Arc<Inventory>>,
    worker_count: usize,
    /// The `-n` in force: `PYTEST_XDIST_WORKER_COUNT` as xdist would set it.
    requested_workers: usize,
    slots: HashMap<usize, Slot>,
    session_ended: Option<i32>,
    exitstatus: Option<i32>,
    /// Why the run stopped early, kept for the summary after the sink.
    stopped: Option<Stopped>,
    /// The exit code, once only the zygote's own exit is awaited.
    exit_after_zygote: Option<i32>,
    /// This shard's selection, for spawned workers to apply to their own collection.
    shard_keep: Option<Vec<usize>>,
}

/// What is known of one worker process's ending.
#[derive(Default)]
struct Slot {
    pid: Option<u32>,
    disconnected: bool,
    finished: bool,
    exit: Option<String>,
    grace_started: bool,
    spawned: Option<u32>,
}

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
}

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

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerExitSeen(pub WorkerExit);

#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartWorker {
    pub worker: usize,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RunComplete {
    pub entries: Vec<SinkEntry>,
    pub exitstatus: i32,
    pub stopped: Option<Stopped>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Interrupt;

#[derive(Message)]
#[rtype(result = "()")]
struct GraceOver {
    worker: usize,
}

impl Supervisor {
    pub fn new(
        plan: Arc<RunPlan>,
        pyworker_dir: PathBuf,
        socket: PathBuf,
        scheduler: Addr<Scheduler>,
        reporter: Addr<Reporter>,
        done: oneshot::Sender<i32>,
    ) -> Self {
        Supervisor {
            requested_workers: plan.workers,
            plan,
            pyworker_dir,
            socket,
            scheduler,
            reporter,
            history: None,
            done: Some(done),
            zygote: None,
            zygote_pid: None,
            inventory: None,
            worker_count: 0,
            slots: HashMap::new(),
            session_ended: None,
            exitstatus: None,
            stopped: None,
            exit_after_zygote: None,
            shard_keep: None,
        }
    }

    fn python_command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.plan.python);
        cmd.arg("-c")
            .arg(pyworker::bootstrap(&self.pyworker_dir))
            .args(&self.plan.pytest_args)
            .env("RPYTEST_SOCKET", &self.socket)
            // Set below when this run shards; never inherited from a parent run.
            .env_remove("RPYTEST_SHARDING")
            .env_remove("RPYTEST_SHARD_KEEP")
            // --retries: workers leave -x/--maxfail to the engine's count.
            .env("RPYTEST_RETRYING", if self.plan.retries > 0 { "1" } else { "0" })
            .stdin(if self.plan.interactive { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true);
        cmd
    }

    fn start_zygote(&mut self, ctx: &mut Context<Self>) {
        crate::trace::event(|| "starting the zygote".into());
        let mut cmd = self.python_command();
        cmd.env("RPYTEST_ROLE", "zygote");
        if !self.plan.interactive {
            // Its own group, so one signal ends it and every worker. A
            // debugger instead needs the terminal's foreground group.
            cmd.process_group(0);
        }
        if self.plan.shard.is_some() {
            cmd.env("RPYTEST_SHARDING", "1");
        }
        match cmd.spawn() {
            Ok(mut child) => {
                self.zygote_pid = child.id();
                let addr = ctx.address();
                actix::spawn(async move {
                    let status = child.wait().await.ok();
                    addr.do_send(ZygoteExited { code: status.and_then(|s| s.code()) });
                });
            }
            Err(e) => {
                eprintln!("rpytest: error: cannot start {}: {e}", self.plan.python.display());
                self.finish(3);
            }
        }
    }

    fn start_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        self.slots.insert(worker, Slot::default());
        match self.plan.worker_start {
            WorkerStart::Fork => {
                if let Some(zygote) = &self.zygote {
                    let _ = zygote.send(ToPython::Fork { worker, count: self.requested_workers });
                }
            }
            WorkerStart::Spawn => self.spawn_worker(worker, ctx),
        }
    }

    fn spawn_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let inventory = self.inventory.as_ref().expect("workers start after collection");
        let mut cmd = self.python_command();
        cmd.env("RPYTEST_ROLE", "worker")
            .env("RPYTEST_WORKER", worker.to_string())
            .env("RPYTEST_WORKER_COUNT", self.requested_workers.to_string())
            .env("RPYTEST_BASETEMP", &inventory.basetemp)
            .env("RPYTEST_TESTRUNUID", &inventory.testrunuid);
        if let Some(keep) = &self.shard_keep {
            match self.write_shard_keep(keep) {
                Ok(path) => cmd.env("RPYTEST_SHARD_KEEP", path),
                Err(e) => {
                    eprintln!("rpytest: error: cannot pass the shard selection to a spawned worker: {e}");
                    return ctx.notify(WorkerExitSeen(WorkerExit { worker, pid: 0, exit_code: None, signal: None }));
                }
            };
        }
        let addr = ctx.address();
        match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                self.slots.entry(worker).or_default().spawned = Some(pid);
                actix::spawn(async move {
                    let status = child.wait().await.ok();
                    use std::os::unix::process::ExitStatusExt;
                    let exit = WorkerExit {
                        worker,
                        pid,
                        exit_code: status.and_then(|s| s.code()),
                        signal: status.and_then(|s| s.signal()),
                    };
                    addr.do_send(WorkerExitSeen(exit));
                });
            }
            Err(e) => {
                let exit = WorkerExit { worker, pid: 0, exit_code: None, signal: None };
                eprintln!("rpytest: cannot spawn worker gw{worker}: {e}");
                addr.do_send(WorkerExitSeen(exit));
            }
        }
    }

    /// The shard selection as a JSON file next to the socket (0700 dir).
    fn write_shard_keep(&self, keep: &[usize]) -> std::io::Result<PathBuf> {
        let path = self.socket.with_file_name("shard-keep.json");
        std::fs::write(&path, serde_json::to_vec(keep)?)?;
        Ok(path)
    }

    fn on_collected(&mut self, inventory: Inventory, ctx: &mut Context<Self>) {
        crate::trace::event(|| format!("collected {} tests", inventory.items.len()));
        let inventory = Arc::new(inventory);
        let (store, warning) = HistoryStore::open(HistoryStore::path_for(inventory.rootdir.as_ref()));
        if let Some(warning) = warning {
            eprintln!("rpytest: warning: {warning}");
        }
        let view = store.view();
        let tests: Vec<(&str, Option<&str>)> =
            inventory.items.iter().map(|item| (item.id.as_str(), item.group.as_deref())).collect();
        let durations = inventory.items.iter().map(|item| view.expected(&item.id)).collect();
        self.requested_workers = self.workers_for(&inventory);
        let mut queue = RunQueue::for_run(&tests, durations, self.dist_mode(&inventory), self.requested_workers);
        if let Some(first) = self.first_group(&inventory, &view) {
            queue.put_first(&first);
        }
        let history = History::new(store, self.plan.store_durations.clone()).start();
        self.history = Some(history.clone());
        self.worker_count = queue.workers();
        self.inventory = Some(inventory.clone());
        self.reporter.do_send(Begin { inventory: inventory.clone() });
        self.scheduler.do_send(StartRun { inventory, queue, supervisor: ctx.address(), history });
        for worker in 0..self.worker_count {
            self.start_worker(worker, ctx);
        }
    }

    /// `--ff`/`--nf` keep pytest's meaning under LPT: the tests that failed
    /// last time (or that the history has never seen) run first.
    fn first_group(&self, inventory: &Inventory, view: &HistoryView) -> Option<Vec<bool>> {
        let has = |flags: &[&str]| self.plan.pytest_args.iter().any(|a| flags.contains(&a.as_str()));
        let (ff, nf) = (has(&["--ff", "--failed-first"]), has(&["--nf", "--new-first"]));
        if !ff && !nf {
            return None;
        }
        let first = |id: &str| (ff && view.failed_last(id)) || (nf && view.is_new(id));
        Some(inventory.items.iter().map(|item| first(&item.id)).collect())
    }

    /// `--dist` from the command line, else from pytest's configuration
    /// (an xdist user's addopts), else `load`.
    fn dist_mode(&self, inventory: &Inventory) -> DistMode {
        if let Some(mode) = self.plan.dist {
            return mode;
        }
        match inventory.dist.as_deref().map(DistMode::parse) {
            Some(Ok(mode)) => mode,
            Some(Err(why)) => {
                eprintln!("rpytest: warning: --dist in the pytest configuration: {why}; using load");
                DistMode::Load
            }
            None => DistMode::Load,
        }
    }

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

    /// Declares a worker lost once both halves of its ending are known, or
    /// the grace period for the missing half has passed.
    fn settle(&mut self, worker: usize, ctx: &mut Context<Self>, grace_over: bool) {
        let Some(slot) = self.slots.get_mut(&worker) else { return };
        let both = slot.disconnected && slot.exit.is_some();
        if !both && !grace_over {
            if !slot.grace_started {
                slot.grace_started = true;
                ctx.run_later(EXIT_GRACE, move |_, ctx| ctx.notify(GraceOver { worker }));
            }
            return;
        }
        let slot = self.slots.remove(&worker).unwrap();
        if !slot.finished {
            let cause = slot.exit.unwrap_or_else(|| "its connection closed unexpectedly".to_string());
            self.scheduler.do_send(WorkerLost { worker, cause });
        }
    }

    fn summarize(&mut self, code: i32, stopped: Option<Stopped>, ctx: &mut Context<Self>) {
        if let Some(zygote) = self.zygote.take() {
            let _ = zygote.send(ToPython::Shutdown);
        }
        let reporter = self.reporter.clone();
        let history = self.history.clone();
        let run = LastRun {
            finished_at: unix_now(),
            tests: self.inventory.as_ref().map_or(0, |i| i.items.len()),
            workers: self.worker_count,
            wall: self.plan.started.elapsed().as_secs_f64(),
        };
        async move {
            let mut notes = Vec::new();
            if let Some(history) = history {
                notes.extend(history.send(Flush { run: Some(run) }).await.ok().flatten());
            }
            reporter.send(Summarize { stopped, notes }).await.unwrap_or(false)
        }
        .into_actor(self)
        // pytest's ExitCode.MAX_WARNINGS_ERROR: all passed, too many warnings.
        .map(move |too_many_warnings, act, ctx| {
            act.finish_when_zygote_gone(if too_many_warnings && code == 0 { 6 } else { code }, ctx)
        })
        .spawn(ctx);
    }

    /// The zygote runs the session's exit handlers after `shutdown` (pytest
    /// removes its basetemp lock there); give it a moment before we exit.
    fn finish_when_zygote_gone(&mut self, code: i32, ctx: &mut Context<Self>) {
        if self.zygote_pid.is_none() {
            return self.finish(code);
        }
        self.exit_after_zygote = Some(code);
        ctx.run_later(ZYGOTE_EXIT_GRACE, move |act, _| act.finish(code));
    }

    fn finish(&mut self, code: i32) {
        crate::trace::event(|| format!("done, exit code {code}"));
        if let Some(done) = self.done.take() {
            let _ = done.send(code);
        }
    }

    /// `-n` on the command line wins; else an `-n` in pytest's addopts
    /// (as xdist users have it; xdist's `-n 0` means one process); else
    /// the settings' count.
    fn workers_for(&self, inventory: &Inventory) -> usize {
        match inventory.numprocesses.as_deref().filter(|_| !self.plan.workers_fixed) {
            Some("0") => 1,
            Some(text) => match WorkerCount::parse(text) {
                Ok(count) => count.resolve(),
                Err(e) => {
                    eprintln!("rpytest: warning: ignoring -n from pytest's addopts: {e}");
                    self.plan.workers
                }
            },
            None => self.plan.workers,
        }
    }

    /// The zygote and its forked children. Outside a debugging run the
    /// zygote leads its own process group, so one signal reaches them all;
    /// in one, forked children die with it (PR_SET_PDEATHSIG).
    fn kill_zygote(&self) {
        let Some(pid) = self.zygote_pid else { return };
        // SAFETY: plain syscalls on a pid we started.
        unsafe {
            if self.plan.interactive {
                libc::kill(pid as i32, libc::SIGKILL);
            } else {
                libc::killpg(pid as i32, libc::SIGKILL);
            }
        }
    }

    fn kill_everything(&mut self) {
        self.kill_zygote();
        for slot in self.slots.values() {
            if let Some(pid) = slot.spawned {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// "exited with code 3" / "killed by signal 11 (SIGSEGV)".
pub fn describe_exit(exit_code: Option<i32>, signal: Option<i32>) -> String {
    match (exit_code, signal) {
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "ended for an unknown reason".to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_zygote(ctx);
        let addr = ctx.address();
        actix::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                addr.do_send(Interrupt);
            }
        });
    }
}

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
            FromPython::WorkerExited(exit) => ctx.notify(WorkerExitSeen(exit)),
            FromPython::SessionEnded { exit_code } => self.session_ended = Some(exit_code),
            FromPython::SinkDone { exit_code } => {
                crate::trace::event(|| "report sink done".into());
                if exit_code != 0 {
                    eprintln!(
                        "rpytest: warning: the report sink failed (exit {exit_code}); \
                         the junit file and pytest's cache may be incomplete"
                    );
                }
                let code = self.exitstatus.unwrap_or(3);
                let stopped = self.stopped.take();
                self.summarize(code, stopped, ctx);
            }
            FromPython::InternalError { message } => eprintln!("rpytest: zygote: {message}"),
            other => eprintln!("rpytest: the zygote sent an unexpected {other:?}; ignored"),
        }
    }
}

impl Handler<ZygoteBroken> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ZygoteBroken, _: &mut Context<Self>) {
        eprintln!("rpytest: error: bad message from the zygote ({}); stopping it", msg.error);
        self.kill_zygote();
    }
}

impl Handler<ZygoteExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ZygoteExited, ctx: &mut Context<Self>) {
        self.zygote_pid = None;
        if let Some(code) = self.exit_after_zygote.take() {
            return self.finish(code);
        }
        if self.done.is_none() || (self.exitstatus.is_some() && self.zygote.is_none()) {
            return;
        }
        if msg.code == Some(EXIT_NO_PYTEST) && self.inventory.is_none() {
            eprintln!("rpytest: error: {}", interpreter::missing_pytest(&self.plan.python));
            return self.finish(4);
        }
        if let Some(code) = self.session_ended {
            return self.finish(code);
        }
        if self.inventory.is_none() {
            eprintln!(
                "rpytest: error: the Python zygote ({}) {} before collecting",
                self.plan.python.display(),
                describe_exit(msg.code, None)
            );
            return self.finish(msg.code.filter(|c| *c != 0).unwrap_or(3));
        }
        eprintln!("rpytest: error: the zygote died during the run ({})", describe_exit(msg.code, None));
        self.zygote = None;
        self.kill_everything();
        self.summarize(3, Some(Stopped::plain("the zygote died")), ctx);
    }
}

impl Handler<WorkerConnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerConnected, _: &mut Context<Self>) {
        self.slots.entry(msg.worker).or_default().pid = Some(msg.pid);
    }
}

impl Handler<WorkerDisconnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerDisconnected, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(&msg.worker) else { return };
        if slot.pid.is_some_and(|pid| pid != msg.pid) {
            return;
        }
        slot.disconnected = true;
        slot.finished |= msg.finished;
        self.settle(msg.worker, ctx, false);
    }
}

impl Handler<WorkerExitSeen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerExitSeen, ctx: &mut Context<Self>) {
        let exit = msg.0;
        let Some(slot) = self.slots.get_mut(&exit.worker) else { return };
        if slot.pid.is_some_and(|pid| pid != exit.pid) {
            return;
        }
        slot.exit = Some(describe_exit(exit.exit_code, exit.signal));
        if slot.pid.is_none() {
            // It died before saying hello: there is no connection to wait for.
            slot.disconnected = true;
        }
        self.settle(exit.worker, ctx, false);
    }
}

impl Handler<GraceOver> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: GraceOver, ctx: &mut Context<Self>) {
        self.settle(msg.worker, ctx, true);
    }
}

impl Handler<RestartWorker> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartWorker, ctx: &mut Context<Self>) {
        self.start_worker(msg.worker, ctx);
    }
}

impl Handler<RunComplete> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RunComplete, ctx: &mut Context<Self>) {
        crate::trace::event(|| "every test finished".into());
        self.exitstatus = Some(msg.exitstatus);
        let needs_sink = self.inventory.as_ref().is_some_and(|i| i.needs_sink);
        match &self.zygote {
            Some(zygote) if needs_sink => {
                self.stopped = msg.stopped;
                let _ = zygote.send(ToPython::Finish { entries: msg.entries, exitstatus: msg.exitstatus });
            }
            _ => self.summarize(msg.exitstatus, msg.stopped, ctx),
        }
    }
}

impl Handler<Interrupt> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            return;
        }
        self.kill_everything();
        self.zygote = None;
        if self.inventory.is_none() {
            return self.finish(2);
        }
        self.summarize(2, Some(Stopped::plain("KeyboardInterrupt")), ctx);
    }
}
