//! `rpytest serve`: the daemon that keeps collected zygotes warm.
//!
//! One task per connection, one request per connection. A `run` request
//! takes the warm zygote for its key (after checking its dependencies) and,
//! once the client sends them, hands it the client's streams and engine
//! socket (`run.rs`); the client's engine then runs it as its own. `prewarm` starts a zygote for the next run. A
//! background poll discards zygotes whose dependencies changed and starts
//! their replacements, and ends an idle daemon.
//!
//! Every connection is checked for the peer's uid; a request that is too
//! large, malformed, of another protocol or build, or that never comes
//! gets an error reply and a closed connection, and the daemon carries on.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use super::fdpass;
use super::handed_over::HandedOver;
use super::memory;
use super::paths;
use super::wire::{self, Envelope, Reply, Request, StatusReport, WireError, ZygoteStatus, DAEMON_PROTOCOL_VERSION};
use crate::python::embed;
use slots::{Slot, SlotState};

mod memory_cap;
mod run;
mod slots;

/// A client has this long to send its whole request.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// How long an `exit_status` request waits for the daemon to reap the
/// zygote (the client's pidfd fires as it exits, just before).
const WAIT_FOR_REAPING: Duration = Duration::from_secs(2);

pub struct ServeOptions {
    pub runtime_dir: PathBuf,
    /// Zero: never end for idleness.
    pub idle_timeout: Duration,
    /// How often warm zygotes are checked in the background; zero: never.
    pub poll: Duration,
    /// `daemon_max_memory`: bytes the warm sessions may hold together
    /// (PSS); None: no cap but the count (the memory available is unknown).
    pub max_memory: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    RuntimeDir(#[from] paths::RuntimeDirError),
    #[error("a daemon already serves {0}")]
    AlreadyRunning(PathBuf),
    #[error("cannot listen on {0}: {1}")]
    Listen(PathBuf, std::io::Error),
    #[error("{0}")]
    Engine(#[from] crate::errors::EngineError),
}

struct Daemon {
    options: ServeOptions,
    socket: PathBuf,
    pyworker_dir: PathBuf,
    started: Instant,
    last_request: Cell<Instant>,
    slots: RefCell<HashMap<String, Slot>>,
    /// How long each slot's last build took (to know whether waiting for a
    /// rebuild beats a cold run).
    build_times: RefCell<HashMap<String, Duration>>,
    /// A refresh pass is going on (`slots.rs`: one at a time).
    refreshing: Cell<bool>,
    /// One spare process per key but its arguments (`warm_zygote::Spare`).
    spares: RefCell<HashMap<String, crate::daemon::spare::Spare>>,
    handed_over: RefCell<HandedOver>,
    evictions: RefCell<memory_cap::Evictions>,
    stop: Notify,
}

pub fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Listen(options.runtime_dir.clone(), e))?;
    tokio::task::LocalSet::new().block_on(&runtime, serve_until_stopped(options))
}

async fn serve_until_stopped(options: ServeOptions) -> Result<(), ServeError> {
    paths::ensure_private(&options.runtime_dir)?;
    let socket = paths::socket_path(&options.runtime_dir);
    let listener = listen(&socket)?;
    let daemon = Rc::new(Daemon {
        pyworker_dir: embed::install()?,
        socket: socket.clone(),
        options,
        started: Instant::now(),
        last_request: Cell::new(Instant::now()),
        slots: RefCell::new(HashMap::new()),
        build_times: RefCell::new(HashMap::new()),
        refreshing: Cell::new(false),
        spares: RefCell::new(HashMap::new()),
        handed_over: RefCell::new(HandedOver::default()),
        evictions: RefCell::new(memory_cap::Evictions::default()),
        stop: Notify::new(),
    });
    eprintln!("rpytest serve: pid {}, listening on {}", std::process::id(), socket.display());
    tokio::task::spawn_local(poll_loop(daemon.clone()));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ServeError::Listen(socket.clone(), e))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::task::spawn_local(serve_connection(daemon.clone(), stream));
                }
            }
            _ = daemon.stop.notified() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    daemon.discard_all();
    let _ = std::fs::remove_file(&socket);
    eprintln!("rpytest serve: stopped");
    Ok(())
}

/// Binds the socket, replacing a stale one but never a live daemon's (not
/// even a wedged one whose accept queue is full).
fn listen(socket: &Path) -> Result<UnixListener, ServeError> {
    if socket.exists() {
        match super::connect::connect_without_waiting(socket) {
            Ok(_) => return Err(ServeError::AlreadyRunning(socket.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(ServeError::AlreadyRunning(socket.to_path_buf()))
            }
            Err(_) => {
                let _ = std::fs::remove_file(socket);
            }
        }
    }
    UnixListener::bind(socket).map_err(|e| ServeError::Listen(socket.to_path_buf(), e))
}

async fn serve_connection(daemon: Rc<Daemon>, mut stream: UnixStream) {
    let reply = match stream.peer_cred() {
        Ok(cred) if cred.uid() == paths::uid() => {
            match tokio::time::timeout(REQUEST_LIMIT, read_request(&stream)).await {
                Ok(Ok((body, fds))) => {
                    daemon.last_request.set(Instant::now());
                    // No request carries descriptors: a run's come later (`run.rs`).
                    match fds.is_empty() {
                        true => daemon.answer(&body, &mut stream).await,
                        false => Reply::Error { message: format!("{} unexpected fds with the request", fds.len()) },
                    }
                }
                Ok(Err(e)) => Reply::Error { message: format!("bad request: {e}") },
                Err(_) => Reply::Error { message: format!("no request within {REQUEST_LIMIT:?}") },
            }
        }
        _ => Reply::Error { message: "refused: the daemon serves only its own user".into() },
    };
    if let Reply::Error { message } = &reply {
        eprintln!("rpytest serve: {message}; connection closed");
    }
    let _ = tokio::time::timeout(REQUEST_LIMIT, stream.write_all(&wire::encode(&reply))).await;
}

/// One frame from the client and the descriptors sent with it.
async fn read_request(stream: &UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>), WireError> {
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut needed = 4;
    while buf.len() < needed {
        stream.readable().await?;
        let raw = stream.as_raw_fd();
        let (n, more) = match stream.try_io(Interest::READABLE, || fdpass::recv_with_fds(raw, &mut chunk)) {
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(WireError::Truncated);
        }
        fds.extend(more);
        buf.extend_from_slice(&chunk[..n]);
        if needed == 4 && buf.len() >= 4 {
            needed = 4 + wire::body_len(buf[..4].try_into().unwrap(), wire::MAX_REQUEST)?;
        }
    }
    if buf.len() > needed {
        return Err(WireError::Malformed("bytes after the request".into()));
    }
    Ok((buf.split_off(4), fds))
}

impl Daemon {
    async fn answer(self: &Rc<Self>, body: &[u8], stream: &mut UnixStream) -> Reply {
        let envelope: Envelope = match wire::decode(body) {
            Ok(envelope) => envelope,
            Err(e) => return Reply::Error { message: format!("bad request: {e}") },
        };
        if envelope.protocol != DAEMON_PROTOCOL_VERSION {
            return Reply::Error {
                message: format!(
                    "the client speaks daemon protocol {}, this daemon {DAEMON_PROTOCOL_VERSION}",
                    envelope.protocol
                ),
            };
        }
        if envelope.needs_same_build() && envelope.build != wire::build_id() {
            return Reply::Error {
                message: format!(
                    "the daemon is rpytest {}, the client {}; restart it (`rpytest serve --stop`)",
                    wire::build_id(),
                    envelope.build
                ),
            };
        }
        match wire::decode::<Request>(body) {
            Ok(Request::Run { key, args, engine_socket, .. }) => self.take(key, &args, &engine_socket, stream).await,
            Ok(Request::Prewarm { key, build_args, replace, .. }) => {
                // Answered first: the client exits on the answer, and the
                // zygote's start (a process spawn) need not delay it.
                let daemon = self.clone();
                tokio::task::spawn_local(async move { daemon.prewarm(key, build_args, replace) });
                Reply::Ok
            }
            Ok(Request::ExitStatus { pid, .. }) => self.exit_status(pid).await,
            Ok(Request::Status { .. }) => Reply::Status(self.status()),
            Ok(Request::Stop { .. }) => {
                self.stop.notify_one();
                Reply::Ok
            }
            Err(e) => Reply::Error { message: format!("bad request: {e}") },
        }
    }

    /// How handed-over zygote `pid` exited, once the daemon has reaped it.
    async fn exit_status(&self, pid: u32) -> Reply {
        let deadline = Instant::now() + WAIT_FOR_REAPING;
        loop {
            {
                let runs = self.handed_over.borrow();
                if let Some(status) = runs.exit_status(pid) {
                    return Reply::Exited { code: status.code, signal: status.signal };
                }
                if !runs.is_running(pid) {
                    return Reply::Error { message: format!("pid {pid} is no zygote this daemon handed to a run") };
                }
            }
            if Instant::now() >= deadline {
                return Reply::Error { message: format!("the zygote {pid} has not ended within {WAIT_FOR_REAPING:?}") };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn idle(&self) -> bool {
        let limit = self.options.idle_timeout;
        !limit.is_zero() && self.last_request.get().elapsed() >= limit
    }

    fn status(&self) -> StatusReport {
        let slots = self.slots.borrow();
        let spares = self.spares.borrow();
        let zygotes: Vec<ZygoteStatus> =
            slots.values().map(slot_status).chain(spares.values().map(spare_status)).collect();
        let held = |z: &ZygoteStatus| z.pss.unwrap_or(0);
        let daemon = memory::footprint(std::process::id()).map_or(0, |f| f.pss);
        let sessions: u64 = zygotes.iter().map(held).sum();
        StatusReport {
            pid: std::process::id(),
            build: wire::build_id(),
            uptime_secs: self.started.elapsed().as_secs(),
            idle_timeout_secs: self.options.idle_timeout.as_secs(),
            socket: self.socket.clone(),
            memory: BTreeMap::from([
                ("daemon".to_string(), daemon),
                ("zygotes".to_string(), sessions),
                ("total".to_string(), daemon + sessions),
            ]),
            zygotes,
            max_memory: self.options.max_memory,
            evictions: self.evictions.borrow().status(),
        }
    }
}

/// One slot as `serve --status` shows it.
fn slot_status(slot: &Slot) -> ZygoteStatus {
    let (state, pid) = match &slot.state {
        SlotState::Collecting { pid, .. } => ("collecting".to_string(), Some(*pid)),
        SlotState::Warm(zygote) => ("warm".to_string(), Some(zygote.pid)),
        SlotState::Failed(why) => (format!("failed: {why}"), None),
        SlotState::TooLarge(why) => (format!("evicted: {why}"), None),
    };
    let footprint = pid.and_then(memory::footprint);
    ZygoteStatus {
        project: slot.key.cwd.clone(),
        args: slot.build_args.clone(),
        state,
        pid,
        pss: footprint.map(|f| f.pss),
        rss: footprint.map(|f| f.rss),
        pss_is_rss: footprint.is_some_and(|f| !f.exact),
        last_run_args: slot.last_run_args.clone(),
        idle_secs: Some(slot.last_used.elapsed().as_secs()),
    }
}

/// A spare interpreter, listed with the sessions (it holds memory too).
fn spare_status(spare: &crate::daemon::spare::Spare) -> ZygoteStatus {
    let footprint = memory::footprint(spare.pid);
    ZygoteStatus {
        project: spare.cwd.clone(),
        args: vec![],
        state: "spare (pytest configured up to its conftests)".into(),
        pid: Some(spare.pid),
        pss: footprint.map(|f| f.pss),
        rss: footprint.map(|f| f.rss),
        pss_is_rss: footprint.is_some_and(|f| !f.exact),
        last_run_args: None,
        idle_secs: None,
    }
}

/// How often the project's own files (under each session's directory) are
/// checked between full polls: an edit starts its refresh or rebuild within
/// this, so a run a second after the save finds it well under way. A few
/// hundred stats, a millisecond.
const PROJECT_TICK: Duration = Duration::from_millis(250);

async fn poll_loop(daemon: Rc<Daemon>) {
    let poll = daemon.options.poll;
    let tick = if poll.is_zero() { Duration::from_secs(1) } else { PROJECT_TICK.min(poll) };
    let mut last_poll = Instant::now();
    let mut last_memory_check = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if daemon.idle() {
            eprintln!("rpytest serve: idle for {:?}; stopping", daemon.options.idle_timeout);
            daemon.stop.notify_one();
            return;
        }
        if !poll.is_zero() && last_poll.elapsed() >= poll {
            last_poll = Instant::now();
            daemon.refresh(false);
        } else if !poll.is_zero() {
            daemon.refresh(true);
        }
        // Once a second, whatever `--poll` says: a session grows as it
        // serves (selections it computes, files it re-collects).
        if last_memory_check.elapsed() >= Duration::from_secs(1) {
            last_memory_check = Instant::now();
            daemon.enforce_memory_cap(None);
        }
    }
}
