//! A private `rpytest serve` for a test: its own runtime directory, no
//! background poll unless asked (`start_polling`; otherwise a stale zygote
//! is caught only at handover), and never left behind, stopped or not.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{rpytest_bin, run_command, RunResult};

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Child,
}

/// A runtime directory only we can enter, as the daemon insists.
pub fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("rpytest-rt-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

impl Daemon {
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_env(extra, &[])
    }

    /// `start`, with these variables in the daemon's environment.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with("0", extra, env)
    }

    /// `start`, checking its sessions' files every `poll` seconds (and
    /// their project's files four times a second), as users run it.
    pub fn start_polling(poll: &str) -> Daemon {
        Daemon::start_with(poll, &[], &[])
    }

    fn start_with(poll: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = private_dir();
        let child = Command::new(rpytest_bin())
            .args(["serve", "--poll", poll])
            .args(extra)
            .envs(env.iter().copied())
            .env("RPYTEST_RUNTIME_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let daemon = Daemon { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while daemon.status().code != 0 {
            assert!(Instant::now() < deadline, "the daemon did not come up: {}", daemon.status().dump());
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    pub fn runtime_dir(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("daemon.sock")
    }

    pub fn status(&self) -> RunResult {
        run_command(
            &rpytest_bin(),
            &["serve".into(), "--status".into()],
            self.dir.path(),
            &[("RPYTEST_RUNTIME_DIR", self.runtime_dir())],
        )
    }

    /// Waits until no zygote is still collecting. A change made while one
    /// collects may legitimately be part of what it read; the staleness
    /// check is only tested against zygotes that finished first.
    pub fn wait_settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status().stdout.contains(": collecting") {
            assert!(Instant::now() < deadline, "a zygote is still collecting: {}", self.status().dump());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none() && self.status().code == 0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A test may have stopped it; stopped, it could not hear `--stop`.
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = Command::new(rpytest_bin())
            .args(["serve", "--stop"])
            .env("RPYTEST_RUNTIME_DIR", self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resumes a stopped process when dropped, so a failing assertion never
/// leaves the daemon frozen.
pub struct Stopped(pub u32);

impl Stopped {
    pub fn stop(pid: u32) -> Stopped {
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}
