//! How many workers a run may start: the worker count as the user wrote
//! it (`-n`, `default_workers`) and the memory limits that cap `auto`
//! (their budget: `schedule::memory_budget`).

use crate::schedule::memory_budget::MemoryBudget;

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
