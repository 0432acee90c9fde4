//! Supervisor actor: owns the Python processes.
//!
//! It starts the zygote, learns the inventory from it, starts the workers
//! (forked by the zygote, or spawned), and watches each worker's two ways of
//! ending: its connection closing and its exit status. Only when both are
//! known (or a grace period passes) is a worker declared lost, so reports
//! still in the socket are never mistaken for a crash. It replaces lost
//! workers on the Scheduler's request. At the end it hands the zygote the
//! run's reports, pytest finishes the session there (sessionfinish,
//! unconfigure), and the exit status that session leaves is the run's.
//!
//! A test past its time limit (the Scheduler's watchdog sends
//! `StopTimedOut`) has its worker stopped from outside: SIGUSR1 (the worker
//! dumps every thread's stack to its fault log), SIGTERM, a grace period,
//! then SIGKILL of its process group and of every process under it. A lost
//! worker's fault log tail travels with `WorkerLost` to its test's failure.
//!
//! Accepts: `ZygoteConnected`, `FromZygote`, `ZygoteBroken`, `ZygoteExited`,
//! `WarmZygoteEnded`, `WorkerConnected`, `WorkerDisconnected`, `WorkerExitSeen`,
//! `RestartWorker`, `StopTimedOut`, `TeardownShared`, `RunComplete`, `Interrupt`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::history::{Flush, History};
use super::reporter::{Begin, PluginSummary, Reporter, Summarize};
use super::scheduler::{RetireWorker, RunInterrupted, Scheduler, SharedFixturesTornDown, StartRun, WorkerLost};
use crate::auto_workers;
use crate::config::{MemoryBudget, WorkerCount, WorkerStart};
use crate::crash::{self, describe_exit};
use crate::daemon::client::WarmHandover;
use crate::dist::DistMode;
use crate::engine::RunPlan;
use crate::history::{unix_now, HistoryStore, HistoryView, LastRun};
use crate::interpreter;
use crate::memory_watch::{MemoryWatch, TreeSampler, WorkerMemory};
use crate::protocol::{self, FromPython, Inventory, ReplayEntry, ToPython, WorkerExit};
use crate::pyworker;
use crate::report::Stopped;
use crate::rootdir;
use crate::run_queue::RunQueue;
use crate::shard;
use crate::timeouts::{self, TimeoutSources, Watchdog};

/// How long to wait for the other half of a worker's ending.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long the zygote may take to exit after `shutdown`.
const ZYGOTE_EXIT_GRACE: Duration = Duration::from_secs(2);
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
/// How long the zygote may take to exit once pytest has ended its session.
const ZYGOTE_EXIT_AFTER_SESSION: Duration = Duration::from_secs(10);
/// How long teardown may take after the first Ctrl-C.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);
/// When to say that the end of the session is still running.
const SESSION_FINISH_NOTICE: Duration = Duration::from_secs(30);
/// The zygote's exit status when it cannot import pytest.
const EXIT_NO_PYTEST: i32 = 97;
/// How often `--max-memory` samples the run's processes.
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(200);

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
    /// The zygote is ending pytest's session with the run's reports.
    finishing: bool,
    exitstatus: Option<i32>,
    /// Why the run stopped early, kept for the summary after the session ends.
    stopped: Option<Stopped>,
    /// The exit code, once only the zygote's own exit is awaited.
    exit_after_zygote: Option<i32>,
    /// This shard's selection, for spawned workers to apply to their own collection.
    shard_keep: Option<Vec<usize>>,
    /// How this run's workers start: the plan's, unless threads in the
    /// zygote make forking unsafe.
    worker_start: WorkerStart,
    /// Numbers each worker process started, so that a timer or an exit
    /// status meant for one never lands on its replacement.
    next_generation: u64,
    /// A warm zygote the daemon handed over, to adopt instead of starting one.
    warm_zygote: Option<WarmHandover>,
    /// Ctrl-C was pressed once: the run is tearing down.
    interrupted: bool,
    /// pytest ended the session in the zygote (its sessionfinish ran).
    session_finished: bool,
    /// Lines for the summary (LEAK notes), from `RunComplete`.
    notes: Vec<String>,
    /// The memory cgroup's OOM kill count when last looked at.
    oom_kills: Option<u64>,
    /// `--max-memory`: the run's memory, sampled while tests run.
    memory_watch: Option<(MemoryWatch, TreeSampler)>,
}

/// What is known of one worker process's ending.
#[derive(Default)]
struct Slot {
    generation: u64,
    /// The pid the zygote forked (before the worker says hello).
    forked: Option<u32>,
    pid: Option<u32>,
    disconnected: bool,
    finished: bool,
    exit: Option<String>,
    grace_started: bool,
    spawned: Option<u32>,
    /// Stopped by the watchdog for passing this limit (seconds).
    timed_out: Option<f64>,
    /// A fresh process takes this slot over once this one has ended
    /// (a worker retired for memory): started then, so that no late
    /// event of the old process lands on the new one.
    restart_when_gone: bool,
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
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// The test worker `worker` runs has passed its time limit: stop the worker.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTimedOut {
    pub worker: usize,
    pub secs: f64,
}

/// The warm zygote (the daemon's child) ended; its status is the daemon's.
#[derive(Message)]
#[rtype(result = "()")]
struct WarmZygoteEnded;

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

/// A worker finished its session (sent with its `finished`): its
/// `config.workeroutput`, for the zygote.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerOutput {
    pub worker: usize,
    pub pid: u32,
    pub workeroutput: Option<rmpv::Value>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerExitSeen(pub WorkerExit);

#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartWorker {
    pub worker: usize,
}

/// Every worker is done: the zygote tears the shared session fixtures down.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TeardownShared {
    /// The last test run, which carries a teardown failure.
    pub index: Option<usize>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RunComplete {
    pub entries: Vec<ReplayEntry>,
    pub exitstatus: i32,
    pub stopped: Option<Stopped>,
    /// Lines for the summary (LEAK notes).
    pub notes: Vec<String>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Interrupt;

#[derive(Message)]
#[rtype(result = "()")]
struct GraceOver {
    worker: usize,
    generation: u64,
}

impl Slot {
    /// Whether `pid` is this slot's process (unknown yet counts as yes).
    fn owns(&self, pid: u32) -> bool {
        self.process().is_none_or(|own| own == pid)
    }

    /// The worker's pid, as far as it is known.
    fn process(&self) -> Option<u32> {
        self.pid.or(self.forked).or(self.spawned)
    }
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
            requested_workers: plan.workers,
            worker_start: plan.worker_start,
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
            finishing: false,
            exitstatus: None,
            stopped: None,
            exit_after_zygote: None,
            shard_keep: None,
            next_generation: 0,
            warm_zygote,
            interrupted: false,
            session_finished: false,
            notes: Vec::new(),
            oom_kills: crash::oom_kills(),
            memory_watch: None,
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
            .env_remove("RPYTEST_SHARED_FIXTURES")
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
        if self.plan.worker_start == WorkerStart::Fork && !self.plan.shared_fixtures.is_empty() {
            cmd.env("RPYTEST_SHARED_FIXTURES", self.plan.shared_fixtures.join(","));
        }
        match cmd.spawn() {
            Ok(mut child) => {
                self.zygote_pid = child.id();
                let addr = ctx.address();
                actix::spawn(async move {
                    use std::os::unix::process::ExitStatusExt;
                    let status = child.wait().await.ok();
                    let (code, signal) = (status.and_then(|s| s.code()), status.and_then(|s| s.signal()));
                    addr.do_send(ZygoteExited { code, signal });
                });
            }
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

    /// A `-n auto` warm run beside other runs of the same daemon takes its
    /// share of the CPUs (at least one), and says so with `-v`.
    fn cpu_share(&self, cpus: usize, verbose: bool) -> usize {
        let beside = self.warm_zygote.as_ref().map_or(0, |handover| handover.runs_beside as usize);
        let share = (cpus / (beside + 1)).max(1);
        if verbose && share < cpus {
            eprintln!(
                "rpytest: -n auto: {share} worker(s) instead of {cpus}: {beside} other warm run(s) \
                 of the daemon share the CPUs"
            );
        }
        share
    }

    fn start_worker(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.slots.insert(worker, Slot { generation, ..Slot::default() });
        let limit = connect_limit(self.worker_start);
        ctx.run_later(limit, move |act, ctx| act.check_connected(worker, generation, limit, ctx));
        match self.worker_start {
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
        if !self.plan.interactive {
            // Its own group: a timeout kill reaches the children its tests start.
            cmd.process_group(0);
        }
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
        if self.exit_after_zygote.is_some() {
            return; // interrupted during collection
        }
        let (assumed, read_settings) = &self.plan.settings_lookup;
        if let Some(warning) = rootdir::settings_mismatch(assumed, *read_settings, Path::new(&inventory.rootdir)) {
            eprintln!("{warning}");
        }
        let inventory = Arc::new(inventory);
        if self.worker_start == WorkerStart::Fork && !inventory.threads.is_empty() {
            self.avoid_fork(&inventory.threads);
        }
        let (store, warning) = HistoryStore::open(HistoryStore::path_for(inventory.rootdir.as_ref()));
        if let Some(warning) = warning {
            eprintln!("rpytest: warning: {warning}");
        }
        let view = store.view();
        let tests: Vec<(&str, Option<&str>)> =
            inventory.items.iter().map(|item| (item.id.as_str(), item.group.as_deref())).collect();
        let durations: Vec<Option<f64>> = inventory.items.iter().map(|item| view.expected(&item.id)).collect();
        let peak = inventory.items.iter().filter_map(|item| view.peak_rss_kb(&item.id)).max();
        self.requested_workers = self.workers_for(&inventory, &durations, peak);
        let mut queue = RunQueue::for_run(
            &tests,
            durations,
            self.dist_mode(&inventory),
            self.requested_workers,
            self.plan.test_order,
        );
        if let Some(first) = self.first_group(&inventory, &view) {
            queue.put_first(&first);
        }
        let history = History::new(store, self.plan.store_durations.clone()).start();
        self.history = Some(history.clone());
        self.worker_count = queue.workers();
        self.inventory = Some(inventory.clone());
        self.reporter.do_send(Begin { inventory: inventory.clone() });
        let watchdog = self.watchdog(&inventory);
        let restarts = crash::RestartBudget::new(self.plan.max_worker_restart, self.requested_workers);
        self.scheduler.do_send(StartRun { inventory, queue, supervisor: ctx.address(), history, watchdog, restarts });
        for worker in 0..self.worker_count {
            self.start_worker(worker, ctx);
        }
        self.start_memory_watch(ctx);
    }

    /// With `--max-memory`, samples the run's memory a few times a second.
    fn start_memory_watch(&mut self, ctx: &mut Context<Self>) {
        let Some(budget) = self.plan.memory.max_memory else { return };
        self.memory_watch = Some((MemoryWatch::new(budget), TreeSampler::default()));
        ctx.run_interval(MEMORY_SAMPLE_EVERY, |act, _| act.watch_memory());
    }

    /// One sample: the zygote's tree and each worker's; a worker over the
    /// budget is retired after its current test (see `memory_watch`).
    fn watch_memory(&mut self) {
        let Some((watch, sampler)) = self.memory_watch.as_mut() else { return };
        if self.finishing {
            return;
        }
        let workers: Vec<(usize, u32)> =
            self.slots.iter().filter_map(|(&worker, slot)| slot.process().map(|pid| (worker, pid))).collect();
        let roots: Vec<u32> =
            std::iter::once(self.zygote_pid.unwrap_or(0)).chain(workers.iter().map(|w| w.1)).collect();
        let bytes = sampler.sample(&roots);
        let memory: Vec<WorkerMemory> = workers
            .iter()
            .zip(&bytes[1..])
            .map(|(&(worker, pid), &bytes)| WorkerMemory { worker, pid, bytes })
            .collect();
        // Forked workers are in the zygote's tree: count them once.
        let forked: u64 = if self.worker_start == WorkerStart::Fork { bytes[1..].iter().sum() } else { 0 };
        let others = bytes[0].saturating_sub(forked);
        if let Some(retire) = watch.observe(Instant::now(), others, &memory) {
            eprintln!("{}", retire.why);
            self.scheduler.do_send(RetireWorker { worker: retire.worker });
        }
    }

    /// Each test's time limit: its mark, `--timeout`, or pytest-timeout's.
    fn watchdog(&self, inventory: &Inventory) -> Watchdog {
        let sources = TimeoutSources {
            rpytest: self.plan.timeout,
            plugin: inventory.timeout_plugin,
            plugin_active: inventory.timeout_plugin_active,
        };
        Watchdog::new(sources, inventory.items.iter().map(|item| item.timeout)).slow_after(self.plan.slow_timeout)
    }

    /// Stops a worker whose test passed its limit: SIGUSR1 for the stack
    /// dump, then SIGTERM, then (after the grace period) SIGKILL of its
    /// group and of every process under it, detached ones included.
    fn stop_timed_out(&mut self, worker: usize, secs: f64, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(&worker).filter(|s| s.timed_out.is_none()) else { return };
        let Some(pid) = slot.pid.filter(|_| slot.exit.is_none()) else { return };
        slot.timed_out = Some(secs);
        let pid = pid as i32;
        eprintln!("rpytest: {} on worker gw{worker} (pid {pid}): stopping it", timeouts::describe(secs));
        // SAFETY: plain syscalls on a worker process we started.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        ctx.run_later(timeouts::DUMP_WAIT, move |_, ctx| {
            // What the test started dies now (detached ones would otherwise
            // be orphaned); the worker gets SIGTERM and a grace period.
            crate::proctree::kill_all(&crate::proctree::descendants(pid));
            signal_worker(pid, libc::SIGTERM);
            ctx.run_later(timeouts::TERM_GRACE, move |_, _| signal_worker(pid, libc::SIGKILL));
        });
    }

    /// How a worker ended; a SIGKILL we did not send while the memory
    /// cgroup counted an OOM kill is named as the OOM killer's.
    fn exit_cause(&mut self, exit: &WorkerExit, stopped_by_us: bool) -> String {
        let cause = describe_exit(exit.exit_code, exit.signal);
        if exit.signal != Some(libc::SIGKILL) || stopped_by_us {
            return cause;
        }
        let (before, now) = (self.oom_kills, crash::oom_kills());
        self.oom_kills = now;
        match now > before {
            true => format!("{cause}: killed by the kernel's OOM killer (its memory cgroup counted an oom_kill)"),
            false => cause,
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

    /// Threads alive in the zygote: a forked child could inherit a lock one
    /// of them holds (logging, stdio) and hang, so this run spawns.
    fn avoid_fork(&mut self, threads: &[String]) {
        let shared = if self.plan.shared_fixtures.is_empty() {
            String::new()
        } else {
            format!("; shared session fixtures ({}) are set up per worker", self.plan.shared_fixtures.join(", "))
        };
        eprintln!(
            "rpytest: the zygote has {} thread(s) running after collection ({}): a forked worker could \
             inherit a lock one of them holds, so this run's workers start with spawn and collect for \
             themselves{shared}. Start such threads in a fixture, or set worker_start = \"spawn\".",
            threads.len(),
            threads.join(", ")
        );
        self.worker_start = WorkerStart::Spawn;
    }

    /// The start-up watchdog: a worker that has not said hello in time
    /// (a lock inherited through fork, an import that hangs) is named and
    /// stopped, which ends its slot like a crash before its first test.
    fn check_connected(&mut self, worker: usize, generation: u64, limit: Duration, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get(&worker).filter(|s| s.generation == generation) else { return };
        if slot.pid.is_some() || slot.exit.is_some() {
            return;
        }
        let secs = limit.as_secs_f64();
        match slot.forked.or(slot.spawned) {
            Some(pid) => {
                eprintln!("rpytest: error: worker gw{worker} (pid {pid}) did not connect within {secs}s; stopping it");
                // SAFETY: a plain syscall on a worker process we started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            None => {
                eprintln!(
                    "rpytest: error: the zygote (pid {}) did not start worker gw{worker} within {secs}s; stopping the run",
                    self.zygote_pid.unwrap_or(0)
                );
                self.finishing = false;
                self.kill_everything();
                self.zygote = None;
                self.summarize(3, Some(Stopped::plain("the zygote stopped responding")), ctx);
            }
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
                let generation = slot.generation;
                ctx.run_later(EXIT_GRACE, move |_, ctx| ctx.notify(GraceOver { worker, generation }));
            }
            return;
        }
        let slot = self.slots.remove(&worker).unwrap();
        let log = slot.process().and_then(|pid| crash::take_tail(&crash::fault_log(&self.socket, worker, pid)));
        // A timed-out worker's test is the timeout's, even if it ended (a
        // signal can cut a sleep short) before the kill.
        if !slot.finished || slot.timed_out.is_some() {
            let cause = slot.exit.unwrap_or_else(|| "its connection closed unexpectedly".to_string());
            if !slot.finished && slot.pid.is_some() {
                self.node_down(worker, None, Some(format!("worker gw{worker} {cause}")));
            }
            self.scheduler.do_send(WorkerLost { worker, cause, log, timed_out: slot.timed_out });
        } else {
            if let Some(log) = log {
                eprintln!("rpytest: worker gw{worker} wrote to its fault log:\n{log}");
            }
            if slot.restart_when_gone {
                self.start_worker(worker, ctx);
            }
        }
    }

    /// Tells the zygote a worker process ended (xdist's `pytest_testnodedown`).
    fn node_down(&self, worker: usize, workeroutput: Option<rmpv::Value>, error: Option<String>) {
        if let Some(zygote) = &self.zygote {
            let _ = zygote.send(ToPython::NodeDown { worker, workeroutput, error });
        }
    }

    fn summarize(&mut self, code: i32, stopped: Option<Stopped>, ctx: &mut Context<Self>) {
        if let Some(zygote) = self.zygote.take() {
            let _ = zygote.send(ToPython::Shutdown);
        }
        let reporter = self.reporter.clone();
        let history = self.history.clone();
        // pytest's junitxml writes its file when the session ends in the zygote.
        let junit_written = self.session_finished;
        let run = LastRun {
            finished_at: unix_now(),
            tests: self.inventory.as_ref().map_or(0, |i| i.items.len()),
            workers: self.worker_count,
            wall: self.plan.started.elapsed().as_secs_f64(),
        };
        let mut notes = std::mem::take(&mut self.notes);
        async move {
            if let Some(history) = history {
                notes.extend(history.send(Flush { run: Some(run) }).await.ok().flatten());
            }
            reporter.send(Summarize { stopped, notes, junit_written }).await.unwrap_or(false)
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

    /// pytest returned from the session the zygote finished; the process
    /// exits next (its exit handlers run), within a time limit.
    fn on_session_ended(&mut self, exit_code: i32, ctx: &mut Context<Self>) {
        self.session_ended = Some(exit_code);
        if !self.finishing {
            return;
        }
        crate::trace::event(|| format!("pytest ended the session, exit status {exit_code}"));
        ctx.run_later(ZYGOTE_EXIT_AFTER_SESSION, move |act, _| {
            if act.finishing && act.zygote_pid.is_some() {
                eprintln!(
                    "rpytest: warning: pytest ended the session (exit status {exit_code}) but the zygote \
                     (pid {}) has not exited after {}s (a non-daemon thread still running?); stopping it",
                    act.zygote_pid.unwrap_or(0),
                    ZYGOTE_EXIT_AFTER_SESSION.as_secs()
                );
                act.kill_zygote();
            }
        });
    }

    /// The zygote is gone after finishing the session: the exit status the
    /// session left is the run's, or the process's own if it ended first
    /// (`os._exit` or an exception in `pytest_sessionfinish`).
    fn on_session_finished(&mut self, process_code: Option<i32>, ctx: &mut Context<Self>) {
        self.finishing = false;
        self.zygote = None;
        let code = match (self.session_ended, process_code) {
            (Some(code), _) => code,
            (None, Some(code)) => {
                eprintln!("rpytest: the zygote exited with code {code} while pytest was ending the session");
                code
            }
            (None, None) => {
                eprintln!("rpytest: error: the zygote was killed while pytest was ending the session");
                3
            }
        };
        let stopped = self.stopped.take();
        self.session_finished = true;
        self.summarize(code, stopped, ctx);
    }

    /// `-n` on the command line wins; else an `-n` in pytest's addopts
    /// (as xdist users have it; xdist's `-n 0` means one process); else
    /// the settings' count. `auto` is then fitted to the history's
    /// expected work and memory, and says why with `-v`.
    fn workers_for(&self, inventory: &Inventory, expected: &[Option<f64>], peak_rss_kb: Option<u64>) -> usize {
        let planned = (self.plan.workers, self.plan.workers_auto);
        let (count, auto) = match inventory.numprocesses.as_deref().filter(|_| !self.plan.workers_fixed) {
            Some("0") => (1, false),
            Some(text) => match WorkerCount::parse(text) {
                Ok(count) => (count.resolve(&self.plan.memory), count == WorkerCount::Auto),
                Err(e) => {
                    eprintln!("rpytest: warning: ignoring -n from pytest's addopts: {e}");
                    planned
                }
            },
            None => planned,
        };
        if !auto && self.plan.memory.max_memory.is_none() {
            return count; // nothing to fit: no memory to read
        }
        let zygote_bytes = self.zygote_pid.map_or(0, crate::memory_watch::resident);
        let size = auto_workers::WorkerSize { peak_rss_kb, zygote_bytes };
        let budget = self.plan.memory.budget();
        if !auto {
            return Self::memory_capped(count, size, &budget);
        }
        let count = self.cpu_share(count, inventory.verbosity > 0);
        let fit = auto_workers::fit(count, expected, size, &budget);
        if let Some(why) = fit.why.filter(|_| inventory.verbosity > 0) {
            eprintln!("rpytest: {why}");
        }
        fit.workers
    }

    /// An explicit `-n` within `--max-memory`, said on stderr when capped.
    fn memory_capped(count: usize, size: auto_workers::WorkerSize, budget: &MemoryBudget) -> usize {
        match auto_workers::memory_cap(count, size, budget) {
            Some(cap) => {
                eprintln!("rpytest: --max-memory: {}", cap.why.unwrap_or_default());
                cap.workers
            }
            None => count,
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

    /// Every live worker process, forked or spawned.
    fn signal_workers(&self, signal: i32) {
        for slot in self.slots.values() {
            if let Some(pid) = slot.pid.or(slot.forked).or(slot.spawned) {
                // SAFETY: a plain syscall on a pid this run started.
                unsafe { libc::kill(pid as i32, signal) };
            }
        }
    }

    /// Interrupted while pytest collects: pytest handles the interrupt
    /// itself, printing what plain pytest prints (the KeyboardInterrupt
    /// banner, "no tests ran"); stopped if it has not exited in time.
    fn interrupt_collection(&mut self, ctx: &mut Context<Self>) {
        let Some(pid) = self.zygote_pid else { return self.finish(2) };
        // SAFETY: a plain syscall on the zygote we started.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        self.exit_after_zygote = Some(2);
        ctx.run_later(ZYGOTE_EXIT_GRACE, |act, _| {
            act.kill_zygote();
            act.finish(2);
        });
    }

    fn kill_everything(&mut self) {
        self.kill_zygote();
        for slot in self.slots.values() {
            if let Some(pid) = slot.process() {
                signal_worker(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Signals a worker and, when it leads its own process group (outside a
/// debugging run it does), every process in that group.
fn signal_worker(pid: i32, signal: i32) {
    // SAFETY: plain syscalls on a worker process we started.
    unsafe {
        if libc::getpgid(pid) == pid {
            libc::killpg(pid, signal);
        } else {
            libc::kill(pid, signal);
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
            let Some(mut signals) = crate::signals::StopSignals::install() else { return };
            while signals.next().await.is_some() {
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
            FromPython::WorkerForked { worker, pid } => {
                if let Some(slot) = self.slots.get_mut(&worker).filter(|s| s.forked.is_none()) {
                    slot.forked = Some(pid);
                }
            }
            FromPython::WorkerExited(exit) => ctx.notify(WorkerExitSeen(exit)),
            FromPython::TerminalSummary { text } => self.reporter.do_send(PluginSummary { text }),
            FromPython::SessionEnded { exit_code } => self.on_session_ended(exit_code, ctx),
            FromPython::SharedTeardownDone { phases } => {
                crate::trace::event(|| "shared session fixtures torn down".into());
                self.scheduler.do_send(SharedFixturesTornDown { phases });
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
        if self.finishing {
            return self.on_session_finished(msg.code, ctx);
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
        if self.inventory.is_none() && self.zygote.is_none() && self.warm_zygote.is_none() {
            // It never said hello: not an interpreter that can run pytest.
            eprintln!("rpytest: error: {}", interpreter::unusable(&self.plan.python, &describe_exit(msg.code, None)));
            return self.finish(crate::errors::UsageError::EXIT_CODE);
        }
        if self.inventory.is_none() {
            eprintln!(
                "rpytest: error: the Python zygote ({}) {} before collecting",
                self.plan.python.display(),
                describe_exit(msg.code, msg.signal)
            );
            return self.finish(msg.code.filter(|c| *c != 0).unwrap_or(3));
        }
        eprintln!("rpytest: error: the zygote died during the run ({})", describe_exit(msg.code, msg.signal));
        self.zygote = None;
        self.kill_everything();
        self.summarize(3, Some(Stopped::plain("the zygote died")), ctx);
    }
}

impl Handler<WarmZygoteEnded> for Supervisor {
    type Result = ();

    /// pytest reported the session's exit status, or the process ended
    /// without one (`os._exit` in `pytest_sessionfinish`): then its own
    /// exit code is the run's, and only the daemon, its parent, has it.
    fn handle(&mut self, _: WarmZygoteEnded, ctx: &mut Context<Self>) {
        let Some(handover) = self.warm_zygote.clone().filter(|_| self.session_ended.is_none()) else {
            return ctx.notify(ZygoteExited { code: None, signal: None });
        };
        let addr = ctx.address();
        actix::spawn(async move {
            let asked = tokio::task::spawn_blocking(move || crate::daemon::client::exit_code(&handover)).await;
            addr.do_send(ZygoteExited { code: asked.ok().flatten(), signal: None });
        });
    }
}

impl Handler<WorkerConnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerConnected, _: &mut Context<Self>) {
        let slot = self.slots.entry(msg.worker).or_default();
        if slot.owns(msg.pid) {
            slot.pid = Some(msg.pid);
        }
    }
}

impl Handler<WorkerDisconnected> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerDisconnected, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(&msg.worker) else { return };
        if !slot.owns(msg.pid) {
            return;
        }
        slot.disconnected = true;
        slot.finished |= msg.finished;
        self.settle(msg.worker, ctx, false);
    }
}

impl Handler<WorkerOutput> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerOutput, _: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(&msg.worker).filter(|slot| slot.owns(msg.pid)) else { return };
        // Said before the Scheduler hears of it, so a restart it asks for
        // waits for this process to end (see `RestartWorker`).
        slot.finished = true;
        self.node_down(msg.worker, msg.workeroutput, None);
    }
}

impl Handler<WorkerExitSeen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerExitSeen, ctx: &mut Context<Self>) {
        let exit = msg.0;
        let Some(slot) = self.slots.get_mut(&exit.worker) else { return };
        if !slot.owns(exit.pid) {
            return;
        }
        let stopped_by_us = slot.timed_out.is_some();
        let cause = self.exit_cause(&exit, stopped_by_us);
        let Some(slot) = self.slots.get_mut(&exit.worker) else { return };
        slot.exit = Some(cause);
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
        // The timer of a worker that has since been replaced is not the replacement's.
        if self.slots.get(&msg.worker).is_some_and(|s| s.generation == msg.generation) {
            self.settle(msg.worker, ctx, true);
        }
    }
}

impl Handler<StopTimedOut> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopTimedOut, ctx: &mut Context<Self>) {
        self.stop_timed_out(msg.worker, msg.secs, ctx);
    }
}

impl Handler<RestartWorker> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RestartWorker, ctx: &mut Context<Self>) {
        match self.slots.get_mut(&msg.worker) {
            // Its process finished but has not ended yet (a retired worker).
            Some(slot) if slot.finished => slot.restart_when_gone = true,
            _ => self.start_worker(msg.worker, ctx),
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
            None => self.scheduler.do_send(SharedFixturesTornDown { phases: Vec::new() }),
        }
    }
}

impl Handler<RunComplete> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: RunComplete, ctx: &mut Context<Self>) {
        crate::trace::event(|| "every test finished".into());
        self.exitstatus = Some(msg.exitstatus);
        self.notes = msg.notes;
        match &self.zygote {
            Some(zygote) => {
                self.stopped = msg.stopped;
                self.finishing = true;
                for message in protocol::finish_messages(msg.entries, msg.exitstatus) {
                    let _ = zygote.send(message);
                }
                ctx.run_later(SESSION_FINISH_NOTICE, |act, _| {
                    if act.finishing && act.session_ended.is_none() {
                        eprintln!(
                            "rpytest: still waiting for pytest to end the session in the zygote (pid {}) \
                             after {}s: a pytest_sessionfinish or pytest_unconfigure hook is running",
                            act.zygote_pid.unwrap_or(0),
                            SESSION_FINISH_NOTICE.as_secs()
                        );
                    }
                });
            }
            None => self.summarize(msg.exitstatus, msg.stopped, ctx),
        }
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
        if self.interrupted {
            return self.stop_at_once(ctx);
        }
        self.interrupted = true;
        eprintln!("\nrpytest: interrupted; tearing down (Ctrl-C again to stop at once)");
        if !self.finishing {
            self.signal_workers(libc::SIGINT);
            self.scheduler.do_send(RunInterrupted);
        }
        ctx.run_later(INTERRUPT_GRACE, |act, ctx| {
            if act.done.is_some() {
                eprintln!(
                    "rpytest: teardown after Ctrl-C did not end within {}s; stopping everything",
                    INTERRUPT_GRACE.as_secs()
                );
                act.stop_at_once(ctx);
            }
        });
    }
}

impl Supervisor {
    fn stop_at_once(&mut self, ctx: &mut Context<Self>) {
        self.finishing = false;
        self.kill_everything();
        self.zygote = None;
        self.summarize(2, Some(Stopped::plain(crate::signals::banner())), ctx);
    }
}
