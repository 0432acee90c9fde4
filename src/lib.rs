//! rpytest: runs an existing pytest suite in parallel on warm, forked
//! workers, with pytest's own outcomes, output and exit codes.
//!
//! # The path of a test id
//!
//! The modules follow one test from the command line to its report line:
//!
//! 1. **Command line** (`cli`, `config`): rpytest's own flags are taken
//!    out, pytest's pass through; `[tool.rpytest]` and `RPYTEST_*` fill in
//!    the rest.
//! 2. **Plan** (`plan`): all of it resolved into one `RunPlan` (interpreter,
//!    worker count, `--dist`, shard, timeouts, memory budget, daemon).
//! 3. **Engine** (`engine`): one actix system per run, the only actix-aware
//!    code; `engine/mod.rs` wires the actors through recipient links
//!    (`engine::messages`). The Supervisor (plain logic in `supervise`:
//!    `lifecycle`, `launch`, `slots`, `run_start`) starts the zygote with
//!    the embedded package (`python`), or adopts a warm one from the daemon
//!    (`daemon`).
//! 4. **Collection**: the zygote runs pytest up to `pytest_runtestloop`
//!    and sends `collected` (`protocol::Inventory`): our test id is now an
//!    index into the inventory, with the id pytest shows.
//! 5. **Schedule** (`schedule`: `run_queue`, `dist`, `lpt`, `shard`,
//!    `durations_file`, `auto_workers`): its unit (the test, or its
//!    module/group) is planned for a worker from the history, or waits in
//!    the shared pool.
//! 6. **Protocol** (`protocol`, twin of `pyworker/rpytest_worker/protocol.py`):
//!    a `run` frame carries its index to a worker forked from the zygote.
//! 7. **Worker** (Python): pytest's own `runtestprotocol` runs it; a
//!    `test_done` frame brings back its phases, captured output and
//!    warnings.
//! 8. **Run state** (`run`: `state`, `crash`, `timeouts`, `exit_code`,
//!    driven by the Scheduler actor): the result is recorded, counted
//!    against `--maxfail`, retried, or, if the worker died under it,
//!    turned into a crash named by its signal.
//! 9. **Report** (`report`, `history`): the run state's events
//!    (`report::events::RunEvent`) reach two sinks: the terminal
//!    (`report::terminal`) prints its progress letter and closing sections
//!    as pytest would; the history (`history::recorder`) records its
//!    duration; at the end the zygote replays it into pytest's session so
//!    junitxml and plugins see it, and the session's exit status is the
//!    run's.
//!
//! `watch` (`rpytest --watch`) stands outside this path: it reruns a child
//! `rpytest` with the same arguments on every save.
//!
//! # Layers
//!
//! The path above is the order of events; the modules' dependencies form
//! another order, top first. Each module names (`crate::x`) only modules
//! below it, so each can be read, changed and tested without the ones
//! above (the unit test in `layers.rs` checks every file):
//!
//! `watch` > `commands` > `engine` > `supervise` > `plan` > `daemon` >
//! `cli` > `config` > `run` > `python` > `history` > `report` >
//! `schedule` > `protocol` > `errors` > `exit_code` > `trace`

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod errors;
pub mod exit_code;
pub mod history;
#[cfg(test)]
mod layers;
pub mod plan;
pub mod protocol;
pub mod python;
pub mod report;
pub mod run;
pub mod schedule;
pub mod supervise;
pub mod trace;
pub mod watch;

use std::time::Instant;

use cli::ClapOrUsage;
use errors::{EngineError, UsageError};
use exit_code::ExitCode;

/// The whole program: `args` without the program name; the exit code.
/// The command line as text. `std::env::args` panics on an argument that
/// is not valid UTF-8 (a path from a filesystem with another encoding);
/// this says which one instead.
pub fn utf8_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<String>, UsageError> {
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                UsageError::BadFlag(format!(
                    "argument {} ({arg:?}) is not valid UTF-8; rpytest passes arguments to pytest as text, \
                     so rename the path or select the tests another way (-k, a parent directory)",
                    i + 1
                ))
            })
        })
        .collect()
}

pub fn run(args: Vec<String>) -> ExitCode {
    let started = Instant::now();
    if args.first().is_some_and(|a| a == "serve") {
        return commands::serve(&args[1..]);
    }
    let command_line = match cli::parse(args.clone()) {
        Ok(command_line) => command_line,
        Err(ClapOrUsage::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() { UsageError::EXIT_CODE } else { ExitCode::Ok };
        }
        Err(ClapOrUsage::Usage(e)) => return commands::usage_error(e),
    };
    if command_line.own.version {
        return commands::print_versions(command_line.own.python.as_deref());
    }
    if command_line.own.watch {
        return watch::main(&args, command_line);
    }
    if command_line.own.merge_durations {
        return match commands::merge_durations(command_line) {
            Ok(()) => ExitCode::Ok,
            Err(e) => commands::usage_error(e),
        };
    }
    if command_line.own.inventory_status {
        return match commands::status(command_line) {
            Ok(code) => code,
            Err(e) => commands::usage_error(e),
        };
    }
    match plan::plan(command_line, started) {
        Ok(plan) => match engine::run(plan) {
            // The run is torn down; a SIGTERM or SIGHUP now ends us as it would have.
            Ok(code) => match supervise::signals::exit_by(code, supervise::signals::received()) {
                supervise::signals::ExitBy::Code(code) => code,
                supervise::signals::ExitBy::Signal(sig) => supervise::signals::raise_default(sig),
            },
            Err(e) => {
                eprintln!("rpytest: internal error: {e}");
                EngineError::EXIT_CODE
            }
        },
        Err(e) => commands::usage_error(e),
    }
}
