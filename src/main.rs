//! rpytest: run an existing pytest suite in parallel on warm, forked workers.
//!
//! `main` turns the command line and settings into a `RunPlan`, hands it to
//! the engine, and exits with pytest's exit code for the outcome.

mod actors;
mod cli;
mod config;
mod engine;
mod errors;
mod history;
mod interpreter;
mod protocol;
mod pyworker;
mod render;
mod report;
mod run_queue;
mod trace;

use std::io::IsTerminal;
use std::time::Instant;

use cli::ClapOrUsage;
use errors::{EngineError, UsageError};

fn main() {
    trace::init();
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
    if command_line.own.version {
        return print_versions(command_line.own.python.as_deref());
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

/// `--version`: ours, then pytest's from the interpreter a run would use.
fn print_versions(python: Option<&std::path::Path>) -> i32 {
    println!("rpytest {}", env!("CARGO_PKG_VERSION"));
    let pytest = interpreter::resolve(python).map_err(|e| e.to_string()).and_then(|py| interpreter::pytest_version(&py));
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
        return Some("--stepwise: running the tests one at a time in one worker, so the run stops at the first failure in order");
    }
    None
}

fn usage_error(e: UsageError) -> i32 {
    eprintln!("rpytest: error: {e}");
    UsageError::EXIT_CODE
}

fn plan(command_line: cli::CommandLine, started: Instant) -> Result<engine::RunPlan, UsageError> {
    let own = command_line.own;
    let cwd = std::env::current_dir().map_err(|e| UsageError::BadFlag(format!("cannot read the current directory: {e}")))?;
    let mut settings = config::Settings::load(&cwd)?;
    settings.apply_env(std::env::vars())?;
    let python = interpreter::resolve(own.python.as_deref())?;
    let color = match own.color.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut workers = own.workers.unwrap_or(settings.default_workers).resolve();
    let mut workers_fixed = own.workers.is_some();
    let interactive = command_line.pytest_args.iter().any(|a| a == "--pdb" || a == "--trace");
    if let Some(why) = serial_reason(&command_line.pytest_args) {
        if workers > 1 || !workers_fixed {
            eprintln!("rpytest: {why}");
        }
        workers = 1;
        workers_fixed = true;
    }
    Ok(engine::RunPlan {
        python,
        pytest_args: command_line.pytest_args,
        workers,
        workers_fixed,
        interactive,
        worker_start: own.worker_start.unwrap_or(settings.worker_start),
        color,
        started,
    })
}
