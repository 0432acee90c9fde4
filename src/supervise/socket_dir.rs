//! The engine's private socket directory, and the ones dead runs left.
//!
//! Each run binds its socket in a fresh `$TMPDIR/rpytest-XXXXXX`, mode 0700
//! (only its owner may reach the socket; the peer uid is checked as well),
//! removed when the run ends, also when it is interrupted by SIGINT, SIGTERM
//! or SIGHUP (`signals.rs`). A run killed by SIGKILL cannot remove its own:
//! the next run does.
//!
//! Which directories are dead is decided by a lock, not by probing the
//! socket: a live run holds an exclusive `flock` on its directory from
//! before it binds the socket until the directory is removed, and the
//! kernel drops the lock when the process dies. Probing raced: a run
//! caught between `bind` and `listen` refuses connections exactly like a
//! dead one, and a concurrent run removed its directory under it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const PREFIX: &str = "rpytest-";
pub const SOCKET_NAME: &str = "engine.sock";

/// This run's socket directory, locked for as long as it lives.
#[derive(Debug)]
pub struct SocketDir {
    // Field order matters: the directory is removed before the lock drops,
    // so no other run can see it unlocked while it still exists.
    dir: tempfile::TempDir,
    _lock: File,
}

impl SocketDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Creates this run's directory (0700) and locks it, after removing dead
/// runs' ones.
pub fn create() -> std::io::Result<SocketDir> {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir =
        tempfile::Builder::new().prefix(PREFIX).permissions(std::fs::Permissions::from_mode(0o700)).tempdir_in(tmp)?;
    let lock = File::open(dir.path())?;
    if !try_lock(&lock) {
        return Err(std::io::Error::other(format!("cannot lock the new socket directory {}", dir.path().display())));
    }
    Ok(SocketDir { dir, _lock: lock })
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

/// A directory of ours holding an engine socket, whose lock nobody holds
/// (the lock is taken before the socket is bound), and on whose socket
/// nothing listens (a directory left by an older rpytest has no lock).
/// A directory without a socket may be one a run is creating right now,
/// and the daemon's runtime directory holds no `engine.sock`, so neither
/// is touched.
fn is_stale(dir: &Path) -> bool {
    // SAFETY: getuid has no preconditions.
    let ours = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == unsafe { libc::getuid() });
    let socket = dir.join(SOCKET_NAME);
    ours && socket.exists()
        && File::open(dir).is_ok_and(|handle| try_lock(&handle))
        && matches!(
            std::os::unix::net::UnixStream::connect(&socket),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
}

/// Takes the exclusive lock without waiting: false when another process
/// holds it.
fn try_lock(handle: &File) -> bool {
    // SAFETY: flock on a descriptor we own; the lock goes with `handle`.
    unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
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
        // Between bind and listen: refuses connections, but its run holds the lock.
        let binding = make("rpytest-binding");
        let binding_lock = File::open(&binding).unwrap();
        assert!(try_lock(&binding_lock));
        drop(UnixListener::bind(binding.join(SOCKET_NAME)).unwrap());
        let other = make("other-dead");
        drop(UnixListener::bind(other.join(SOCKET_NAME)).unwrap());
        remove_stale(tmp.path());
        assert!(!dead.exists(), "a socket nobody listens on: its run is gone");
        assert!(live.exists() && starting.exists() && other.exists());
        assert!(binding.exists(), "a locked directory belongs to a live run, whatever its socket says");
    }

    #[test]
    fn a_live_runs_directory_is_never_taken_for_dead() {
        let dir = create().unwrap();
        drop(UnixListener::bind(dir.path().join(SOCKET_NAME)).unwrap());
        remove_stale(dir.path().parent().unwrap());
        assert!(dir.path().exists(), "this run holds the lock");
    }

    #[test]
    fn the_directory_admits_only_its_owner() {
        let dir = create().unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
