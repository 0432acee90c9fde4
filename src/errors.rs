//! Errors as types: each says what is wrong and how to fix it, and maps to
//! the exit code pytest would use for the same kind of failure.

use crate::exit_code::ExitCode;
use std::path::PathBuf;

/// Problems with what the user asked for: pytest's exit code 4.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    BadFlag(String),
    #[error("{flag} is not supported by rpytest yet: {why}")]
    Unsupported { flag: String, why: String },
    #[error("{file}: {message}")]
    Config { file: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Interpreter(String),
}

/// Failures of rpytest itself: pytest's exit code 3 (internal error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot prepare the worker package in {dir}: {source}")]
    PyworkerCache { dir: PathBuf, source: std::io::Error },
    #[error("cannot create the engine socket: {0}")]
    Socket(std::io::Error),
}

impl UsageError {
    pub const EXIT_CODE: ExitCode = ExitCode::UsageError;
}

impl EngineError {
    pub const EXIT_CODE: ExitCode = ExitCode::InternalError;
}
