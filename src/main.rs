//! rpytest: run an existing pytest suite in parallel on warm, forked workers.
//!
//! `main` turns the command line and settings into a `RunPlan`, hands it to
//! the engine, and exits with pytest's exit code for the outcome.

mod actors;
mod auto_workers;
mod cli;
mod config;
mod crash;
mod daemon;
mod dir_lock;
mod dist;
mod durations_file;
mod engine;
mod errors;
mod exit_code;
mod history;
mod interpreter;
mod inventory_status;
mod lpt;
mod memory_watch;
mod proctree;
mod protocol;
mod pyworker;
mod render;
mod report;
mod rootdir;
mod run_queue;
mod run_state;
mod shard;
mod signals;
mod socket_dir;
mod timeouts;
mod trace;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cli::{ClapOrUsage, OwnFlags};
use dist::DistMode;
use errors::{EngineError, UsageError};
use shard::ShardInput;

fn main() {
    trace::init();
    std::process::exit(run(std::env::args().skip(1).collect()));
}

fn run(args: Vec<String>) -> i32 {
    let started = Instant::now();
    if args.first().is_some_and(|a| a == "serve") {
        return serve(&args[1..]);
    }
    let command_line = match cli::parse(args) {
        Ok(command_line) => command_line,
        Err(ClapOrUsage::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() { UsageError::EXIT_CODE } else { 0 };
        }
        Err(ClapOrUsage::Usage(e)) => return usage_error(e),
    };
    if command_line.own.version {
        return print_versions(command_line.own.python.as_deref());
    }
    if command_line.own.merge_durations {
        return match merge_durations(command_line) {
            Ok(()) => 0,
            Err(e) => usage_error(e),
        };
    }
    if command_line.own.inventory_status {
        return match status(command_line) {
            Ok(code) => code,
            Err(e) => usage_error(e),
        };
    }
    match plan(command_line, started) {
        Ok(plan) => match engine::run(plan) {
            // The run is torn down; a SIGTERM or SIGHUP now ends us as it would have.
            Ok(code) => match signals::ending(code, signals::received()) {
                signals::Ending::Exit(code) => code,
                signals::Ending::Raise(sig) => signals::raise_default(sig),
            },
            Err(e) => {
                eprintln!("rpytest: internal error: {e}");
                EngineError::EXIT_CODE
            }
        },
        Err(e) => usage_error(e),
    }
}

/// `rpytest serve ...`: the warm daemon, with its idle timeout from settings.
fn serve(args: &[String]) -> i32 {
    match current_dir().and_then(|cwd| settings(&cwd)) {
        Ok(settings) => daemon::command::main(args, settings.daemon_idle_timeout),
        Err(e) => usage_error(e),
    }
}

/// `--version`: ours, then pytest's from the interpreter a run would use.
fn print_versions(python: Option<&std::path::Path>) -> i32 {
    println!("rpytest {}", env!("CARGO_PKG_VERSION"));
    let pytest =
        interpreter::resolve(python).map_err(|e| e.to_string()).and_then(|py| interpreter::pytest_version(&py));
    match pytest {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => usage_error(UsageError::Interpreter(e)),
    }
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

fn usage_error(e: UsageError) -> i32 {
    eprintln!("rpytest: error: {e}");
    UsageError::EXIT_CODE
}

/// Defaults, then pyproject.toml, then `RPYTEST_*` variables.
fn settings(cwd: &Path) -> Result<config::Settings, UsageError> {
    let mut settings = config::Settings::load(cwd)?;
    settings.apply_env(std::env::vars())?;
    Ok(settings)
}

fn current_dir() -> Result<PathBuf, UsageError> {
    std::env::current_dir().map_err(|e| UsageError::BadFlag(format!("cannot read the current directory: {e}")))
}

/// `rpytest --merge-durations PART...`: the shards' durations parts, merged
/// into the durations file (`--durations-path`, else `./.test_durations`).
fn merge_durations(command_line: cli::CommandLine) -> Result<(), UsageError> {
    let cwd = current_dir()?;
    let target = durations_file::resolve_path(command_line.own.durations_path.as_deref(), &cwd);
    let parts: Vec<PathBuf> = command_line.pytest_args.iter().map(|p| cwd.join(p)).collect();
    let merged = durations_file::merge_parts(&target, &parts).map_err(UsageError::BadFlag)?;
    println!(
        "rpytest: merged {} parts ({} tests) into {}: {} tests",
        parts.len(),
        merged.0,
        target.display(),
        merged.1
    );
    Ok(())
}

/// `rpytest --inventory-status`: print what the history knows, run nothing.
fn status(command_line: cli::CommandLine) -> Result<i32, UsageError> {
    let cwd = current_dir()?;
    let settings = settings(&rootdir::pytest_rootdir(&cwd, &command_line.pytest_args))?;
    let limits = memory_limits(&command_line.own, &settings);
    let workers = command_line.own.workers.unwrap_or(settings.default_workers).resolve(&limits);
    let tty = std::io::stdout().is_terminal();
    print!("{}", inventory_status::render(&cwd, &command_line.pytest_args, workers, tty));
    Ok(0)
}

fn plan(command_line: cli::CommandLine, started: Instant) -> Result<engine::RunPlan, UsageError> {
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
    let daemon = daemon::client::plan(&own, &settings, &python, &cwd, &command_line.pytest_args);
    Ok(engine::RunPlan {
        daemon,
        python,
        pytest_args: command_line.pytest_args,
        workers,
        workers_fixed,
        interactive,
        worker_start,
        color,
        started,
        dist,
        store_durations: durations_target(&own, &cwd, shard.as_ref().map(|s| s.spec))?,
        shard,
        retries: own.retries.unwrap_or(settings.retries),
        test_order: own.test_order.unwrap_or(settings.test_order),
        rerun_isolated: own.rerun_isolated,
        timeout: own.timeout.or(settings.timeout).filter(|secs| *secs > 0.0),
        slow_timeout: Some(own.slow_timeout.unwrap_or(settings.slow_timeout)).filter(|secs| *secs > 0.0),
        max_worker_restart: own.max_worker_restart,
        memory,
        shared_fixtures: shared_fixtures(settings.shared_session_fixtures, worker_start),
        workers_auto,
        settings_lookup: (settings_root, settings.source.is_some()),
    })
}

/// `--max-memory`/`--worker-memory` over `[tool.rpytest]`.
fn memory_limits(own: &cli::OwnFlags, settings: &config::Settings) -> config::MemoryLimits {
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
