//! The commands that run no tests: `serve` (the warm daemon),
//! `--version`, `--merge-durations` and `--inventory-status`, and how a
//! usage error ends the process.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli;
use crate::daemon;
use crate::errors::UsageError;
use crate::exit_code::ExitCode;
use crate::history::durations_file;
use crate::history::inventory_status;
use crate::plan::{current_dir, memory_limits, settings};
use crate::python::interpreter;
use crate::python::rootdir;

/// `rpytest serve ...`: the warm daemon, with its idle timeout and memory
/// cap from settings.
pub fn serve(args: &[String]) -> ExitCode {
    match current_dir().and_then(|cwd| settings(&cwd)) {
        // The daemon's command keeps its own statuses (0, 1, usage error).
        Ok(settings) => ExitCode::from_code(daemon::command::main(args, &settings)),
        Err(e) => usage_error(e),
    }
}

/// `--version`: ours, then pytest's from the interpreter a run would use.
pub fn print_versions(python: Option<&std::path::Path>) -> ExitCode {
    println!("rpytest {}", env!("CARGO_PKG_VERSION"));
    let pytest =
        interpreter::resolve(python).map_err(|e| e.to_string()).and_then(|py| interpreter::pytest_version(&py));
    match pytest {
        Ok(line) => {
            println!("{line}");
            ExitCode::Ok
        }
        Err(e) => usage_error(UsageError::Interpreter(e)),
    }
}

pub fn usage_error(e: UsageError) -> ExitCode {
    eprintln!("rpytest: error: {e}");
    UsageError::EXIT_CODE
}

/// `rpytest --merge-durations PART...`: the shards' durations parts, merged
/// into the durations file (`--durations-path`, else `./.test_durations`).
pub fn merge_durations(command_line: cli::CommandLine) -> Result<(), UsageError> {
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
pub fn status(command_line: cli::CommandLine) -> Result<ExitCode, UsageError> {
    let cwd = current_dir()?;
    let settings = settings(&rootdir::pytest_rootdir(&cwd, &command_line.pytest_args))?;
    let limits = memory_limits(&command_line.own, &settings);
    let workers = command_line.own.workers.unwrap_or(settings.default_workers).resolve(&limits);
    let tty = std::io::stdout().is_terminal();
    let args = &command_line.pytest_args;
    let rootdir_flag = rootdir::option_value(args, &["--rootdir"]);
    print!("{}", inventory_status::render(&cwd, rootdir_flag, args, workers, tty));
    Ok(ExitCode::Ok)
}
