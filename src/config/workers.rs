//! How many workers a run may start: the worker count as the user wrote
//! it (`-n`, `default_workers`) and the memory budget that caps `auto`.

/// A worker count as written by a user: a number or "auto".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCount {
    Auto,
    Exactly(usize),
}

impl WorkerCount {
    /// `0` is xdist's "no distribution" (users override `addopts = -n auto`
    /// with it): the tests run one at a time, here in one worker.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" | "logical" => Ok(WorkerCount::Auto),
            _ => match text.parse::<usize>() {
                Err(_) => Err(format!(
                    "invalid worker count '{text}': expected a whole number (0: no distribution, one worker) or 'auto'"
                )),
                Ok(n) => Ok(WorkerCount::Exactly(n.max(1))),
            },
        }
    }

    /// Like `resolve`, with `auto` capped at `max` (xdist's `--maxprocesses`).
    pub fn resolve_capped(self, max: Option<u32>, limits: &MemoryLimits) -> usize {
        match (self, max) {
            (WorkerCount::Auto, Some(max)) => self.resolve(limits).min(max as usize),
            _ => self.resolve(limits),
        }
    }

    /// `auto` is the CPUs this process may use (std reads affinity and
    /// cgroup quotas), capped so each worker has `worker_memory` of the
    /// memory budget (see `MemoryBudget`).
    pub fn resolve(self, limits: &MemoryLimits) -> usize {
        match self {
            WorkerCount::Exactly(n) => n,
            WorkerCount::Auto => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let budget = limits.budget();
                cpus.min(budget.workers_that_fit(budget.worker_memory)).max(1)
            }
        }
    }
}

/// The memory settings as the user gave them (`--max-memory`,
/// `--worker-memory`, `[tool.rpytest]`); `budget` reads the machine's
/// memory only when a decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub max_memory: Option<u64>,
    pub worker_memory: u64,
}

impl MemoryLimits {
    pub fn budget(&self) -> MemoryBudget {
        MemoryBudget::new(self.max_memory, self.worker_memory)
    }
}

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
pub(super) fn less_reserve(available: u64) -> u64 {
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
