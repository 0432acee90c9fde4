//! `-n auto` that knows when parallelism does not pay.
//!
//! `auto` starts from the CPUs this process may use (see `config`). Each
//! extra worker costs a fork, a connection, its own session teardown and a
//! share of the reporting; on a small suite that costs more than splitting
//! the tests saves (the spec's "small test suite: overhead exceeds
//! benefit"). So when the history knows the selected tests, `auto` takes the
//! count that minimises the expected wall time, and no more workers than
//! the memory available holds at the peak the history saw per worker. An
//! explicit `-n N` never comes here.

/// What one more worker adds to a run's wall time, in seconds: forking it,
/// its hello and session start, its teardown and exit, its reports' share
/// of the engine's work. Measured: 100 trivial tests took 0.05-0.1 s longer
/// on `-n 2` than on `-n 1`.
pub const WORKER_COST: f64 = 0.05;
/// The least share of the selected tests the history must know before it
/// may shrink the pool: a suite it mostly does not know is not small.
const MIN_KNOWN: f64 = 0.9;
use super::memory_budget::MemoryBudget;

/// The pool `auto` resolved to, and why it is smaller than the CPUs.
#[derive(Debug, PartialEq)]
pub struct AutoFit {
    pub workers: usize,
    pub why: Option<String>,
}

/// Fits `cpus` workers to the expected work of the selected tests.
/// `expected`: each test's duration from the history (None: unknown);
/// `size`: what one worker is expected to need; `budget`: the memory the
/// run may use.
pub fn fit(cpus: usize, expected: &[Option<f64>], size: WorkerSize, budget: &MemoryBudget) -> AutoFit {
    let mut fit = AutoFit { workers: cpus.max(1), why: None };
    if let Some(by_work) = by_work(fit.workers, expected) {
        fit = by_work;
    }
    if let Some(cap) = memory_cap(fit.workers, size, budget) {
        fit = AutoFit { workers: cap.workers, why: cap.why.map(|why| format!("-n auto: {why}")) };
    }
    fit
}

/// What is known of one worker's memory before the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSize {
    /// The highest peak RSS (KiB) the history saw for a selected test.
    pub peak_rss_kb: Option<u64>,
    /// The zygote's resident size (bytes): a forked worker starts from it.
    pub zygote_bytes: u64,
}

/// Fewer than `workers` when that many would not fit in the budget at the
/// peak the history saw per worker (else at the larger of `worker_memory`
/// and the zygote's size); None when they fit or nothing is known.
pub fn memory_cap(workers: usize, size: WorkerSize, budget: &MemoryBudget) -> Option<AutoFit> {
    let total = budget.total?;
    let per_worker = match size.peak_rss_kb {
        Some(kb) => (kb * 1024).max(budget.worker_memory),
        None => budget.worker_memory.max(size.zygote_bytes),
    };
    let cap = budget.workers_that_fit(per_worker);
    (cap < workers).then(|| {
        let seen = match size.peak_rss_kb {
            Some(kb) => format!("workers peaked at {} MiB in the history", kb / 1024),
            None => {
                format!("a worker is assumed to need {} MiB (worker_memory, or the zygote's size)", per_worker >> 20)
            }
        };
        let limit = if budget.explicit { "the memory limit is" } else { "available memory is" };
        let why = format!("{cap} worker(s) instead of {workers}: {seen} and {limit} {} MiB", total >> 20);
        AutoFit { workers: cap, why: Some(why) }
    })
}

/// The count with the least expected wall time, when the history knows
/// enough of the tests to tell.
fn by_work(cpus: usize, expected: &[Option<f64>]) -> Option<AutoFit> {
    let known: Vec<f64> = expected.iter().flatten().copied().collect();
    if known.is_empty() || (known.len() as f64) < MIN_KNOWN * expected.len() as f64 {
        return None;
    }
    let average = known.iter().sum::<f64>() / known.len() as f64;
    let total = average * (expected.len() - known.len()) as f64 + known.iter().sum::<f64>();
    let longest = known.iter().copied().fold(0.0, f64::max);
    let wall = |n: usize| (total / n as f64).max(longest) + n as f64 * WORKER_COST;
    let best = (1..=cpus).min_by(|a, b| wall(*a).total_cmp(&wall(*b)))?;
    let why = (best < cpus).then(|| {
        format!(
            "-n auto: {best} worker(s) instead of {cpus}: the history expects {total:.2}s of tests \
             (longest {longest:.2}s), too little for more workers to pay off"
        )
    });
    Some(AutoFit { workers: best, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_budget() -> MemoryBudget {
        MemoryBudget { total: None, explicit: false, worker_memory: 256 << 20 }
    }

    fn peak(kb: u64) -> WorkerSize {
        WorkerSize { peak_rss_kb: Some(kb), zygote_bytes: 0 }
    }

    fn budget(total: u64) -> MemoryBudget {
        MemoryBudget { total: Some(total), explicit: false, worker_memory: 256 << 20 }
    }

    #[test]
    fn an_explicit_limit_caps_by_the_heaviest_worker_or_worker_memory() {
        let limit = MemoryBudget { total: Some(1000 << 20), explicit: true, worker_memory: 256 << 20 };
        let cap = memory_cap(4, peak(330 * 1024), &limit).unwrap();
        assert_eq!(cap.workers, 3);
        assert!(cap.why.unwrap().contains("peaked at 330 MiB in the history and the memory limit is 1000 MiB"));
        assert_eq!(memory_cap(4, WorkerSize::default(), &limit).unwrap().workers, 3, "256 MiB each without history");
        let big_zygote = WorkerSize { peak_rss_kb: None, zygote_bytes: 400 << 20 };
        assert_eq!(
            memory_cap(4, big_zygote, &limit).unwrap().workers,
            2,
            "a forked worker starts as big as the zygote"
        );
        assert_eq!(memory_cap(2, peak(330 * 1024), &limit), None, "two fit");
        assert_eq!(memory_cap(4, peak(330 * 1024), &no_budget()), None, "unknown memory: no cap");
    }

    #[test]
    fn a_small_suite_gets_one_worker_and_a_reason() {
        let fit = fit(8, &[Some(0.001); 20], WorkerSize::default(), &no_budget());
        assert_eq!(fit.workers, 1);
        assert!(fit.why.unwrap().contains("instead of 8"));
    }

    #[test]
    fn a_large_suite_keeps_every_cpu() {
        assert_eq!(fit(4, &[Some(0.5); 100], WorkerSize::default(), &no_budget()), AutoFit { workers: 4, why: None });
    }

    #[test]
    fn one_long_test_bounds_what_more_workers_can_win() {
        // 2 s in one test and 0.2 s elsewhere: a second worker takes the
        // rest, a third has nothing left to win.
        let mut expected = vec![Some(2.0)];
        expected.extend([Some(0.01); 20]);
        assert_eq!(fit(8, &expected, WorkerSize::default(), &no_budget()).workers, 2);
    }

    #[test]
    fn without_enough_history_auto_is_the_cpus() {
        assert_eq!(fit(4, &[None; 10], WorkerSize::default(), &no_budget()).workers, 4);
        let mut expected = vec![Some(0.001); 5];
        expected.extend([None; 5]);
        assert_eq!(fit(4, &expected, WorkerSize::default(), &no_budget()).workers, 4);
    }

    #[test]
    fn memory_caps_the_pool_at_the_peak_seen() {
        // Workers peaked at 1 GiB; 2.5 GiB available holds two.
        let fit = fit(8, &[Some(1.0); 100], peak(1024 * 1024), &budget(2560 * 1024 * 1024));
        assert_eq!(fit.workers, 2);
        assert!(fit.why.unwrap().contains("1024 MiB"));
    }
}
