//! The command line: rpytest's own flags, split from pytest's.
//!
//! `rpytest` takes pytest's command line plus a few flags of its own. We take
//! ours out (validating them with clap, which also writes `--help`) and pass
//! everything else to pytest untouched, so pytest parses and validates its
//! own options exactly as it would alone. Flags that rpytest cannot honour
//! yet are refused here with a reason, never accepted and ignored.

use clap::Parser;

use crate::errors::UsageError;
pub use flags::OwnFlags;
use pytest_flags::{reject_unsupported, TAKES_VALUE};

mod flags;
pub(crate) mod pytest_flags;
#[cfg(test)]
mod tests;

/// What `--affected` becomes on pytest's command line (the worker package's option).
pub const AFFECTED_OPTION: &str = "--rpytest-affected";

/// The command line, split.
#[derive(Debug)]
pub struct CommandLine {
    pub own: OwnFlags,
    pub pytest_args: Vec<String>,
}

/// Splits `args` (without the program name) into rpytest's flags and pytest's.
pub fn parse(args: Vec<String>) -> Result<CommandLine, ClapOrUsage> {
    let mut own = vec!["rpytest".to_string()];
    let mut pytest_args = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let next = args.get(i + 1);
        match own_flag(arg) {
            Some(OwnKind::WithValue(inline)) => {
                own.push(arg.clone());
                if inline.is_none() {
                    let value =
                        next.ok_or_else(|| ClapOrUsage::Usage(UsageError::BadFlag(format!("{arg} needs a value"))))?;
                    own.push(value.clone());
                    i += 1;
                }
                if arg.starts_with("--color") {
                    pytest_args.push(arg.clone());
                    if inline.is_none() {
                        pytest_args.push(args[i].clone());
                    }
                }
            }
            Some(OwnKind::Flag) => own.push(arg.clone()),
            // xdist's `-d` is its shortcut for `--dist=load`.
            None if arg == "-d" => own.push("--dist=load".to_string()),
            None => {
                reject_unsupported(arg)?;
                pytest_args.push(arg.clone());
                if TAKES_VALUE.contains(&arg.as_str()) {
                    if let Some(value) = next {
                        pytest_args.push(value.clone());
                        i += 1;
                    }
                }
            }
        }
        i += 1;
    }
    let own = OwnFlags::try_parse_from(own).map_err(ClapOrUsage::Clap)?;
    if own.affected {
        // The zygote selects (pyworker/rpytest_worker/affected.py); a warm
        // session applies it in the run's fork like -k (daemon::selection).
        let at = pytest_args.iter().position(|a| a == "--").unwrap_or(pytest_args.len());
        pytest_args.insert(at, AFFECTED_OPTION.to_string());
    }
    Ok(CommandLine { own, pytest_args })
}

/// Either clap's own report (help, version, bad value) or our usage error.
#[derive(Debug)]
pub enum ClapOrUsage {
    Clap(clap::Error),
    Usage(UsageError),
}

enum OwnKind {
    /// A flag with a value; `Some` when written inline (`-n4`, `--python=x`).
    WithValue(Option<String>),
    Flag,
}

fn own_flag(arg: &str) -> Option<OwnKind> {
    if matches!(
        arg,
        "-h" | "--help"
            | "-V"
            | "--version"
            | "--store-durations"
            | "--inventory-status"
            | "--merge-durations"
            | "--no-daemon"
            | "--rerun-isolated"
            | "--watch"
            | "--affected"
    ) {
        return Some(OwnKind::Flag);
    }
    const WITH_VALUE: [&str; 16] = [
        "--numprocesses",
        "--python",
        "--worker-start",
        "--color",
        "--dist",
        "--shard",
        "--total-shards",
        "--durations-path",
        "--maxprocesses",
        "--retries",
        "--test-order",
        "--timeout",
        "--max-worker-restart",
        "--max-memory",
        "--worker-memory",
        "--slow-timeout",
    ];
    for long in WITH_VALUE {
        if arg == long {
            return Some(OwnKind::WithValue(None));
        }
        if let Some(value) = arg.strip_prefix(long).and_then(|rest| rest.strip_prefix('=')) {
            return Some(OwnKind::WithValue(Some(value.to_string())));
        }
    }
    if arg == "-n" {
        return Some(OwnKind::WithValue(None));
    }
    if let Some(value) = arg.strip_prefix("-n") {
        if !value.starts_with('-') {
            return Some(OwnKind::WithValue(Some(value.trim_start_matches('=').to_string())));
        }
    }
    None
}
