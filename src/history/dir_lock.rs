//! An exclusive advisory lock on a directory, for read-merge-write cycles.
//!
//! The history and the durations file are rewritten by every run. Two runs
//! at the same time each read the file, add their tests and write it back
//! (temp file + rename): without a lock the last writer wins and the other
//! run's tests are lost. Holding this lock from the re-read to the rename
//! makes the merge see the other run's write.
//!
//! It locks the directory that holds the file (`flock` on the directory's
//! own descriptor), not a lock file beside it: the file is replaced by
//! rename, so its inode cannot carry the lock, and a `.lock` file would be
//! left in the user's project next to a committed `.test_durations`. The
//! lock is released when the `DirLock` is dropped, or when the process
//! dies, so a killed run never leaves it held.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held while alive; dropping it unlocks.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Waits for the exclusive lock on `dir`, creating the directory if needed.
    pub fn exclusive(dir: &Path) -> std::io::Result<DirLock> {
        std::fs::create_dir_all(dir)?;
        let file = File::open(dir)?;
        loop {
            // SAFETY: flock on a descriptor we own; it is closed with `file`.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(DirLock { _dir: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn try_lock(dir: &Path) -> bool {
        let file = File::open(dir).unwrap();
        // SAFETY: flock on a descriptor owned by this test.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }

    #[test]
    fn excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::exclusive(dir.path()).unwrap();
        assert!(!try_lock(dir.path()), "a second lock must wait while the first is held");
        drop(lock);
        assert!(try_lock(dir.path()), "dropping the lock releases it");
    }

    #[test]
    fn creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a").join("b");
        let _lock = DirLock::exclusive(&sub).unwrap();
        assert!(sub.is_dir());
    }
}
