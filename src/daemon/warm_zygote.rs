//! The daemon's side of a pre-warmed zygote: start it, wait until it has
//! collected, and hand it to a run.
//!
//! The zygote runs with the client's interpreter, cwd, arguments and
//! environment (nothing of the daemon's own), its stdout and stderr going
//! to an unlinked capture file it can read back, and one end of a socket
//! pair on fd 3. Its Python half is `pyworker/rpytest_worker/warm.py`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use super::deps::Deps;
use super::fdpass;
use super::key::RunKey;
use super::wire::{self, WireError};
use crate::python::embed;

/// The longest a zygote may take to configure and collect.
const COLLECT_LIMIT: Duration = Duration::from_secs(300);
/// The longest a zygote may take to adopt a run once handed over (it
/// takes milliseconds). With the 10 s wait for a collecting zygote it stays
/// within the client's 15 s limit, so a client never gives up on a
/// handover that then happens.
const HANDOVER_LIMIT: Duration = Duration::from_secs(3);
/// Its `warm` message lists every dependency: allow large projects.
const MAX_ZYGOTE_FRAME: usize = 64 * 1024 * 1024;
/// The fd on which the zygote finds its end of the socket pair.
const LINK_FD: RawFd = 3;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromZygote {
    /// Collected; `started_ns`: when it began reading the suite.
    Warm {
        deps: Deps,
        started_ns: i64,
    },
    Taken,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToZygote<'a> {
    Handover { socket: &'a Path },
}

#[derive(Debug, thiserror::Error)]
pub enum ZygoteError {
    #[error("cannot start {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    #[error("the zygote ended before collection finished (pytest stopped early: a usage or collection-time exit; the cold run shows it)")]
    EndedEarly,
    #[error("the zygote did not finish collecting within {0:?}")]
    Slow(Duration),
    #[error("{0}")]
    Unsettled(String),
    #[error("the zygote did not take the run within {0:?}")]
    NoAnswer(Duration),
    #[error("talking to the zygote failed: {0}")]
    Wire(#[from] WireError),
}

/// A zygote that was started and is configuring and collecting.
pub struct Starting {
    pub pid: u32,
    link: UnixStream,
}

/// A zygote that has collected and waits for a run.
pub struct WarmZygote {
    pub pid: u32,
    link: UnixStream,
    pub deps: Deps,
}

/// Starts a zygote for `key`. The returned handle waits for its collection;
/// `on_exit` gets its pid and exit status once the daemon has reaped it.
pub fn start(
    key: &RunKey,
    pyworker_dir: &Path,
    on_exit: impl FnOnce(u32, std::process::ExitStatus) + 'static,
) -> Result<Starting, ZygoteError> {
    let spawn_error = |e| ZygoteError::Spawn(key.python.clone(), e);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(spawn_error)?;
    let mut cmd = command(key, pyworker_dir).map_err(spawn_error)?;
    let theirs_fd = theirs.as_raw_fd();
    // SAFETY: between fork and exec we only call async-signal-safe
    // dup2/fcntl/signal.
    unsafe {
        cmd.pre_exec(move || {
            // A daemon started with `&` or nohup ignores these; an embedded
            // zygote, started from a terminal, does not (and Python installs
            // its KeyboardInterrupt handler only for a SIGINT not ignored).
            for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
                libc::signal(signal, libc::SIG_DFL);
            }
            let ok = if theirs_fd == LINK_FD {
                libc::fcntl(LINK_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(theirs_fd, LINK_FD)
            };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_error)?;
    drop(theirs);
    let pid = child.id().unwrap_or(0);
    // The daemon is the parent: reap it whenever it ends.
    tokio::task::spawn_local(async move {
        if let Ok(status) = child.wait().await {
            on_exit(pid, status);
        }
    });
    ours.set_nonblocking(true).map_err(spawn_error)?;
    let link = UnixStream::from_std(ours).map_err(spawn_error)?;
    Ok(Starting { pid, link })
}

fn command(key: &RunKey, pyworker_dir: &Path) -> std::io::Result<tokio::process::Command> {
    let capture_out = tempfile::tempfile()?;
    let capture_err = if key.merged_output { capture_out.try_clone()? } else { tempfile::tempfile()? };
    let mut cmd = tokio::process::Command::new(&key.python);
    cmd.arg("-c")
        .arg(embed::bootstrap(pyworker_dir))
        .args(&key.args)
        .env_clear()
        .envs(key.env.iter().map(|(name, value)| (name, value)))
        .env_remove("RPYTEST_SHARDING")
        .env_remove("RPYTEST_SHARD_KEEP")
        .env("RPYTEST_ROLE", "zygote")
        .env("RPYTEST_WARM_FD", LINK_FD.to_string())
        .current_dir(&key.cwd)
        .stdin(Stdio::null())
        .stdout(capture_out)
        .stderr(capture_err)
        // Its own group: the client stops it and its workers with one killpg.
        .process_group(0);
    if let Some(columns) = key.terminal_columns {
        cmd.env("RPYTEST_WARM_TTY", columns.to_string());
    }
    Ok(cmd)
}

impl Starting {
    /// Waits until the zygote has collected and listed its dependencies.
    pub async fn collected(mut self) -> Result<WarmZygote, ZygoteError> {
        let message = match tokio::time::timeout(COLLECT_LIMIT, read_frame(&mut self.link)).await {
            Err(_) => return Err(ZygoteError::Slow(COLLECT_LIMIT)),
            Ok(Err(WireError::Truncated)) => return Err(ZygoteError::EndedEarly),
            Ok(result) => result?,
        };
        let FromZygote::Warm { deps, started_ns } = message else {
            return Err(WireError::Malformed("expected `warm` first".into()).into());
        };
        if let Some(reason) = deps.unsettled(started_ns) {
            return Err(ZygoteError::Unsettled(reason));
        }
        Ok(WarmZygote { pid: self.pid, link: self.link, deps })
    }
}

impl WarmZygote {
    /// Gives the zygote the client's stdout and stderr and its engine's
    /// socket; returns once the zygote has adopted them.
    pub async fn hand_over(mut self, engine_socket: &Path, client_streams: &[OwnedFd]) -> Result<u32, ZygoteError> {
        let frame = wire::encode(&ToZygote::Handover { socket: engine_socket });
        let fds: Vec<RawFd> = client_streams.iter().map(|fd| fd.as_raw_fd()).collect();
        let sent = loop {
            self.link.writable().await.map_err(WireError::Io)?;
            let raw = self.link.as_raw_fd();
            match self.link.try_io(Interest::WRITABLE, || fdpass::send_with_fds(raw, &frame, &fds)) {
                Ok(sent) => break sent,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(WireError::Io(e).into()),
            }
        };
        self.link.write_all(&frame[sent..]).await.map_err(WireError::Io)?;
        match tokio::time::timeout(HANDOVER_LIMIT, read_frame(&mut self.link)).await {
            Ok(Ok(FromZygote::Taken)) => Ok(self.pid),
            Ok(Ok(other)) => Err(WireError::Malformed(format!("expected `taken`, got {other:?}")).into()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ZygoteError::NoAnswer(HANDOVER_LIMIT)),
        }
    }
}

/// Ends a zygote and everything it forked (its process group).
pub fn kill(pid: u32) {
    if pid > 0 {
        // SAFETY: a plain syscall on a process group we created.
        unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
    }
}

/// Whether the process still exists (the daemon reaps its zygotes).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks existence.
    pid > 0 && unsafe { libc::kill(pid as i32, 0) } == 0
}

async fn read_frame(link: &mut UnixStream) -> Result<FromZygote, WireError> {
    let mut header = [0u8; 4];
    link.read_exact(&mut header).await.map_err(eof_is_truncation)?;
    let mut body = vec![0u8; wire::body_len(header, MAX_ZYGOTE_FRAME)?];
    link.read_exact(&mut body).await.map_err(eof_is_truncation)?;
    wire::decode(&body)
}

fn eof_is_truncation(e: std::io::Error) -> WireError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Truncated,
        _ => WireError::Io(e),
    }
}

#[cfg(test)]
mod golden {
    use super::FromZygote;

    /// The warm zygote's messages to the daemon, as Python writes them.
    #[test]
    fn the_daemon_decodes_every_message_a_warm_zygote_sends() {
        let frames = crate::protocol::golden::python_frames("daemon-samples");
        let kinds: Vec<&str> = frames
            .iter()
            .map(|frame| match rmp_serde::from_slice::<FromZygote>(frame) {
                Ok(FromZygote::Warm { .. }) => "warm",
                Ok(FromZygote::Taken) => "taken",
                Err(e) => panic!("the daemon cannot decode a warm zygote's message: {e}"),
            })
            .collect();
        assert_eq!(kinds, ["warm", "taken"]);
    }
}
