//! How a Python process ended, in words a user can act on.
//!
//! A crashed or stopped worker's test is failed with the cause (the signal
//! by name, the exit code, or the time limit it passed) and the tail of
//! what the worker wrote to its fault log: faulthandler's dump of every
//! thread's stack on a fatal signal, or on the engine's SIGUSR1 before a
//! timeout kill. Workers write that log to `gw<N>-<pid>.stderr` in the run's
//! private socket directory (see `worker.py`); this module names the file,
//! reads its tail, and words the cause.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The most of a fault log attached to a failure.
const TAIL_BYTES: u64 = 16 * 1024;
const TAIL_LINES: usize = 80;

/// "exited with code 3" / "killed by signal 11 (SIGSEGV)".
pub fn describe_exit(exit_code: Option<i32>, signal: Option<i32>) -> String {
    match (exit_code, signal) {
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "ended for an unknown reason".to_string(),
    }
}

/// The conventional name of a signal number (Linux numbering).
pub fn signal_name(sig: i32) -> &'static str {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES.iter().find(|(n, _)| *n == sig).map_or("unknown signal", |(_, name)| name)
}

/// Where worker `worker` (process `pid`) writes its fault log.
pub fn fault_log(socket: &Path, worker: usize, pid: u32) -> PathBuf {
    socket.with_file_name(format!("gw{worker}-{pid}.stderr"))
}

/// The last lines of a fault log, or `None` when it is missing or empty.
pub fn tail(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.len().saturating_sub(TAIL_LINES);
    let kept = lines[cut..].join("\n");
    let truncated = start > 0 || cut > 0;
    let kept = kept.trim_end();
    match (kept.is_empty(), truncated) {
        (true, _) => None,
        (false, true) => Some(format!("[... earlier output cut ...]\n{kept}")),
        (false, false) => Some(kept.to_string()),
    }
}

/// Reads and removes a fault log.
pub fn take_tail(path: &Path) -> Option<String> {
    let text = tail(path);
    let _ = std::fs::remove_file(path);
    text
}

/// A worker's failure text: the one-line cause, then its fault log's tail.
pub fn failure_text(message: &str, worker: usize, log: Option<&str>) -> String {
    match log {
        Some(log) => format!("{message}\n\nfault log of worker gw{worker} (faulthandler, last lines):\n{log}"),
        None => message.to_string(),
    }
}

/// How many processes the kernel's OOM killer has killed in this process's
/// memory cgroup (and below it), if the cgroup says: `oom_kill` in
/// `memory.events` (cgroup v2) or `memory.oom_control` (v1). A worker
/// killed by SIGKILL while this count went up was most likely its victim.
pub fn oom_kills() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let file = match controllers {
            "" => format!("/sys/fs/cgroup{path}/memory.events"),
            c if c.split(',').any(|c| c == "memory") => format!("/sys/fs/cgroup/memory{path}/memory.oom_control"),
            _ => continue,
        };
        if let Some(count) = std::fs::read_to_string(file).ok().and_then(|text| parse_oom_kills(&text)) {
            return Some(count);
        }
    }
    None
}

/// The tail of the fault log of `worker`'s process, if it wrote one.
pub fn fault_log_tail(socket: &Path, worker: usize, process: Option<u32>) -> Option<String> {
    process.and_then(|pid| take_tail(&fault_log(socket, worker, pid)))
}

/// Names a worker's end, and a SIGKILL we did not send while the memory
/// cgroup counted an OOM kill as the OOM killer's.
pub struct ExitNamer {
    oom_kills: Option<u64>,
}

impl Default for ExitNamer {
    fn default() -> Self {
        ExitNamer { oom_kills: oom_kills() }
    }
}

impl ExitNamer {
    pub fn cause(&mut self, exit_code: Option<i32>, signal: Option<i32>, stopped_by_us: bool) -> String {
        let cause = describe_exit(exit_code, signal);
        if signal != Some(libc::SIGKILL) || stopped_by_us {
            return cause;
        }
        let (before, now) = (self.oom_kills, oom_kills());
        self.oom_kills = now;
        match now > before {
            true => format!("{cause}: killed by the kernel's OOM killer (its memory cgroup counted an oom_kill)"),
            false => cause,
        }
    }
}

fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
}

/// `--max-worker-restart`: how many lost workers (crashes and timeouts)
/// are replaced before the run gives up, counted as xdist counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    lost: usize,
    max: usize,
}

impl RestartBudget {
    /// `max` from the flag, else xdist's default: 4 x the worker count.
    pub fn new(max: Option<u32>, workers: usize) -> Self {
        RestartBudget { lost: 0, max: max.map_or(4 * workers, |n| n as usize) }
    }

    /// One more worker was lost: `None` while it may be replaced, else the
    /// banner that ends the run (xdist's wording).
    pub fn spend(&mut self, worker: usize) -> Option<String> {
        self.lost += 1;
        match (self.lost > self.max, self.max) {
            (false, _) => None,
            (true, 0) => Some(format!("worker gw{worker} crashed and worker restarting disabled")),
            (true, max) => Some(format!("maximum crashed workers reached: {max}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counts_from_either_cgroup_version() {
        assert_eq!(parse_oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n"), Some(2));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n"), Some(5));
        assert_eq!(parse_oom_kills("nothing here\n"), None);
    }

    #[test]
    fn the_restart_budget_follows_xdist() {
        let mut budget = RestartBudget::new(None, 2);
        assert!((0..8).all(|_| budget.spend(0).is_none()));
        assert_eq!(budget.spend(1).as_deref(), Some("maximum crashed workers reached: 8"));
        let mut none = RestartBudget::new(Some(0), 4);
        assert_eq!(none.spend(3).as_deref(), Some("worker gw3 crashed and worker restarting disabled"));
    }

    #[test]
    fn signals_by_name() {
        assert_eq!(describe_exit(None, Some(11)), "killed by signal 11 (SIGSEGV)");
        assert_eq!(describe_exit(None, Some(6)), "killed by signal 6 (SIGABRT)");
        assert_eq!(describe_exit(None, Some(9)), "killed by signal 9 (SIGKILL)");
        assert_eq!(describe_exit(Some(3), None), "exited with code 3");
        assert_eq!(describe_exit(None, None), "ended for an unknown reason");
        assert_eq!(signal_name(64), "unknown signal");
    }

    #[test]
    fn tail_keeps_the_last_lines_and_says_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = fault_log(&dir.path().join("engine.sock"), 3, 42);
        assert!(path.ends_with("gw3-42.stderr"));
        assert_eq!(tail(&path), None);
        std::fs::write(&path, "").unwrap();
        assert_eq!(tail(&path), None);
        std::fs::write(&path, "Fatal Python error: Segmentation fault\n  File \"t.py\", line 3\n").unwrap();
        assert_eq!(tail(&path).as_deref(), Some("Fatal Python error: Segmentation fault\n  File \"t.py\", line 3"));
        let long: String = (0..500).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, long).unwrap();
        let cut = take_tail(&path).unwrap();
        assert!(cut.starts_with("[... earlier output cut ...]") && cut.ends_with("line 499"), "{cut}");
        assert_eq!(cut.lines().count(), TAIL_LINES + 1);
        assert!(!path.exists());
    }

    #[test]
    fn failure_text_appends_the_log() {
        assert_eq!(failure_text("boom", 0, None), "boom");
        let text = failure_text("boom", 1, Some("stack"));
        assert!(text.starts_with("boom\n\n") && text.contains("gw1") && text.ends_with("stack"), "{text}");
    }
}
