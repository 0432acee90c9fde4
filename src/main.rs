//! rpytest: run an existing pytest suite in parallel on warm, forked workers.
//!
//! `main` turns the command line and settings into a `RunPlan`, hands it to
//! the engine, and exits with pytest's exit code for the outcome.

mod actors;
mod cli;
mod config;
mod dist;
mod durations_file;
mod engine;
mod errors;
mod history;
mod interpreter;
mod inventory_status;
mod lpt;
mod protocol;
mod pyworker;
mod render;
mod report;
mod run_queue;
mod shard;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cli::{ClapOrUsage, OwnFlags};
use dist::DistMode;
use errors::{EngineError, UsageError};
use shard::{ShardInput, ShardSpec};

fn main() {
    std::process::exit(run(std::env::args().skip(1).collect()));
}

fn run(args: Vec<String>) -> i32 {
    let started = Instant::now();
    let command_line = match cli::parse(args) {
        Ok(command_line) => command_line,
        Err(ClapOrUsage::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() { UsageError::EXIT_CODE } else { 0 };
        }
        Err(ClapOrUsage::Usage(e)) => return usage_error(e),
    };
    if command_line.own.inventory_status {
        return match status(command_line) {
            Ok(code) => code,
            Err(e) => usage_error(e),
        };
    }
    match plan(command_line, started) {
        Ok(plan) => match engine::run(plan) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("rpytest: internal error: {e}");
                EngineError::EXIT_CODE
            }
        },
        Err(e) => usage_error(e),
    }
}

fn usage_error(e: UsageError) -> i32 {
    eprintln!("rpytest: error: {e}");
    UsageError::EXIT_CODE
}

fn current_dir() -> Result<PathBuf, UsageError> {
    std::env::current_dir().map_err(|e| UsageError::BadFlag(format!("cannot read the current directory: {e}")))
}

/// `rpytest --inventory-status`: print what the history knows, run nothing.
fn status(command_line: cli::CommandLine) -> Result<i32, UsageError> {
    let cwd = current_dir()?;
    let settings = config::Settings::load(&cwd)?;
    let workers = command_line.own.workers.unwrap_or(settings.default_workers).resolve();
    let tty = std::io::stdout().is_terminal();
    print!("{}", inventory_status::render(&cwd, &command_line.pytest_args, workers, tty));
    Ok(0)
}

fn plan(command_line: cli::CommandLine, started: Instant) -> Result<engine::RunPlan, UsageError> {
    let own = command_line.own;
    let cwd = current_dir()?;
    let settings = config::Settings::load(&cwd)?;
    let python = interpreter::resolve(own.python.as_deref())?;
    let color = match own.color.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let (workers, dist) = match (own.dist, own.workers) {
        // As in xdist: `--dist no` is a plain run, unless -n asks for workers.
        (Some(DistMode::No), None) => (1, Some(DistMode::No)),
        (Some(DistMode::No), Some(n)) => (n.resolve(), Some(DistMode::Load)),
        (dist, n) => (n.unwrap_or(settings.default_workers).resolve(), dist),
    };
    Ok(engine::RunPlan {
        python,
        pytest_args: command_line.pytest_args,
        workers,
        worker_start: own.worker_start.unwrap_or(settings.worker_start),
        color,
        started,
        dist,
        shard: sharding(&own, &cwd)?,
        store_durations: durations_target(&own, &cwd)?,
    })
}

/// The shard to run and what it partitions from: the durations file when
/// there is one (an explicit `--durations-path` must exist unless this run
/// creates it), else the node-id hash. Never the local history.
fn sharding(own: &OwnFlags, cwd: &Path) -> Result<Option<ShardInput>, UsageError> {
    let Some(spec) = ShardSpec::resolve(own.shard, own.total_shards, |name| std::env::var(name).ok())? else {
        return Ok(None);
    };
    let path = durations_file::resolve_path(own.durations_path.as_deref(), cwd);
    let required = own.durations_path.is_some() && !own.store_durations;
    if !path.exists() && !required {
        return Ok(Some(ShardInput { spec, durations: None }));
    }
    let durations = durations_file::read(&path).map_err(UsageError::BadFlag)?;
    let shown = path.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(path);
    Ok(Some(ShardInput { spec, durations: Some((shown, durations)) }))
}

/// `--store-durations`: the file to merge into, checked now so a corrupt
/// one is reported before the run rather than overwritten after it.
fn durations_target(own: &OwnFlags, cwd: &Path) -> Result<Option<PathBuf>, UsageError> {
    if !own.store_durations {
        return Ok(None);
    }
    let path = durations_file::resolve_path(own.durations_path.as_deref(), cwd);
    if path.exists() {
        durations_file::read(&path).map_err(UsageError::BadFlag)?;
    }
    Ok(Some(path))
}
