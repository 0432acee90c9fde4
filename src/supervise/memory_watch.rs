//! Keeping a run inside `--max-memory` while it runs.
//!
//! The worker count is fitted to the budget before the run (see
//! `auto_workers::memory_cap`), from what the history knows. A test can
//! still take more than the history saw, so the Supervisor samples the
//! memory of the run's process trees (sysinfo, a few times a second) and
//! asks `MemoryWatch` what to do: when the trees together pass the budget,
//! retire the largest worker after its current test (the Scheduler has a
//! fresh process take over its queued tests: none is lost, the memory the
//! old one held is freed), one worker at a time and never the last one,
//! and say so.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// After retiring a worker, let its memory go before judging again.
const SETTLE: Duration = Duration::from_secs(1);

/// One worker's tree: the worker process and everything its tests started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerMemory {
    pub worker: usize,
    /// The process: a retired worker's fresh replacement is another one.
    pub pid: u32,
    pub bytes: u64,
}

/// What the Supervisor should do after a sample.
#[derive(Debug, PartialEq, Eq)]
pub struct Retire {
    pub worker: usize,
    /// The message to print.
    pub why: String,
}

pub struct MemoryWatch {
    budget: u64,
    /// Pids of the workers retired: they finish their current test.
    retiring: HashSet<u32>,
    last_retired: Option<Instant>,
}

impl MemoryWatch {
    pub fn new(budget: u64) -> Self {
        MemoryWatch { budget, retiring: HashSet::new(), last_retired: None }
    }

    /// `others`: the zygote's tree outside the workers and the engine.
    pub fn observe(&mut self, now: Instant, others: u64, workers: &[WorkerMemory]) -> Option<Retire> {
        let total = others + workers.iter().map(|w| w.bytes).sum::<u64>();
        if total <= self.budget || self.last_retired.is_some_and(|at| now.duration_since(at) < SETTLE) {
            return None;
        }
        let active: Vec<&WorkerMemory> = workers.iter().filter(|w| !self.retiring.contains(&w.pid)).collect();
        if active.len() < 2 {
            return None; // the last worker runs on: the run must end
        }
        let largest = active.iter().max_by_key(|w| (w.bytes, std::cmp::Reverse(w.worker)))?;
        self.retiring.insert(largest.pid);
        self.last_retired = Some(now);
        Some(Retire {
            worker: largest.worker,
            why: format!(
                "rpytest: memory: the run uses {} MiB, over --max-memory {} MiB; retiring worker gw{} ({} MiB) \
                 after its current test, a fresh process takes over its queued tests",
                total >> 20,
                self.budget >> 20,
                largest.worker,
                largest.bytes >> 20
            ),
        })
    }
}

/// Bytes resident in one process (0 if it is gone).
pub fn resident(pid: u32) -> u64 {
    let mut system = System::new();
    let pid = Pid::from_u32(pid);
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing().with_memory(),
    );
    system.process(pid).map_or(0, |p| p.memory())
}

/// Reads the resident memory of process trees with sysinfo.
pub struct TreeSampler {
    system: System,
}

impl Default for TreeSampler {
    fn default() -> Self {
        TreeSampler { system: System::new() }
    }
}

impl TreeSampler {
    /// Bytes resident in each root's tree (the root and its descendants),
    /// in the order of `roots`; a root that is gone counts 0.
    pub fn sample(&mut self, roots: &[u32]) -> Vec<u64> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (pid, process) in self.system.processes() {
            if let Some(parent) = process.parent() {
                children.entry(parent).or_default().push(*pid);
            }
        }
        roots.iter().map(|&root| self.tree_bytes(Pid::from_u32(root), &children)).collect()
    }

    fn tree_bytes(&self, root: Pid, children: &HashMap<Pid, Vec<Pid>>) -> u64 {
        let mut total = 0;
        let mut stack = vec![root];
        while let Some(pid) = stack.pop() {
            total += self.system.process(pid).map_or(0, |p| p.memory());
            stack.extend(children.get(&pid).into_iter().flatten());
        }
        total
    }
}

/// `--max-memory` during a run: samples the zygote's tree and each
/// worker's, and names the worker to retire when the total is over.
pub struct RunMemory {
    watch: MemoryWatch,
    sampler: TreeSampler,
    /// Forked workers are in the zygote's tree: counted once.
    forked: bool,
}

impl RunMemory {
    pub fn new(budget: u64, forked: bool) -> Self {
        RunMemory { watch: MemoryWatch::new(budget), sampler: TreeSampler::default(), forked }
    }

    /// One sample of `zygote` and `workers` ((worker, pid) pairs).
    pub fn sample(&mut self, now: Instant, zygote: Option<u32>, workers: &[(usize, u32)]) -> Option<Retire> {
        let roots: Vec<u32> = std::iter::once(zygote.unwrap_or(0)).chain(workers.iter().map(|w| w.1)).collect();
        let bytes = self.sampler.sample(&roots);
        let memory: Vec<WorkerMemory> = workers
            .iter()
            .zip(&bytes[1..])
            .map(|(&(worker, pid), &bytes)| WorkerMemory { worker, pid, bytes })
            .collect();
        let forked: u64 = if self.forked { bytes[1..].iter().sum() } else { 0 };
        self.watch.observe(now, bytes[0].saturating_sub(forked), &memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn workers(sizes: &[u64]) -> Vec<WorkerMemory> {
        let pid = |worker: usize| 1000 + worker as u32;
        sizes
            .iter()
            .enumerate()
            .map(|(worker, mib)| WorkerMemory { worker, pid: pid(worker), bytes: mib * MIB })
            .collect()
    }

    #[test]
    fn within_the_budget_nothing_happens() {
        let mut watch = MemoryWatch::new(1000 * MIB);
        assert_eq!(watch.observe(Instant::now(), 40 * MIB, &workers(&[300, 300, 300])), None);
    }

    #[test]
    fn over_the_budget_the_largest_worker_is_retired_and_named() {
        let mut watch = MemoryWatch::new(1000 * MIB);
        let retire = watch.observe(Instant::now(), 40 * MIB, &workers(&[300, 330, 300, 100])).unwrap();
        assert_eq!(retire.worker, 1);
        assert!(retire.why.contains("uses 1070 MiB, over --max-memory 1000 MiB; retiring worker gw1 (330 MiB)"));
    }

    #[test]
    fn one_retirement_at_a_time_then_the_next_largest() {
        let t0 = Instant::now();
        let mut watch = MemoryWatch::new(1000 * MIB);
        let sizes = workers(&[400, 500, 300]);
        assert_eq!(watch.observe(t0, 0, &sizes).unwrap().worker, 1);
        assert_eq!(watch.observe(t0 + Duration::from_millis(500), 0, &sizes), None, "settling");
        let later = watch.observe(t0 + SETTLE, 0, &sizes).unwrap();
        assert_eq!(later.worker, 0, "gw1 is already retiring");
        let mut replaced = sizes.clone();
        replaced[1].pid = 2001; // gw1's fresh process
        assert_eq!(watch.observe(t0 + SETTLE * 2, 0, &replaced).unwrap().worker, 1, "a new process counts anew");
    }

    #[test]
    fn the_last_active_worker_is_never_retired() {
        let t0 = Instant::now();
        let mut watch = MemoryWatch::new(100 * MIB);
        assert_eq!(watch.observe(t0, 0, &workers(&[500])), None);
        let two = workers(&[500, 400]);
        assert_eq!(watch.observe(t0, 0, &two).unwrap().worker, 0);
        assert_eq!(watch.observe(t0 + SETTLE * 2, 0, &two), None, "gw1 is the last one running");
    }

    #[test]
    fn the_sampler_reads_this_process_tree() {
        let mut sampler = TreeSampler::default();
        let bytes = sampler.sample(&[std::process::id(), u32::MAX]);
        assert!(bytes[0] > 1 << 20, "this test process holds more than 1 MiB");
        assert_eq!(bytes[1], 0, "a process that does not exist");
        assert!(resident(std::process::id()) > 1 << 20);
    }
}
