//! The daemon's side of a warm session (a checkpoint): start it, wait until
//! it has collected, ask whether it can serve a run, and hand runs to it.
//!
//! The checkpoint runs with the client's interpreter, cwd, arguments and
//! environment (nothing of the daemon's own), its stdout and stderr going
//! to an unlinked capture file it can read back, and one end of a socket
//! pair on fd 3. It serves many runs, each in a fork of its own, and tells
//! the daemon when each ends. Its Python half is
//! `pyworker/rpytest_worker/warm.py` and `checkpoint.py`.
//!
//! Runs may be handed over side by side: one exchange (`serve` then
//! `verdict`, `handover` then `taken`) at a time goes over the link, while a
//! reader task passes the `ended` messages on as they come. The messages
//! themselves are in `src/protocol/warm.rs`.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, Mutex};

use super::handed_over::ExitStatus;

use super::fdpass;
use super::key::RunKey;
use super::wire::{self, WireError};
use crate::protocol::warm::{Deps, FromWarmZygote, ToWarmZygote};
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

/// Told each run's pid as its fork takes it (`None`) and when it ends
/// (its exit status), in that order: the reader task sees both messages.
pub type OnRunEnded = Rc<dyn Fn(u32, Option<ExitStatus>)>;

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
    #[error("the warm session did not answer within {0:?}")]
    NoAnswer(Duration),
    #[error("the warm session has ended")]
    Gone,
    #[error("the warm session declined the run at its handover")]
    DeclinedLate,
    #[error("{0}")]
    StaleSpare(String),
    #[error("talking to the zygote failed: {0}")]
    Wire(#[from] WireError),
}

/// A zygote that was started and is configuring and collecting.
pub struct Starting {
    pub pid: u32,
    link: UnixStream,
    on_run_ended: OnRunEnded,
    /// A spare's arguments, sent before waiting for its collection.
    build: Option<Vec<String>>,
}

/// A checkpoint that has collected and serves runs.
pub struct WarmZygote {
    pub pid: u32,
    deps: RefCell<Deps>,
    exchange: Mutex<Exchange>,
}

/// One question and its answer at a time.
struct Exchange {
    writer: OwnedWriteHalf,
    answers: mpsc::UnboundedReceiver<FromWarmZygote>,
}

/// Starts a checkpoint for `key`, built with `args`. The returned handle
/// waits for its collection; `on_run_ended` hears of each run's end.
pub fn start(
    key: &RunKey,
    args: &[String],
    pyworker_dir: &Path,
    on_run_ended: OnRunEnded,
) -> Result<Starting, ZygoteError> {
    let (pid, link) = spawn(key, args, false, pyworker_dir)?;
    Ok(Starting::new(pid, link, on_run_ended, None))
}

/// Starts the zygote's process with `args`; a `spare` stops before the
/// conftests and waits to be told to go on (`spare.rs`).
pub(super) fn spawn(
    key: &RunKey,
    args: &[String],
    spare: bool,
    pyworker_dir: &Path,
) -> Result<(u32, UnixStream), ZygoteError> {
    let spawn_error = |e| ZygoteError::Spawn(key.python.clone(), e);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(spawn_error)?;
    let mut cmd = command(key, args, spare, pyworker_dir).map_err(spawn_error)?;
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
        let _ = child.wait().await;
    });
    ours.set_nonblocking(true).map_err(spawn_error)?;
    let link = UnixStream::from_std(ours).map_err(spawn_error)?;
    Ok((pid, link))
}

fn command(
    key: &RunKey,
    args: &[String],
    spare: bool,
    pyworker_dir: &Path,
) -> std::io::Result<tokio::process::Command> {
    let capture_out = tempfile::tempfile()?;
    let capture_err = if key.merged_output { capture_out.try_clone()? } else { tempfile::tempfile()? };
    let mut cmd = tokio::process::Command::new(&key.python);
    cmd.arg("-c")
        .arg(embed::bootstrap(pyworker_dir))
        .args(args)
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
    if spare {
        cmd.env("RPYTEST_WARM_SPARE", "1");
    }
    Ok(cmd)
}

impl Starting {
    /// A spawned zygote; `build`: a spare's arguments, sent first.
    pub(super) fn new(pid: u32, link: UnixStream, on_run_ended: OnRunEnded, build: Option<Vec<String>>) -> Starting {
        Starting { pid, link, on_run_ended, build }
    }

    /// Waits until the zygote has collected and listed its dependencies.
    pub async fn collected(mut self) -> Result<WarmZygote, ZygoteError> {
        if let Some(args) = self.build.take() {
            self.link.write_all(&wire::encode(&ToWarmZygote::Build { args: &args })).await.map_err(WireError::Io)?;
        }
        let message = match tokio::time::timeout(COLLECT_LIMIT, read_frame(&mut self.link)).await {
            Err(_) => return Err(ZygoteError::Slow(COLLECT_LIMIT)),
            Ok(Err(WireError::Truncated)) => return Err(ZygoteError::EndedEarly),
            Ok(result) => result?,
        };
        if let FromWarmZygote::Stale { reason } = message {
            return Err(ZygoteError::StaleSpare(reason));
        }
        let FromWarmZygote::Warm { deps, started_ns } = message else {
            return Err(WireError::Malformed("expected `warm` first".into()).into());
        };
        if let Some(reason) = deps.unsettled(started_ns) {
            return Err(ZygoteError::Unsettled(reason));
        }
        let (mut reader, writer) = self.link.into_split();
        let (answer, answers) = mpsc::unbounded_channel();
        let on_run_ended = self.on_run_ended;
        tokio::task::spawn_local(async move {
            while let Ok(message) = read_frame(&mut reader).await {
                match message {
                    FromWarmZygote::Ended { pid, exit_code, signal } => {
                        on_run_ended(pid, Some(ExitStatus { code: exit_code, signal }))
                    }
                    other => {
                        if let FromWarmZygote::Taken { pid } = other {
                            on_run_ended(pid, None);
                        }
                        let _ = answer.send(other);
                    }
                }
            }
        });
        Ok(WarmZygote { pid: self.pid, deps: RefCell::new(deps), exchange: Mutex::new(Exchange { writer, answers }) })
    }
}

impl WarmZygote {
    /// Brings the session up to date with its files: nothing when none
    /// changed; else the checkpoint re-collects what changed in place and
    /// says which test files it collected again. `Err`: why a new session
    /// must be built instead.
    pub async fn refresh(&self) -> Result<Vec<PathBuf>, String> {
        let mut exchange = self.exchange.lock().await;
        let changes = self.deps.borrow().changes();
        if changes.is_empty() {
            return Ok(vec![]);
        }
        tokio::time::sleep(changes.settling_time()).await;
        let frame = ToWarmZygote::Refresh { files: &changes.files, dirs: &changes.dirs };
        exchange.writer.write_all(&wire::encode(&frame)).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(COLLECT_LIMIT, exchange.answers.recv()).await {
            Ok(Some(FromWarmZygote::Refreshed { deps, started_ns, recollected })) => {
                if let Some(reason) = deps.unsettled(started_ns) {
                    return Err(reason);
                }
                *self.deps.borrow_mut() = deps;
                Ok(recollected)
            }
            Ok(Some(FromWarmZygote::Stale { reason })) => Err(reason),
            Ok(Some(other)) => Err(format!("expected `refreshed`, got {other:?}")),
            Ok(None) => Err(ZygoteError::Gone.to_string()),
            Err(_) => Err(ZygoteError::Slow(COLLECT_LIMIT).to_string()),
        }
    }

    /// Whether a file under `dir` it depends on changed (a quick look; the
    /// refresh checks everything).
    pub fn project_changed(&self, dir: &Path) -> bool {
        self.deps.borrow().files.iter().any(|(path, then)| path.starts_with(dir) && super::deps::stat(path) != *then)
    }

    /// Whether the checkpoint can serve a run of `args`: `None`, or why not.
    pub async fn verdict(&self, args: &[String]) -> Result<Option<String>, ZygoteError> {
        let mut exchange = self.exchange.lock().await;
        exchange.writer.write_all(&wire::encode(&ToWarmZygote::Serve { args })).await.map_err(WireError::Io)?;
        match exchange.answer().await? {
            FromWarmZygote::Verdict { reason } => Ok(reason),
            other => Err(WireError::Malformed(format!("expected `verdict`, got {other:?}")).into()),
        }
    }

    /// Gives the checkpoint the client's stdout and stderr, its engine's
    /// socket and its arguments; returns the pid of the fork that took them.
    pub async fn hand_over(
        &self,
        engine_socket: &Path,
        args: &[String],
        client_streams: &[OwnedFd],
    ) -> Result<u32, ZygoteError> {
        let mut exchange = self.exchange.lock().await;
        let frame = wire::encode(&ToWarmZygote::Handover { socket: engine_socket, args });
        let fds: Vec<RawFd> = client_streams.iter().map(|fd| fd.as_raw_fd()).collect();
        let link: &UnixStream = exchange.writer.as_ref();
        let sent = loop {
            link.writable().await.map_err(WireError::Io)?;
            let raw = link.as_raw_fd();
            match link.try_io(Interest::WRITABLE, || fdpass::send_with_fds(raw, &frame, &fds)) {
                Ok(sent) => break sent,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(WireError::Io(e).into()),
            }
        };
        exchange.writer.write_all(&frame[sent..]).await.map_err(WireError::Io)?;
        match exchange.answer().await? {
            FromWarmZygote::Taken { pid: 0 } => Err(ZygoteError::DeclinedLate),
            FromWarmZygote::Taken { pid } => Ok(pid),
            other => Err(WireError::Malformed(format!("expected `taken`, got {other:?}")).into()),
        }
    }

    /// Serve no more: the checkpoint exits once its runs have ended (their
    /// ends are still reported).
    pub async fn retire(&self) {
        let mut exchange = self.exchange.lock().await;
        let _ = exchange.writer.write_all(&wire::encode(&ToWarmZygote::Retire)).await;
    }
}

impl Exchange {
    async fn answer(&mut self) -> Result<FromWarmZygote, ZygoteError> {
        match tokio::time::timeout(HANDOVER_LIMIT, self.answers.recv()).await {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(ZygoteError::Gone),
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

async fn read_frame(link: &mut (impl AsyncRead + Unpin)) -> Result<FromWarmZygote, WireError> {
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
