//! What the daemon and its warm sessions cost in memory, for
//! `daemon_max_memory` and `serve --status`.
//!
//! A warm session is a checkpoint process that every run of its project
//! forks from, so most of its pages are shared copy-on-write with the runs
//! (and its libraries with every other Python). RSS counts each shared page
//! in full in every process that maps it, so summing RSS overstates what
//! the sessions hold. PSS (proportional set size) splits a shared page
//! between the processes that share it; the sum of PSS is what they cost
//! together. It comes from `/proc/<pid>/smaps_rollup`; where that cannot be
//! read (an old kernel, no permission) the RSS stands in, and says so.

use sysinfo::{Pid, ProcessesToUpdate, System};

/// One process's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// PSS, or the RSS when PSS could not be read.
    pub pss: u64,
    pub rss: u64,
    /// False: `pss` is the RSS (smaps_rollup was unreadable).
    pub exact: bool,
}

/// `pid`'s footprint; None when the process is gone.
pub fn footprint(pid: u32) -> Option<Footprint> {
    match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok().and_then(|text| rollup(&text)) {
        Some((pss, rss)) => Some(Footprint { pss, rss, exact: true }),
        None => resident(pid).map(|rss| Footprint { pss: rss, rss, exact: false }),
    }
}

/// (PSS, RSS) in bytes from the text of `/proc/<pid>/smaps_rollup`.
fn rollup(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        let line = text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?;
        let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("Pss")?, field("Rss")?))
}

/// `pid`'s resident set size, None when it is gone.
fn resident(pid: u32) -> Option<u64> {
    let mut system = System::new();
    let pids = [Pid::from_u32(pid)];
    system.refresh_processes(ProcessesToUpdate::Some(&pids), true);
    system.process(pids[0]).map(|p| p.memory())
}

/// A size for people: "143 MiB", "1.5 GiB".
pub fn human(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    match mib {
        m if m >= 1024.0 => format!("{:.1} GiB", m / 1024.0),
        m if m >= 10.0 => format!("{m:.0} MiB"),
        m => format!("{m:.1} MiB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pss_and_rss_from_smaps_rollup() {
        let text = "55d0c0a3e000-7ffd5b1fd000 ---p 00000000 00:00 0          [rollup]\n\
                    Rss:               46176 kB\nPss:               21420 kB\nPss_Anon:          12000 kB\n\
                    Shared_Clean:      30000 kB\n";
        assert_eq!(rollup(text), Some((21420 * 1024, 46176 * 1024)));
        assert_eq!(rollup("Rss: 12 kB\n"), None, "no Pss line: fall back");
    }

    #[test]
    fn measures_this_process_with_pss_no_larger_than_rss() {
        let me = footprint(std::process::id()).expect("this process exists");
        assert!(me.rss > 0 && me.pss <= me.rss, "{me:?}");
        assert_eq!(footprint(u32::MAX >> 1), None, "no such process");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(143 << 20), "143 MiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
