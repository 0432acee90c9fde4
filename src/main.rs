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

use std::io::IsTerminal;
use std::time::Instant;

use cli::ClapOrUsage;
use errors::{EngineError, UsageError};

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

fn plan(command_line: cli::CommandLine, started: Instant) -> Result<engine::RunPlan, UsageError> {
    let own = command_line.own;
    let cwd = std::env::current_dir().map_err(|e| UsageError::BadFlag(format!("cannot read the current directory: {e}")))?;
    let settings = config::Settings::load(&cwd)?;
    let python = interpreter::resolve(own.python.as_deref())?;
    let color = match own.color.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    Ok(engine::RunPlan {
        python,
        pytest_args: command_line.pytest_args,
        workers: own.workers.unwrap_or(settings.default_workers).resolve(),
        worker_start: own.worker_start.unwrap_or(settings.worker_start),
        color,
        started,
    })
}
