//! The client's side: ask a running daemon for a warm zygote, fall back to
//! the embedded engine when there is none, and ask for the next one.
//!
//! Nothing here may make a run fail or hang: every wait has a limit, and a
//! daemon that is gone, wedged or of another build costs one line on stderr
//! and a cold (embedded) run.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fdpass;
use super::key::RunKey;
use super::paths;
use super::wire::{self, Reply, Request, RunStep, StatusReport, WireError};

/// How long a run waits for the daemon to accept it (it may wait for a
/// zygote that is still collecting, up to ten seconds).
/// `RPYTEST_DAEMON_TIMEOUT` (seconds) sets it: giving up early is safe, as
/// the daemon drops a run whose client has gone.
const RUN_REPLY_LIMIT: Duration = Duration::from_secs(15);
/// How long an accepted run waits for its zygote to take it (the daemon
/// gives the zygote 3 s).
const HANDOVER_REPLY_LIMIT: Duration = Duration::from_secs(5);
const SHORT_LIMIT: Duration = Duration::from_secs(3);
/// How long an auto-started daemon may take to listen.
const AUTOSTART_LIMIT: Duration = Duration::from_secs(3);

/// A run that may use the daemon, and how.
#[derive(Debug)]
pub struct DaemonRun {
    pub key: RunKey,
    /// pytest's whole command line (the key leaves the selection out).
    pub args: Vec<String>,
    /// What a warm session for this run is built with.
    pub build_args: Vec<String>,
    /// The warm session declined this run: the next one is built for it.
    declined: std::sync::atomic::AtomicBool,
    pub socket: PathBuf,
    /// `daemon = "auto"`: start one in the background when none runs.
    pub autostart: bool,
    /// pytest's `-v`: say why a run is cold.
    pub verbose: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon runs")]
    NotRunning,
    #[error("the daemon is gone (its socket {0} is stale)")]
    Gone(PathBuf),
    #[error("the daemon did not answer within {0:?} (wedged?)")]
    Wedged(Duration),
    #[error("the daemon accepts no more connections (wedged?)")]
    Full,
    #[error("cannot reach the daemon: {0}")]
    Io(std::io::Error),
    #[error("the daemon's reply was unreadable: {0}")]
    Wire(WireError),
    #[error("the daemon refused: {0}")]
    Refused(String),
}

/// A warm zygote the daemon handed to this run.
#[derive(Debug, Clone)]
pub struct WarmHandover {
    pub pid: u32,
    /// Other runs the daemon handed zygotes to that still run: a `-n auto`
    /// run takes its share of the CPUs.
    pub runs_beside: u32,
    /// The daemon's socket, to ask for the zygote's exit status.
    pub socket: PathBuf,
}

impl DaemonRun {
    /// The warm zygote the daemon handed over; else `None`, having said
    /// why when that is news (or with -v).
    pub fn take_warm_zygote(&self, engine_socket: &Path) -> Option<WarmHandover> {
        let request = Request::run(self.key.clone(), self.args.clone(), engine_socket.to_path_buf());
        match ask_to_run(&self.socket, &request) {
            Ok(Reply::Warm { pid, runs_beside, recollected, rebuilt }) => {
                crate::trace::event(|| format!("daemon: warm zygote {pid} took the run ({runs_beside} beside it)"));
                if !recollected.is_empty() {
                    crate::trace::event(|| format!("daemon: re-collected {recollected:?}"));
                }
                if let Some(reason) = rebuilt {
                    crate::trace::event(|| format!("daemon: rebuilt the warm session: {reason}"));
                    if self.verbose {
                        eprintln!("rpytest: daemon: rebuilt the warm session first: {reason}");
                    }
                }
                Some(WarmHandover { pid, runs_beside, socket: self.socket.clone() })
            }
            Ok(Reply::Cold { reason }) => self.cold(&reason),
            Ok(Reply::Declined { reason }) => {
                self.declined.store(true, std::sync::atomic::Ordering::Relaxed);
                self.cold(&reason)
            }
            Ok(other) => self.fallback(ClientError::Refused(format!("unexpected reply {other:?}"))),
            Err(e) => self.fallback(e),
        }
    }

    fn cold(&self, reason: &str) -> Option<WarmHandover> {
        crate::trace::event(|| format!("daemon: cold: {reason}"));
        if self.verbose {
            eprintln!("rpytest: daemon: running cold: {reason}");
        }
        None
    }

    fn fallback(&self, error: ClientError) -> Option<WarmHandover> {
        crate::trace::event(|| format!("daemon: {error}"));
        match error {
            ClientError::NotRunning if self.autostart => start_in_background(),
            ClientError::NotRunning => {}
            ClientError::Gone(socket) => {
                eprintln!("rpytest: the daemon is gone (stale socket {}); running embedded", socket.display());
                let _ = std::fs::remove_file(&socket);
                if self.autostart {
                    start_in_background();
                }
            }
            other => eprintln!("rpytest: {other}; running embedded"),
        }
        None
    }

    /// After the run: have a zygote ready for the next one.
    pub fn prewarm(&self) {
        let deadline = Instant::now() + if self.autostart { AUTOSTART_LIMIT } else { Duration::ZERO };
        loop {
            let request = Request::prewarm(
                self.key.clone(),
                self.build_args.clone(),
                self.declined.load(std::sync::atomic::Ordering::Relaxed),
            );
            match ask(&self.socket, &request, SHORT_LIMIT) {
                Err(ClientError::NotRunning | ClientError::Gone(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return,
            }
        }
    }
}

/// The limit for the daemon to accept a run: `RPYTEST_DAEMON_TIMEOUT`
/// seconds, else `RUN_REPLY_LIMIT`.
fn run_reply_limit() -> Duration {
    let from_env = std::env::var("RPYTEST_DAEMON_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok());
    from_env.filter(|secs| *secs > 0.0 && secs.is_finite()).map_or(RUN_REPLY_LIMIT, Duration::from_secs_f64)
}

/// A run's conversation: the request, and the client's stdout and stderr
/// only once the daemon has accepted it (see `wire::Request::Run`). Until
/// then the daemon holds nothing of ours, so giving up on it is free.
fn ask_to_run(socket: &Path, request: &Request) -> Result<Reply, ClientError> {
    let mut stream = connect(socket)?;
    match exchange(&mut stream, request, &[], run_reply_limit())? {
        Reply::Accepted => exchange(&mut stream, &RunStep::Streams, &[1, 2], HANDOVER_REPLY_LIMIT),
        other => Ok(other),
    }
}

/// Sends one request and reads the reply.
pub fn ask(socket: &Path, request: &Request, limit: Duration) -> Result<Reply, ClientError> {
    exchange(&mut connect(socket)?, request, &[], limit)
}

/// Sends one frame (with `fds`) on the connection and reads the reply.
fn exchange(
    stream: &mut UnixStream,
    message: &impl serde::Serialize,
    fds: &[i32],
    limit: Duration,
) -> Result<Reply, ClientError> {
    stream.set_read_timeout(Some(limit)).map_err(ClientError::Io)?;
    stream.set_write_timeout(Some(SHORT_LIMIT)).map_err(ClientError::Io)?;
    let frame = wire::encode(message);
    let sent = fdpass::send_with_fds(stream.as_raw_fd(), &frame, fds).map_err(ClientError::Io)?;
    stream.write_all(&frame[sent..]).map_err(ClientError::Io)?;
    match wire::read_blocking(stream, wire::MAX_REPLY) {
        Ok(Reply::Error { message }) => Err(ClientError::Refused(message)),
        Ok(reply) => Ok(reply),
        Err(WireError::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Err(ClientError::Wedged(limit))
        }
        Err(e) => Err(ClientError::Wire(e)),
    }
}

fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    if let Some(dir) = socket.parent() {
        if let Err(e) = paths::check_private(dir) {
            return match dir.exists() {
                true => Err(ClientError::Refused(e.to_string())),
                false => Err(ClientError::NotRunning),
            };
        }
    }
    super::connect::connect_without_waiting(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ClientError::NotRunning,
        std::io::ErrorKind::ConnectionRefused => ClientError::Gone(socket.to_path_buf()),
        std::io::ErrorKind::WouldBlock => ClientError::Full,
        _ => ClientError::Io(e),
    })
}

/// How the zygote `handover` gave this run exited: its exit code, or the
/// signal that killed it; neither when the daemon cannot tell (said in
/// the trace).
pub fn exit_status(handover: &WarmHandover) -> (Option<i32>, Option<i32>) {
    match ask(&handover.socket, &Request::exit_status(handover.pid), SHORT_LIMIT) {
        Ok(Reply::Exited { code, signal }) => {
            crate::trace::event(|| format!("daemon: zygote {} exited: code {code:?}, signal {signal:?}", handover.pid));
            (code, signal)
        }
        Ok(other) => {
            crate::trace::event(|| format!("daemon: unexpected reply {other:?} for the zygote's exit status"));
            (None, None)
        }
        Err(e) => {
            crate::trace::event(|| format!("daemon: no exit status for zygote {}: {e}", handover.pid));
            (None, None)
        }
    }
}

/// The socket a daemon started now would listen on (`paths`).
pub fn default_socket() -> PathBuf {
    paths::socket_path(&paths::runtime_dir())
}

/// The running daemon's status.
pub fn status(socket: &Path) -> Result<StatusReport, ClientError> {
    match ask(socket, &Request::status(), SHORT_LIMIT)? {
        Reply::Status(report) => Ok(report),
        other => Err(ClientError::Refused(format!("unexpected reply {other:?}"))),
    }
}

/// `daemon = "auto"`: `rpytest serve` in the background, detached from
/// this terminal and its streams, for the next run to find.
fn start_in_background() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(_) => eprintln!("rpytest: started a daemon in the background (daemon = \"auto\"); this run is cold"),
        Err(e) => eprintln!("rpytest: cannot start a daemon: {e}"),
    }
}

/// pytest flags whose run cannot take a warm zygote, and why: the zygote
/// reads the cache or needs the terminal while collecting. (`--ff`, `--nf`
/// and `--sw` only reorder or cut what was collected: a warm fork applies
/// them, `daemon::selection`.)
const COLD_FLAGS: &[(&str, &str)] = &[
    ("--pdb", "a debugger run starts its own zygote on this terminal"),
    ("--trace", "a debugger run starts its own zygote on this terminal"),
    ("--lf", "pytest reads its cache while collecting"),
    ("--last-failed", "pytest reads its cache while collecting"),
    ("--lfnf", "pytest reads its cache while collecting"),
    ("--last-failed-no-failures", "pytest reads its cache while collecting"),
    ("--cache-clear", "pytest clears its cache while configuring"),
];

/// Whether this run may take a warm zygote from a daemon (`None`: run
/// embedded; with -v, says why when the reason is the run itself).
pub fn plan(
    own: &crate::cli::OwnFlags,
    settings: &crate::config::Settings,
    python: &Path,
    cwd: &Path,
    pytest_args: &[String],
) -> Option<DaemonRun> {
    use crate::config::{DaemonMode, WorkerStart};
    if own.no_daemon || settings.daemon == DaemonMode::Off {
        return None;
    }
    let verbose = pytest_args.iter().any(|a| a == "--verbose" || (a.len() > 1 && a[1..].chars().all(|c| c == 'v')));
    let cold = |why: &str| {
        if verbose {
            eprintln!("rpytest: daemon: running cold: {why}");
        }
        None
    };
    let flag_reason = pytest_args
        .iter()
        .find_map(|arg| COLD_FLAGS.iter().find(|(flag, _)| arg.split('=').next() == Some(flag)).map(|(_, why)| *why));
    if let Some(why) = flag_reason {
        return cold(why);
    }
    if own.shard.is_some() || own.total_shards.is_some() || std::env::var_os("RPYTEST_SHARD").is_some() {
        return cold("sharding talks to the engine while collecting");
    }
    if own.worker_start.unwrap_or(settings.worker_start) == WorkerStart::Spawn {
        return cold("spawned workers collect for themselves");
    }
    let split = super::selection::split(pytest_args);
    let mut key = match RunKey::for_this_process(python, cwd, &split.key_args) {
        Ok(key) => key,
        Err(e) => return cold(&e.to_string()),
    };
    if !settings.shared_session_fixtures.is_empty() {
        // The warm zygote sets them up after the handover, as the run's
        // controller; the embedded engine passes them the same way.
        key.env.push(("RPYTEST_SHARED_FIXTURES".into(), settings.shared_session_fixtures.join(",")));
        key.env.sort();
    }
    if own.worker_start == Some(WorkerStart::Fork) {
        // As `Launcher::zygote` tells a cold zygote: fork past its threads.
        key.env.push(("RPYTEST_FORK_PAST_THREADS".into(), "1".into()));
        key.env.sort();
    }
    let socket = paths::socket_path(&paths::runtime_dir());
    Some(DaemonRun {
        key,
        args: pytest_args.to_vec(),
        build_args: split.build_args(),
        declined: std::sync::atomic::AtomicBool::new(false),
        socket,
        autostart: settings.daemon == DaemonMode::Auto,
        verbose,
    })
}
