//! Resident memory of the daemon and the zygotes it holds, for
//! `serve --status` and the benchmark.

use std::collections::BTreeMap;

use sysinfo::{Pid, ProcessesToUpdate, System};

/// Bytes resident: "daemon", "zygotes" (summed) and "total".
pub fn resident(daemon: u32, zygotes: &[u32]) -> BTreeMap<String, u64> {
    let mut system = System::new();
    let pids: Vec<Pid> = std::iter::once(daemon).chain(zygotes.iter().copied()).map(Pid::from_u32).collect();
    system.refresh_processes(ProcessesToUpdate::Some(&pids), true);
    let rss = |pid: u32| system.process(Pid::from_u32(pid)).map_or(0, |p| p.memory());
    let daemon_rss = rss(daemon);
    let zygotes_rss: u64 = zygotes.iter().map(|&pid| rss(pid)).sum();
    BTreeMap::from([
        ("daemon".to_string(), daemon_rss),
        ("zygotes".to_string(), zygotes_rss),
        ("total".to_string(), daemon_rss + zygotes_rss),
    ])
}
