//! A spare interpreter: the layer below a warm session.
//!
//! Rebuilding a session (a conftest edited) would start Python, import
//! pytest and load the plugins again (with what they import from
//! site-packages). The daemon keeps, per key but its arguments, one process
//! that has done all of it for the arguments of the session it last built,
//! and waits where pytest would load the first conftests
//! (`RPYTEST_WARM_SPARE`; its Python half is `warm.SparePause`). Told to
//! build with the same arguments, it goes on from there and becomes the
//! session. Another session's arguments, or a file it read that changed
//! after it started, and it says so instead: the daemon starts afresh.

use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use super::key::RunKey;
use super::warm_zygote::{spawn, OnRunEnded, Starting, ZygoteError};

/// A Python process with the key's interpreter, directory and environment
/// that has configured pytest for `args` up to the conftests and waits: a
/// session built again with them (after a conftest edit) starts none of it.
pub struct Spare {
    pub pid: u32,
    /// Its project's directory (for `serve --status`).
    pub cwd: PathBuf,
    /// The arguments it was configured with, the only ones it can build.
    pub args: Vec<String>,
    link: UnixStream,
}

/// Starts a spare for `key`, configured with `args`.
pub fn start(key: &RunKey, args: &[String], pyworker_dir: &Path) -> Result<Spare, ZygoteError> {
    let (pid, link) = spawn(key, args, true, pyworker_dir)?;
    Ok(Spare { pid, cwd: key.cwd.clone(), args: args.to_vec(), link })
}

impl Spare {
    /// Whether it can become a session built with `args`.
    pub fn fits(&self, args: &[String]) -> bool {
        self.args == args
    }

    /// The spare becomes the session it was configured for.
    pub fn build(self, on_run_ended: OnRunEnded) -> Starting {
        Starting::new(self.pid, self.link, on_run_ended, Some(self.args))
    }
}
