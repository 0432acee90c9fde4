//! What a run decides once the zygote has collected: how many workers,
//! how they start, which test goes to which worker first, each test's
//! time limit, and the history it learns from and records into.
//!
//! Plain logic over the plan and the inventory; what it has to say on
//! stderr (a settings mismatch, threads that forbid fork, `-n auto`'s
//! reasons) comes back as notices for the caller to emit.

use std::collections::HashSet;
use std::path::Path;

use crate::config::{WorkerCount, WorkerStart};
use crate::history::{HistoryStore, HistoryView};
use crate::plan::RunPlan;
use crate::protocol::Inventory;
use crate::python::rootdir;
use crate::run::crash::RestartBudget;
use crate::run::timeouts::{TimeoutSources, Watchdog};
use crate::schedule::auto_workers;
use crate::schedule::dist::DistMode;
use crate::schedule::memory_budget::MemoryBudget;
use crate::schedule::run_queue::RunQueue;
use crate::schedule::shard::{self, ShardInput};

/// The run, planned.
pub struct RunStart {
    pub queue: RunQueue,
    pub store: HistoryStore,
    pub watchdog: Watchdog,
    pub restarts: RestartBudget,
    /// The `-n` in force: `PYTEST_XDIST_WORKER_COUNT` as xdist would set it.
    pub requested_workers: usize,
    pub worker_start: WorkerStart,
    /// Lines for stderr, in order.
    pub notices: Vec<String>,
}

/// What the run knows besides the plan and the inventory.
pub struct Surroundings {
    /// The zygote's resident memory (0 if unknown), for sizing workers.
    pub zygote_pid: Option<u32>,
    /// Other warm runs of the daemon sharing the CPUs.
    pub runs_beside: usize,
}

pub fn plan_run(plan: &RunPlan, inventory: &Inventory, around: &Surroundings) -> RunStart {
    let mut notices = Vec::new();
    let (assumed, read_settings) = &plan.settings_lookup;
    notices.extend(rootdir::settings_mismatch(assumed, *read_settings, Path::new(&inventory.rootdir)));
    let mut worker_start = plan.worker_start;
    if worker_start == WorkerStart::Fork && !inventory.threads.is_empty() {
        if plan.fork_forced {
            notices.push(fork_anyway(&inventory.threads));
        } else {
            notices.push(avoid_fork(plan, &inventory.threads));
            worker_start = WorkerStart::Spawn;
        }
    }
    let ids: HashSet<&str> = inventory.items.iter().map(|item| item.id.as_str()).collect();
    let (store, warning) = HistoryStore::open_for(HistoryStore::path_for(inventory.rootdir.as_ref()), &ids);
    notices.extend(warning.map(|w| format!("rpytest: warning: {w}")));
    let view = store.view();
    let tests: Vec<(&str, Option<&str>)> =
        inventory.items.iter().map(|item| (item.id.as_str(), item.group.as_deref())).collect();
    let durations: Vec<Option<f64>> = inventory.items.iter().map(|item| view.expected(&item.id)).collect();
    let peak = inventory.items.iter().filter_map(|item| view.peak_rss_kb(&item.id)).max();
    let requested_workers = workers_for(plan, inventory, &durations, peak, around, &mut notices);
    let dist = dist_mode(plan, inventory, &mut notices);
    let mut queue = RunQueue::for_run(&tests, durations, dist, requested_workers, plan.test_order);
    if let Some(first) = first_group(plan, inventory, &view) {
        queue.put_first(&first);
    }
    if let Some(holders) = inventory.holders.as_deref().filter(|_| worker_start == WorkerStart::Fork) {
        queue.plan_by_holders(holders);
    }
    RunStart {
        queue,
        store,
        watchdog: watchdog(plan, inventory),
        restarts: RestartBudget::new(plan.max_worker_restart, requested_workers),
        requested_workers,
        worker_start,
        notices,
    }
}

/// The zygote collected with sharding on: the tests this shard keeps (as
/// indexes into `ids`), and the line that says so. Not sharding: every
/// test, and no line (the zygote waits for an answer either way).
pub fn shard_plan(shard: Option<&ShardInput>, ids: &[String]) -> (Vec<usize>, String) {
    match shard {
        Some(input) => {
            let partition = shard::partition(ids, input.durations.as_ref().map(|(_, d)| d), input.spec.total);
            (partition.members(input.spec.index), partition.describe(input))
        }
        None => ((0..ids.len()).collect(), String::new()),
    }
}

/// Threads alive in the zygote: a forked child could inherit a lock one
/// of them holds (logging, stdio) and hang, so this run spawns.
fn avoid_fork(plan: &RunPlan, threads: &[String]) -> String {
    let shared = if plan.shared_fixtures.is_empty() {
        String::new()
    } else {
        format!("; shared session fixtures ({}) are set up per worker", plan.shared_fixtures.join(", "))
    };
    format!(
        "rpytest: the zygote has {} thread(s) running after collection ({}): a forked worker could \
         inherit a lock one of them holds, so this run's workers start with spawn and collect for \
         themselves{shared}. Start such threads in a fixture, or set worker_start = \"spawn\" \
         (--worker-start fork forks all the same).",
        threads.len(),
        threads.join(", ")
    )
}

/// `--worker-start fork` given: the user takes the risk, told once.
fn fork_anyway(threads: &[String]) -> String {
    format!(
        "rpytest: warning: --worker-start fork: forking past {} thread(s) running in the zygote ({}); \
         a worker can hang on a lock one of them held at the fork",
        threads.len(),
        threads.join(", ")
    )
}

/// `-n` on the command line wins; else an `-n` in pytest's addopts (as
/// xdist users have it; xdist's `-n 0` means one process); else the
/// settings' count. `auto` is then fitted to the history's expected work
/// and memory, and says why with `-v`.
fn workers_for(
    plan: &RunPlan,
    inventory: &Inventory,
    expected: &[Option<f64>],
    peak_rss_kb: Option<u64>,
    around: &Surroundings,
    notices: &mut Vec<String>,
) -> usize {
    let planned = (plan.workers, plan.workers_auto);
    let (count, auto) = match inventory.numprocesses.as_deref().filter(|_| !plan.workers_fixed) {
        Some("0") => (1, false),
        Some(text) => match WorkerCount::parse(text) {
            Ok(count) => (count.resolve(&plan.memory), count == WorkerCount::Auto),
            Err(e) => {
                notices.push(format!("rpytest: warning: ignoring -n from pytest's addopts: {e}"));
                planned
            }
        },
        None => planned,
    };
    if !auto && plan.memory.max_memory.is_none() {
        return count; // nothing to fit: no memory to read
    }
    let zygote_bytes = around.zygote_pid.map_or(0, crate::supervise::memory_watch::resident);
    let size = auto_workers::WorkerSize { peak_rss_kb, zygote_bytes };
    let budget = plan.memory.budget();
    if !auto {
        return memory_capped(count, size, &budget, notices);
    }
    let verbose = inventory.verbosity > 0;
    let count = cpu_share(count, around.runs_beside, verbose, notices);
    let fit = auto_workers::fit(count, expected, size, &budget);
    notices.extend(fit.why.filter(|_| verbose).map(|why| format!("rpytest: {why}")));
    fit.workers
}

/// A `-n auto` warm run beside other runs of the same daemon takes its
/// share of the CPUs (at least one), and says so with `-v`.
fn cpu_share(cpus: usize, beside: usize, verbose: bool, notices: &mut Vec<String>) -> usize {
    let share = (cpus / (beside + 1)).max(1);
    if verbose && share < cpus {
        notices.push(format!(
            "rpytest: -n auto: {share} worker(s) instead of {cpus}: {beside} other warm run(s) of the daemon share the CPUs"
        ));
    }
    share
}

/// An explicit `-n` within `--max-memory`, said on stderr when capped.
fn memory_capped(
    count: usize,
    size: auto_workers::WorkerSize,
    budget: &MemoryBudget,
    notices: &mut Vec<String>,
) -> usize {
    match auto_workers::memory_cap(count, size, budget) {
        Some(cap) => {
            notices.push(format!("rpytest: --max-memory: {}", cap.why.unwrap_or_default()));
            cap.workers
        }
        None => count,
    }
}

/// `--dist` from the command line, else from pytest's configuration (an
/// xdist user's addopts), else `load`.
fn dist_mode(plan: &RunPlan, inventory: &Inventory, notices: &mut Vec<String>) -> DistMode {
    if let Some(mode) = plan.dist {
        return mode;
    }
    match inventory.dist.as_deref().map(DistMode::parse) {
        Some(Ok(mode)) => mode,
        Some(Err(why)) => {
            notices.push(format!("rpytest: warning: --dist in the pytest configuration: {why}; using load"));
            DistMode::Load
        }
        None => DistMode::Load,
    }
}

/// `--ff`/`--nf` keep pytest's meaning under LPT: the tests that failed
/// last time (or that the history has never seen) run first.
fn first_group(plan: &RunPlan, inventory: &Inventory, view: &HistoryView) -> Option<Vec<bool>> {
    let has = |flags: &[&str]| plan.pytest_args.iter().any(|a| flags.contains(&a.as_str()));
    let (ff, nf) = (has(&["--ff", "--failed-first"]), has(&["--nf", "--new-first"]));
    if !ff && !nf {
        return None;
    }
    let first = |id: &str| (ff && view.failed_last(id)) || (nf && view.is_new(id));
    Some(inventory.items.iter().map(|item| first(&item.id)).collect())
}

/// Each test's time limit: its mark, `--timeout`, or pytest-timeout's.
fn watchdog(plan: &RunPlan, inventory: &Inventory) -> Watchdog {
    let sources = TimeoutSources {
        rpytest: plan.timeout,
        plugin: inventory.timeout_plugin,
        plugin_active: inventory.timeout_plugin_active,
    };
    Watchdog::new(sources, inventory.items.iter().map(|item| item.timeout)).slow_after(plan.slow_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_run_beside_others_takes_its_share_of_the_cpus() {
        let mut notices = Vec::new();
        assert_eq!(cpu_share(8, 1, false, &mut notices), 4);
        assert_eq!(cpu_share(2, 3, true, &mut notices), 1, "never below one");
        assert_eq!(notices.len(), 1, "said with -v only: {notices:?}");
        assert!(notices[0].contains("1 worker(s) instead of 2"));
    }
}
