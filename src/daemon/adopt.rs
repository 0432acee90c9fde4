//! Watching a zygote that is not our child.
//!
//! A warm zygote is the daemon's child, so the client cannot `wait` for it;
//! it learns of its exit from a pidfd becoming readable (Linux 5.3+), or,
//! without pidfds, by polling that the pid is still there.

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// Resolves when process `pid` has exited.
pub async fn exited(pid: u32) {
    match pidfd(pid) {
        // SAFETY: the AsyncFd owns the pidfd, which lives as long as it does.
        Some(fd) => match unsafe { AsyncFd::register(fd) } {
            Ok(fd) => {
                let _ = fd.readable().await;
            }
            Err(_) => poll_until_gone(pid).await,
        },
        None => poll_until_gone(pid).await,
    }
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a fresh descriptor we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

async fn poll_until_gone(pid: u32) {
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
