//! Each rerun is a child `rpytest` with the user's arguments, exactly as
//! if typed again, so it gets everything a run gets: the daemon's warm
//! session, the history, rendering and Ctrl-C teardown. This module builds
//! its command line, starts it in its own process group and stops it; and
//! starts a daemon for the watch when none runs.
//!
//! The child's stdout and stderr are the watch's (on a terminal it draws
//! its own progress); its stdin is empty, since the watch reads the keys.
//! The process group is how Ctrl-C reaches it: the terminal's own Ctrl-C
//! is a key to the watch (raw mode), which sends SIGINT to the group.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::state::{Filters, RunKind};
use crate::report::RESULT_FILE_VAR;

/// The child's arguments: the user's (without `--watch`, and without an
/// `--affected` of their own, which the kind decides), the filters (`p`:
/// one more path; `t`: `-k`, which wins over the user's own as the last
/// `-k` does in pytest) and the kind's flag.
pub fn child_args(user_args: &[String], filters: &Filters, kind: RunKind) -> Vec<String> {
    let decided_here = |arg: &String| arg == "--watch" || arg == "--affected";
    let mut args: Vec<String> = user_args.iter().filter(|a| !decided_here(a)).cloned().collect();
    if let Some(path) = &filters.path {
        args.push(path.clone());
    }
    if let Some(name) = &filters.name {
        args.extend(["-k".to_string(), name.clone()]);
    }
    match kind {
        RunKind::Affected => args.push("--affected".into()),
        RunKind::All => {}
        RunKind::Failed => args.push("--lf".into()),
    }
    args
}

/// A child run going on.
pub struct Run {
    pub pid: i32,
    pub started: Instant,
}

/// Starts the child; `ended` gets its exit status from a waiting thread.
pub fn start(
    args: &[String],
    result_file: &Path,
    ended: impl FnOnce(ExitStatus) + Send + 'static,
) -> std::io::Result<Run> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(args).env(RESULT_FILE_VAR, result_file).stdin(Stdio::null()).process_group(0);
    die_with_parent(&mut command, libc::SIGTERM);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            ended(status);
        }
    });
    Ok(Run { pid, started })
}

/// A watch killed outright (SIGKILL) cannot stop its children: the
/// kernel sends them `signal` instead. Set from the main thread only: the
/// signal follows the death of the thread that started the child.
fn die_with_parent(command: &mut Command, signal: i32) {
    // SAFETY: prctl is async-signal-safe and touches only this process.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong);
            Ok(())
        });
    }
}

/// Signals the child's process group (the child and whatever it started
/// in its group: an embedded run's zygote and workers).
pub fn signal_group(pid: i32, signal: i32) {
    // SAFETY: a plain syscall on the process group the watch started.
    unsafe { libc::killpg(pid, signal) };
}

/// A daemon the watch started because none ran; stopped when the watch ends.
pub struct OwnDaemon {
    child: Option<std::process::Child>,
}

/// How the watch's runs reach a daemon.
pub enum DaemonUse {
    /// One already ran: used, and left running.
    Running,
    /// None ran: this one was started, and ends with the watch.
    Started(PathBuf),
    /// It could not be started: the runs are cold.
    Failed(String),
    /// `--no-daemon` or `daemon = "off"`: every run starts Python afresh.
    Off,
}

impl OwnDaemon {
    /// The daemon for the watch's runs: the running one, else a new one.
    pub fn ensure(off: bool) -> (OwnDaemon, DaemonUse) {
        let none = OwnDaemon { child: None };
        if off {
            return (none, DaemonUse::Off);
        }
        let socket = crate::daemon::client::default_socket();
        if crate::daemon::client::status(&socket).is_ok() {
            return (none, DaemonUse::Running);
        }
        let mut command = match std::env::current_exe() {
            Ok(exe) => Command::new(exe),
            Err(e) => return (none, DaemonUse::Failed(e.to_string())),
        };
        command.arg("serve").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        die_with_parent(&mut command, libc::SIGTERM);
        let mut own = match command.spawn() {
            Ok(child) => OwnDaemon { child: Some(child) },
            Err(e) => return (none, DaemonUse::Failed(e.to_string())),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::daemon::client::status(&socket).is_err() {
            let exited = own.child.as_mut().is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
            if exited || Instant::now() > deadline {
                own.stop();
                return (own, DaemonUse::Failed(format!("it did not answer on {}", socket.display())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (own, DaemonUse::Started(socket))
    }

    /// Stops the daemon the watch started (SIGTERM: it ends its sessions
    /// and removes its socket), killing it if it does not go in 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal_group(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(child.id() as i32, libc::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_rerun_is_the_users_command_line_with_the_filters_and_the_kinds_flag() {
        let user = strings(&["-q", "--watch", "tests", "-n", "2"]);
        let none = Filters::default();
        assert_eq!(child_args(&user, &none, RunKind::All), strings(&["-q", "tests", "-n", "2"]));
        let affected = child_args(&user, &none, RunKind::Affected);
        assert_eq!(affected.last().map(String::as_str), Some("--affected"));
        assert_eq!(child_args(&user, &none, RunKind::Failed), strings(&["-q", "tests", "-n", "2", "--lf"]));
        // `a` runs all even when the user asked for --affected.
        let asked = strings(&["--watch", "--affected", "-q"]);
        let all = child_args(&asked, &none, RunKind::All);
        assert!(!all.contains(&"--affected".to_string()));
        let affected = child_args(&asked, &none, RunKind::Affected);
        assert_eq!(affected.iter().filter(|a| *a == "--affected").count(), 1);
        let filters = Filters { path: Some("tests/unit".into()), name: Some("add or sub".into()) };
        assert_eq!(
            child_args(&user, &filters, RunKind::All),
            strings(&["-q", "tests", "-n", "2", "tests/unit", "-k", "add or sub"])
        );
    }
}
