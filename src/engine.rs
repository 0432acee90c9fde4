//! The engine: one actix system hosting the actors for one run.
//!
//! It prepares what the actors share (the worker package on disk, a private
//! socket directory), starts the Reporter, Scheduler and Supervisor, accepts
//! connections, and returns the exit code the Supervisor delivers.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::net::UnixListener;
use tokio::sync::oneshot;

use crate::actors::connection::accept_loop;
use crate::actors::reporter::Reporter;
use crate::actors::scheduler::Scheduler;
use crate::actors::supervisor::Supervisor;
use crate::config::WorkerStart;
use crate::daemon::client::DaemonRun;
use crate::dist::DistMode;
use crate::errors::EngineError;
use crate::proctree;
use crate::pyworker;
use crate::shard::ShardInput;
use crate::socket_dir;

/// Everything one run needs, resolved from flags and settings.
#[derive(Debug)]
pub struct RunPlan {
    pub python: PathBuf,
    pub pytest_args: Vec<String>,
    pub workers: usize,
    /// The count came from `-n` (or a serial-only flag), so an `-n` in
    /// pytest's addopts does not override it.
    pub workers_fixed: bool,
    pub worker_start: WorkerStart,
    pub color: bool,
    /// `--pdb`/`--trace`: one worker, reading this process's terminal.
    pub interactive: bool,
    pub started: Instant,
    /// `--dist`; `None` defers to pytest's configuration, then `load`.
    pub dist: Option<DistMode>,
    /// `--shard K --total-shards N` and what the partition is computed from.
    pub shard: Option<ShardInput>,
    /// `--store-durations`: the durations file to merge this run into.
    pub store_durations: Option<PathBuf>,
    /// `--retries`: reruns of a failed test before it counts as failed.
    pub retries: u32,
    /// `--test-order` / `[tool.rpytest] test_order`: each worker's order.
    pub test_order: crate::run_queue::Order,
    /// `--rerun-isolated`: failed tests run again alone, to diagnose order.
    pub rerun_isolated: bool,
    /// `shared_session_fixtures`: set up once in the zygote (fork mode only).
    pub shared_fixtures: Vec<String>,
    /// The worker count is `auto`: the history may lower it (`auto_workers`).
    pub workers_auto: bool,
    /// The warm daemon this run may take its zygote from.
    pub daemon: Option<DaemonRun>,
    /// The rootdir `[tool.rpytest]` was looked up for, and whether settings
    /// were found: checked against the rootdir pytest reports.
    pub settings_lookup: (PathBuf, bool),
    /// `--timeout` / `[tool.rpytest] timeout`: seconds per test, if limited.
    pub timeout: Option<f64>,
    /// `--slow-timeout`: seconds after which a running test is said to be slow.
    pub slow_timeout: Option<f64>,
    /// `--max-worker-restart`: crashed workers replaced before the run gives
    /// up; `None` is xdist's default, 4 x the worker count.
    pub max_worker_restart: Option<u32>,
    /// What the run's processes may use together (`--max-memory`).
    pub memory: crate::config::MemoryLimits,
}

pub fn run(plan: RunPlan) -> Result<i32, EngineError> {
    let pyworker_dir = pyworker::install()?;
    // Orphans of the run (a crashed worker's children, a test's detached
    // helper) become ours, not init's, and are ended below.
    proctree::become_subreaper();
    let socket_dir = socket_dir::create().map_err(EngineError::Socket)?;
    let socket = socket_dir.path().join(socket_dir::SOCKET_NAME);
    // Bound before a warm zygote is asked to connect to it.
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(EngineError::Socket)?;
    listener.set_nonblocking(true).map_err(EngineError::Socket)?;
    let warm_zygote = plan.daemon.as_ref().and_then(|daemon| daemon.take_warm_zygote(&socket));
    let plan = Arc::new(plan);
    let system = System::new();
    let run_plan = plan.clone();
    let code = system.block_on(async move {
        let plan = run_plan;
        let listener = UnixListener::from_std(listener).map_err(EngineError::Socket)?;
        let (done_tx, done_rx) = oneshot::channel();
        // The live status line: on a terminal, not in CI, not over a debugger.
        let live = !plan.interactive && std::io::stdout().is_terminal() && std::env::var_os("CI").is_none();
        let reporter = Reporter::new(plan.color, plan.started, live, Box::new(std::io::stdout())).start();
        let scheduler = Scheduler::new(reporter.clone(), plan.retries, live, plan.rerun_isolated).start();
        let supervisor =
            Supervisor::new(plan, pyworker_dir, socket, scheduler.clone(), reporter, done_tx, warm_zygote).start();
        actix::spawn(accept_loop(listener, supervisor, scheduler));
        Ok::<i32, EngineError>(done_rx.await.unwrap_or(3))
    })?;
    drop(socket_dir);
    let orphans = proctree::end_orphans();
    crate::trace::event(|| format!("ended {orphans} leftover process(es) of the run"));
    if let Some(daemon) = &plan.daemon {
        daemon.prewarm();
    }
    Ok(code)
}
