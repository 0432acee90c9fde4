//! A spare interpreter: the layer below a warm session.
//!
//! Rebuilding a session (a conftest edited) would start Python and import
//! pytest again. The daemon keeps, per key but its arguments, one process
//! that has done both and waits (`RPYTEST_WARM_SPARE`; its Python half is
//! `warm.wait_for_build`): told the arguments, it becomes the session. A
//! spare whose imports changed after it started says so instead, and the
//! daemon starts afresh.

use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use super::key::RunKey;
use super::warm_zygote::{spawn, OnRunEnded, Starting, ZygoteError};

/// A Python process with the key's interpreter, directory and environment
/// that has imported pytest and waits to be told what to collect: a session
/// built again (after a conftest edit) starts neither.
pub struct Spare {
    pub pid: u32,
    /// Its project's directory (for `serve --status`).
    pub cwd: PathBuf,
    link: UnixStream,
}

/// Starts a spare for `key` (its arguments are given later, by `build`).
pub fn start(key: &RunKey, pyworker_dir: &Path) -> Result<Spare, ZygoteError> {
    let (pid, link) = spawn(key, None, pyworker_dir)?;
    Ok(Spare { pid, cwd: key.cwd.clone(), link })
}

impl Spare {
    /// The spare becomes a session built with `args`.
    pub fn build(self, args: &[String], on_run_ended: OnRunEnded) -> Starting {
        Starting::new(self.pid, self.link, on_run_ended, Some(args.to_vec()))
    }
}
