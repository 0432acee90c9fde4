//! The messages between the daemon and a warm zygote (a checkpoint), with
//! the list of what its collection depended on. Same framing as the rest
//! of the protocol (a big-endian u32 length, then a MessagePack map whose
//! `type` names the message); the Python side is
//! `pyworker/rpytest_worker/warm.py`, and `protocol.py daemon-samples`
//! writes one of each message it sends, which `golden.rs` decodes here.
//! The daemon (`src/daemon/warm_zygote.rs`) holds the conversation; what a
//! dependency list means is `src/daemon/deps.rs`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// mtime (ns), ctime (ns), size, inode.
pub type Stat = (i64, i64, u64, u64);

/// Every file the zygote imported or read, with its stat (`None`: absent),
/// and every directory it listed, with a digest of its visible names.
#[derive(Debug, Deserialize)]
pub struct Deps {
    pub files: Vec<(PathBuf, Option<Stat>)>,
    /// Directory, digest of its visible names (None: unreadable), mtime (ns).
    pub dirs: Vec<(PathBuf, Option<String>, i64)>,
}

/// From a warm zygote to the daemon.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWarmZygote {
    /// Collected; `started_ns`: when it began reading the suite.
    Warm { deps: Deps, started_ns: i64 },
    /// Whether it can serve the run asked about: `None`, or why not.
    Verdict { reason: Option<String> },
    /// A fork of it took the run (0: it declined after all).
    Taken { pid: u32 },
    /// Re-collected in place what the changed files affect.
    Refreshed { deps: Deps, started_ns: i64, recollected: Vec<PathBuf> },
    /// Cannot refresh itself: build a new session.
    Stale { reason: String },
    /// A run's fork ended.
    Ended { pid: u32, exit_code: Option<i32>, signal: Option<i32> },
}

/// From the daemon to a warm zygote.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWarmZygote<'a> {
    /// Configure and collect for these pytest arguments.
    Build {
        args: &'a [String],
    },
    /// Can it serve a run with these arguments? (answered by `Verdict`)
    Serve {
        args: &'a [String],
    },
    /// Fork, and let the fork take the run whose engine listens on `socket`.
    Handover {
        socket: &'a Path,
        args: &'a [String],
    },
    /// These files and directories changed: re-collect what they affect.
    Refresh {
        files: &'a [PathBuf],
        dirs: &'a [PathBuf],
    },
    Retire,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `checkpoint.py` reads of each message the daemon sends: a map
    /// with `type` and the fields by name.
    #[test]
    fn the_daemon_sends_maps_keyed_as_the_checkpoint_reads_them() {
        let keys = |message: &ToWarmZygote| -> Vec<String> {
            let value: rmpv::Value = rmp_serde::from_slice(&rmp_serde::to_vec_named(message).unwrap()).unwrap();
            value.as_map().unwrap().iter().map(|(k, v)| format!("{}={v}", k.as_str().unwrap())).collect()
        };
        let args = ["-q".to_string()];
        let (files, dirs) = ([PathBuf::from("a.py")], [PathBuf::from("d")]);
        let handover = ToWarmZygote::Handover { socket: Path::new("/s"), args: &args };
        assert_eq!(keys(&handover), ["type=\"handover\"", "socket=\"/s\"", "args=[\"-q\"]"]);
        assert_eq!(keys(&ToWarmZygote::Serve { args: &args }), ["type=\"serve\"", "args=[\"-q\"]"]);
        assert_eq!(keys(&ToWarmZygote::Build { args: &args }), ["type=\"build\"", "args=[\"-q\"]"]);
        let refresh = ToWarmZygote::Refresh { files: &files, dirs: &dirs };
        assert_eq!(keys(&refresh), ["type=\"refresh\"", "files=[\"a.py\"]", "dirs=[\"d\"]"]);
        assert_eq!(keys(&ToWarmZygote::Retire), ["type=\"retire\""]);
    }
}
