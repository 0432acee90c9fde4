//! The engine's private socket directory, and the ones dead runs left.
//!
//! Each run binds its socket in a fresh `$TMPDIR/rpytest-XXXXXX`, mode 0700
//! (only its owner may reach the socket; the peer uid is checked as well),
//! removed when the run ends, also when it is interrupted by SIGINT, SIGTERM
//! or SIGHUP (`signals.rs`). A run killed by SIGKILL cannot remove its own:
//! the next run does, once it has made sure that nothing listens on the
//! socket in it any more.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const PREFIX: &str = "rpytest-";
pub const SOCKET_NAME: &str = "engine.sock";

/// Creates this run's directory (0700), after removing dead runs' ones.
pub fn create() -> std::io::Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    tempfile::Builder::new().prefix(PREFIX).permissions(std::fs::Permissions::from_mode(0o700)).tempdir_in(tmp)
}

/// Removes the socket directories in `tmp` whose run is gone; errors are
/// ignored (another run may remove the same one at the same time).
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        if entry.file_name().to_string_lossy().starts_with(PREFIX) && is_stale(&dir) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// A directory of ours holding an engine socket that refuses connections:
/// its engine is dead. A directory without a socket may be one a run is
/// creating right now, and the daemon's runtime directory holds no
/// `engine.sock`, so neither is touched.
fn is_stale(dir: &Path) -> bool {
    // SAFETY: getuid has no preconditions.
    let ours = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == unsafe { libc::getuid() });
    let socket = dir.join(SOCKET_NAME);
    ours && socket.exists()
        && matches!(
            std::os::unix::net::UnixStream::connect(&socket),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn only_dead_runs_directories_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let dir = tmp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            dir
        };
        let dead = make("rpytest-dead");
        drop(UnixListener::bind(dead.join(SOCKET_NAME)).unwrap());
        let live = make("rpytest-live");
        let _listener = UnixListener::bind(live.join(SOCKET_NAME)).unwrap();
        let starting = make("rpytest-starting");
        let other = make("other-dead");
        drop(UnixListener::bind(other.join(SOCKET_NAME)).unwrap());
        remove_stale(tmp.path());
        assert!(!dead.exists(), "a socket nobody listens on: its run is gone");
        assert!(live.exists() && starting.exists() && other.exists());
    }

    #[test]
    fn the_directory_admits_only_its_owner() {
        let dir = create().unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
