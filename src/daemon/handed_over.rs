//! The zygotes the daemon has handed to runs: which still run, and how the
//! ones that ended exited.
//!
//! A warm zygote is the daemon's child, not its client's, so only the
//! daemon can reap it and read its exit status. The client sees it end
//! through a pidfd and, when pytest's session reported no exit status (an
//! `os._exit` in `pytest_sessionfinish`), asks the daemon for the process's
//! own. The count of runs still going lets a `-n auto` run take its share
//! of the CPUs instead of all of them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long an ended run's exit status is kept for its client to ask.
const KEEP_EXITS: Duration = Duration::from_secs(300);

/// How a zygote process ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ExitStatus { code: status.code(), signal: status.signal() }
    }
}

#[derive(Debug, Default)]
pub struct HandedOver {
    running: HashSet<u32>,
    ended: HashMap<u32, (ExitStatus, Instant)>,
}

impl HandedOver {
    /// Zygote `pid` is being handed to a run.
    pub fn started(&mut self, pid: u32) {
        self.ended.remove(&pid);
        self.running.insert(pid);
    }

    /// Zygote `pid` ended (the daemon reaped it); its status is kept only
    /// if it had been handed to a run.
    pub fn ended(&mut self, pid: u32, status: ExitStatus) {
        self.ended.retain(|_, (_, at)| at.elapsed() < KEEP_EXITS);
        if self.running.remove(&pid) {
            self.ended.insert(pid, (status, Instant::now()));
        }
    }

    /// Runs whose zygote still runs.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn is_running(&self, pid: u32) -> bool {
        self.running.contains(&pid)
    }

    /// How handed-over zygote `pid` ended, if it did (recently).
    pub fn exit_status(&self, pid: u32) -> Option<ExitStatus> {
        self.ended.get(&pid).map(|(status, _)| *status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEVEN: ExitStatus = ExitStatus { code: Some(7), signal: None };

    #[test]
    fn only_handed_over_zygotes_are_counted_and_remembered() {
        let mut runs = HandedOver::default();
        runs.started(10);
        runs.started(11);
        assert_eq!(runs.running(), 2);
        runs.ended(10, SEVEN);
        runs.ended(99, SEVEN);
        assert_eq!((runs.running(), runs.is_running(10), runs.is_running(11)), (1, false, true));
        assert_eq!(runs.exit_status(10), Some(SEVEN));
        assert_eq!(runs.exit_status(99), None, "a zygote never handed over is not remembered");
        assert_eq!(runs.exit_status(11), None, "a running zygote has no status yet");
    }

    #[test]
    fn a_reused_pid_starts_afresh() {
        let mut runs = HandedOver::default();
        runs.started(10);
        runs.ended(10, SEVEN);
        runs.started(10);
        assert_eq!((runs.exit_status(10), runs.running()), (None, 1));
    }
}
