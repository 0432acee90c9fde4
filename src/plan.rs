//! The command line and the settings, resolved into one `RunPlan`: the
//! first stage of a test id's path (see `lib.rs`). Everything a run needs
//! is decided here, before any process starts; what cannot be resolved is
//! a `UsageError` that says what to fix.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::{self, OwnFlags};
use crate::config::{self, WorkerStart};
use crate::daemon;
use crate::daemon::client::DaemonRun;
use crate::errors::UsageError;
use crate::history::durations_file;
use crate::python::interpreter;
use crate::python::rootdir;
use crate::schedule::dist::DistMode;
use crate::schedule::shard::{self, ShardInput};

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
    /// `--worker-start fork` on the command line: fork even past threads
    /// alive in the zygote (`run_start::plan_run` warns).
    pub fork_forced: bool,
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
    pub test_order: crate::schedule::run_queue::Order,
    /// `--rerun-isolated`: failed tests run again alone, to diagnose order.
    pub rerun_isolated: bool,
    /// `shared_session_fixtures`: set up once in the zygote (fork mode only).
    pub shared_fixtures: Vec<String>,
    /// The worker count is `auto`: the history may lower it (`auto_workers`).
    pub workers_auto: bool,
    /// Workers the zygote may spread the collection over (0: it collects
    /// alone); it still decides by its own rule (docs/collection.md).
    pub collect_shares: usize,
    /// `parallel_collection = "always"`: spread small suites too.
    pub collect_always: bool,
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

/// Runs that only make sense one test at a time, and why.
fn serial_reason(pytest_args: &[String]) -> Option<&'static str> {
    let has = |flags: &[&str]| pytest_args.iter().any(|a| flags.contains(&a.as_str()));
    if has(&["--pdb", "--trace"]) {
        return Some("--pdb/--trace: running the tests one at a time in one worker, so the debugger has this terminal");
    }
    if has(&["--sw", "--stepwise", "--sw-skip", "--stepwise-skip", "--sw-reset", "--stepwise-reset"]) {
        return Some(
            "--stepwise: running the tests one at a time in one worker, so the run stops at the first failure in order",
        );
    }
    None
}

/// Defaults, then pyproject.toml, then `RPYTEST_*` variables.
pub fn settings(cwd: &Path) -> Result<config::Settings, UsageError> {
    let mut settings = config::Settings::load(cwd)?;
    settings.apply_env(std::env::vars_os())?;
    Ok(settings)
}

pub fn current_dir() -> Result<PathBuf, UsageError> {
    std::env::current_dir().map_err(|e| UsageError::BadFlag(format!("cannot read the current directory: {e}")))
}

pub fn plan(command_line: cli::CommandLine, started: Instant) -> Result<RunPlan, UsageError> {
    let own = command_line.own;
    let cwd = current_dir()?;
    let settings_root = rootdir::pytest_rootdir(&cwd, &command_line.pytest_args);
    let settings = settings(&settings_root)?;
    let python = interpreter::resolve(own.python.as_deref())?;
    let color = match own.color.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let memory = memory_limits(&own, &settings);
    let resolve = |n: config::WorkerCount| n.resolve_capped(own.maxprocesses, &memory);
    let (mut workers, dist) = match (own.dist, own.workers) {
        // As in xdist: `--dist no` is a plain run, unless -n asks for workers.
        (Some(DistMode::No), None) => (1, Some(DistMode::No)),
        (Some(DistMode::No), Some(n)) => (resolve(n), Some(DistMode::Load)),
        (dist, n) => (resolve(n.unwrap_or(settings.default_workers)), dist),
    };
    let mut workers_fixed = own.workers.is_some() || dist == Some(DistMode::No);
    let mut workers_auto = own.workers.unwrap_or(settings.default_workers) == config::WorkerCount::Auto;
    let interactive = command_line.pytest_args.iter().any(|a| a == "--pdb" || a == "--trace");
    if let Some(why) = serial_reason(&command_line.pytest_args) {
        if workers > 1 || !workers_fixed {
            eprintln!("rpytest: {why}");
        }
        workers = 1;
        workers_fixed = true;
        workers_auto = false;
    }
    let shard = sharding(&own, &cwd)?;
    let worker_start = own.worker_start.unwrap_or(settings.worker_start);
    let test_order = own.test_order.unwrap_or(settings.test_order);
    // Each worker runs what it collected, in collection order: not with
    // one worker, a shard (it needs every node id first), a debugger,
    // longest-first order or shared fixtures (set up in the zygote).
    let spreads = settings.parallel_collection != config::ParallelCollection::Off
        && worker_start == WorkerStart::Fork
        && workers > 1
        && shard.is_none()
        && !interactive
        && test_order == crate::schedule::run_queue::Order::Collection
        && settings.shared_session_fixtures.is_empty();
    let daemon = daemon::client::plan(&own, &settings, &python, &cwd, &command_line.pytest_args);
    Ok(RunPlan {
        daemon,
        python,
        pytest_args: command_line.pytest_args,
        workers,
        workers_fixed,
        interactive,
        worker_start,
        fork_forced: own.worker_start == Some(WorkerStart::Fork),
        color,
        started,
        dist,
        store_durations: durations_target(&own, &cwd, shard.as_ref().map(|s| s.spec))?,
        shard,
        retries: own.retries.unwrap_or(settings.retries),
        test_order,
        rerun_isolated: own.rerun_isolated,
        timeout: own.timeout.or(settings.timeout).filter(|secs| *secs > 0.0),
        slow_timeout: Some(own.slow_timeout.unwrap_or(settings.slow_timeout)).filter(|secs| *secs > 0.0),
        max_worker_restart: own.max_worker_restart,
        memory,
        shared_fixtures: shared_fixtures(settings.shared_session_fixtures, worker_start),
        workers_auto,
        collect_shares: if spreads { workers } else { 0 },
        collect_always: settings.parallel_collection == config::ParallelCollection::Always,
        settings_lookup: (settings_root, settings.source.is_some()),
    })
}

/// `--max-memory`/`--worker-memory` over `[tool.rpytest]`.
pub fn memory_limits(own: &cli::OwnFlags, settings: &config::Settings) -> config::MemoryLimits {
    config::MemoryLimits {
        max_memory: own.max_memory.map_or(settings.max_memory, |flag| flag.0),
        worker_memory: own.worker_memory.unwrap_or(settings.worker_memory),
    }
}

/// Shared session fixtures need the fork: spawned workers each set them up.
fn shared_fixtures(names: Vec<String>, worker_start: config::WorkerStart) -> Vec<String> {
    if worker_start == config::WorkerStart::Spawn && !names.is_empty() {
        eprintln!(
            "rpytest: --worker-start spawn cannot share session fixtures ({}): \
             each worker sets them up itself",
            names.join(", ")
        );
        return Vec::new();
    }
    names
}

/// The shard to run and what it partitions from: the durations file when
/// there is one (an explicit `--durations-path` must exist unless this run
/// creates it), else the node-id hash. Never the local history.
fn sharding(own: &OwnFlags, cwd: &Path) -> Result<Option<ShardInput>, UsageError> {
    let Some((spec, source)) = shard::locate(own.shard, own.total_shards, |name| std::env::var(name).ok())? else {
        return Ok(None);
    };
    let path = durations_file::resolve_path(own.durations_path.as_deref(), cwd);
    let required = own.durations_path.is_some() && !own.store_durations;
    if !path.exists() && !required {
        return Ok(Some(ShardInput { spec, durations: None, source }));
    }
    let durations = match durations_file::read(&path) {
        Ok(durations) => durations,
        // This run rewrites the file: say so and split by node-id hash meanwhile.
        Err(_) if own.store_durations => {
            let warning = durations_file::replaced_warning(&path).unwrap_or_default();
            eprintln!("rpytest: warning: {warning}; this shard splits by node-id hash");
            return Ok(Some(ShardInput { spec, durations: None, source }));
        }
        Err(problem) => return Err(UsageError::BadFlag(problem)),
    };
    let shown = path.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(path);
    Ok(Some(ShardInput { spec, durations: Some((shown, durations)), source }))
}

/// `--store-durations`: the file to merge into. One that cannot be read is
/// reported now, as a warning: this run replaces it (the fix the error
/// message of every other command recommends). A shard writes its own part
/// beside the shared file instead (shards run on different machines);
/// `--merge-durations` puts the parts together.
fn durations_target(
    own: &OwnFlags,
    cwd: &Path,
    shard: Option<shard::ShardSpec>,
) -> Result<Option<PathBuf>, UsageError> {
    if !own.store_durations {
        return Ok(None);
    }
    let mut path = durations_file::resolve_path(own.durations_path.as_deref(), cwd);
    if let Some(spec) = shard {
        path = durations_file::part_path(&path, spec.index, spec.total);
    }
    if let Some(warning) = durations_file::replaced_warning(&path) {
        eprintln!("rpytest: warning: {warning}");
    }
    Ok(Some(path))
}
