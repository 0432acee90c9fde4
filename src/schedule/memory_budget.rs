//! The memory a run may use, which caps how many workers `auto` starts
//! (`auto_workers`) and, when the user set it, an explicit `-n` too. The
//! limits as written (`--max-memory`, `--worker-memory`) are configuration
//! (`config::MemoryLimits`); the budget they give is the schedule's.

/// The memory a run may use: `max_memory` when set, else what is available
/// now (cgroup limits included); and what one worker is assumed to need
/// when the history has not seen it (`worker_memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes; None: unknown (no cap).
    pub total: Option<u64>,
    /// Whether the user set it (`--max-memory`, `max_memory`): then it also
    /// caps an explicit `-n` and is watched during the run.
    pub explicit: bool,
    pub worker_memory: u64,
}

impl MemoryBudget {
    pub fn new(max_memory: Option<u64>, worker_memory: u64) -> Self {
        match max_memory {
            Some(total) => MemoryBudget { total: Some(total), explicit: true, worker_memory },
            None => MemoryBudget { total: available_memory().map(less_reserve), explicit: false, worker_memory },
        }
    }

    /// How many workers of `per_worker` bytes the budget holds (at least one).
    pub fn workers_that_fit(&self, per_worker: u64) -> usize {
        match self.total {
            Some(total) => ((total / per_worker.max(1)) as usize).max(1),
            None => usize::MAX,
        }
    }
}

/// What the run may use of the memory available: all but a tenth (at least
/// 128 MiB), left for the rest of the machine and for the tests' peaks.
fn less_reserve(available: u64) -> u64 {
    available.saturating_sub((available / 10).max(128 << 20)).max(1)
}

/// Bytes of memory available now (cgroup limits included); None if unknown.
pub fn available_memory() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let available = match system.cgroup_limits() {
        Some(limits) => limits.free_memory.min(system.available_memory()),
        None => system.available_memory(),
    };
    (available > 0).then_some(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_keeps_a_reserve() {
        assert_eq!(less_reserve(10 << 30), 9 << 30);
        assert_eq!(less_reserve(512 << 20), 384 << 20);
        assert_eq!(less_reserve(64 << 20), 1, "never zero");
    }
}
