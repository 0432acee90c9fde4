//! The run's queue of tests: what is planned for each worker, what each
//! worker holds, what is done. Plain logic, no actors, so every rule is
//! unit-tested (the simulation of prefetching workers in
//! `simulation_tests.rs` drives it exactly as the scheduler actor does).
//!
//! Work travels in *units*: a test alone (`--dist load`) or a group that
//! must stay on one worker (a module, class, file or `xdist_group`, see
//! `dist.rs`).
//!
//! **Assignment and order are separate decisions.** With history, and a
//! unit heavy enough that the shared pool (below) could end unevenly, the
//! run starts from an LPT plan: units, heaviest first, each to the worker
//! with the least planned work, so the workers' totals balance. A suite of
//! short tests keeps the pool: a plan built from microsecond durations
//! would split by their noise. *Order* is what
//! a worker does with its share: by default it runs it in collection order
//! (`Order::Collection`), so every worker's sequence is a subsequence of
//! pytest's and a test is only ever preceded by tests that precede it under
//! pytest (hidden order dependencies stay hidden, as under xdist). The
//! order does not change a worker's total, so it costs no balance.
//! `Order::Longest` (the `test_order = "longest"` setting) runs each share
//! longest first instead, for suites known to be order-independent.
//!
//! **Nothing is committed early.** A plan stays here until the worker needs
//! it: a worker holds its running test, its next one (pytest decides
//! fixture teardown from `nextitem`) and, beyond those, at most an eighth
//! of what its plan still holds, or `PREFETCH_SECS` of expected work near
//! its end; when it asks for more while it holds that much, the answer
//! waits (`Answer::Later`) until it finishes a test. Stealing takes from
//! the back of a plan, prefetching from its front, so near the end of a
//! run no worker holds queued work an idle worker could take.
//!
//! **Work stealing.** A worker whose plan is empty takes units from the back
//! of the plan of the worker expected to finish last, as long as that moves
//! the two finishing times closer. Under `Order::Collection` it only takes
//! units that come after everything it has run, so its sequence stays
//! increasing; when no such unit exists and the imbalance is worth a fork,
//! `fresh_steal` gives the work to a new worker slot (a fresh fork from
//! the zygote has run nothing, so any order is safe on it). A lost
//! worker's unstarted tests go back to its own slot's plan: its replacement
//! is a fresh fork and starts over.
//!
//! **Without history** (or without a heavy unit) there is no plan: units wait in one shared pool in
//! collection order and are handed out from its front in small batches
//! (about pending / (4 · workers), by count): round-robin in effect, and
//! each worker's sequence is increasing because the front only moves
//! forward. At the start, a worker that asks again (prefetching) while
//! others have not had their fair share yet (units / workers) waits for
//! them, for up to `FAIR_START_LIMIT`: 8 equal tests on 4 workers run
//! 2/2/2/2, as under xdist.
//!
//! Retries (`--retries`) are the one exception to the order rule: a failed
//! test runs again on whichever worker asks first.

use std::collections::{BTreeSet, VecDeque};

use crate::schedule::dist::{self, DistMode};
use plan::expected;

mod hand_out;
mod plan;
mod pool;
mod recovery;
#[cfg(test)]
mod simulation_tests;
mod steal;
#[cfg(test)]
mod tests;

const MAX_BATCH: usize = 32;
/// Expected seconds of unstarted work a worker may hold beyond its next
/// test: enough to hide the round trip for short tests, small enough that
/// the tail is not decided by what a worker already holds.
pub const PREFETCH_SECS: f64 = 0.025;
/// Seconds (on the queue's clock) that early workers hold back for the
/// others' fair share; a worker that has not connected by then loses it.
pub const FAIR_START_LIMIT: f64 = 2.0;
/// Least expected gain (seconds) for which work goes to a fresh worker.
pub const FRESH_GAIN: f64 = 0.1;
/// What a test costs beyond its recorded phases (pytest's hooks, capture,
/// logging, the report's trip): about half a millisecond. Without it a
/// suite of trivial tests would be planned by the noise in their
/// microsecond durations.
const PER_TEST_OVERHEAD: f64 = 0.0005;
/// Under collection order a plan's misestimates cannot be stolen back at
/// the end (a worker only takes work that comes after what it has run),
/// while the shared pool ends within about one unit. So the plan is used
/// only where the pool's end could be worse: a unit heavier than this
/// share of a worker's expected work.
const PLAN_WHEN_UNIT_OVER: f64 = 0.05;

/// The order in which a worker runs the tests assigned to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Collection order (pytest's), the default: order-safe.
    Collection,
    /// Longest first, by recorded durations.
    Longest,
}

impl Order {
    pub fn parse(text: &str) -> Result<Order, String> {
        match text {
            "collection" => Ok(Order::Collection),
            "longest" => Ok(Order::Longest),
            other => Err(format!("invalid test order '{other}'; accepted: \"collection\", \"longest\"")),
        }
    }
}

/// The answer to a worker's request for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Run(Vec<usize>),
    /// Nothing more for this worker.
    NoMore,
    /// Ask again after this worker finishes a test (it holds enough), or
    /// shortly (the fair start holds the rest for others).
    Later,
}

/// Where a test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Pool,
    Plan(usize),
    Held(usize),
    Retry,
    Done,
}

#[derive(Debug)]
pub struct RunQueue {
    /// Tests of each unit, in collection order, and each test's unit.
    units: Vec<Vec<usize>>,
    unit_of: Vec<usize>,
    /// Per test: its rank in a worker's run order (collection index, or
    /// longest unit first).
    key: Vec<usize>,
    place: Vec<Place>,
    /// Without history: whole units, in collection order, for any worker.
    pool: VecDeque<usize>,
    /// Per worker slot: planned tests by run-order key, and their expected seconds.
    plans: Vec<BTreeSet<(usize, usize)>>,
    plan_weight: Vec<f64>,
    /// Failed tests to run again (`--retries`), for whoever asks first.
    retries: VecDeque<usize>,
    pending_tests: usize,
    /// Per worker slot: tests sent and not yet finished, in run order.
    held: Vec<VecDeque<usize>>,
    /// Per worker slot: the highest collection index its process was sent
    /// (None: a fresh process, which may run anything).
    last: Vec<Option<usize>>,
    /// Per test: expected seconds (recorded, unknown at the mean recorded
    /// duration), and whether anything was recorded at all.
    weight: Vec<f64>,
    any_known: bool,
    order: Order,
    /// Seconds since the run started, as last told by `tick`, and when
    /// each worker started the test it holds first (its running test).
    now: f64,
    started: Vec<f64>,
    done: Vec<bool>,
    /// Set by `stop`: nothing more is handed out or requeued.
    stopped: bool,
    /// Units handed out per worker, and each worker's fair share of the
    /// units at the start (0: no fair start, see `must_wait`).
    received: Vec<usize>,
    fair_share: usize,
    /// Per worker slot: whether others may steal its plan (not a slot that
    /// runs one test alone, see `isolate`).
    stealable: Vec<bool>,
    /// Worker slots the run started with, and slots added for fresh steals.
    initial_workers: usize,
    fresh_slots: usize,
}

/// What a lost worker leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Lost {
    /// The test it was running (the first it held), now finished as crashed.
    pub in_flight: Option<usize>,
    /// Tests it held behind that one, back in its slot's plan for its
    /// replacement (a fresh fork).
    pub requeued: Vec<usize>,
    /// Tests it held behind that one after a stop: they never start.
    pub dropped: Vec<usize>,
}

impl RunQueue {
    /// `durations[i]` is test i's recorded duration, if any; `units` partition
    /// the tests (every test in exactly one unit, in collection order).
    pub fn new(durations: Vec<Option<f64>>, units: Vec<Vec<usize>>, workers: usize, order: Order) -> Self {
        let workers = workers.max(1);
        let n = durations.len();
        let mut unit_of = vec![0; n];
        for (u, tests) in units.iter().enumerate() {
            tests.iter().for_each(|&t| unit_of[t] = u);
        }
        let weight = expected(&durations);
        let any_known = durations.iter().any(Option::is_some);
        let mut q = RunQueue {
            key: (0..n).collect(),
            place: vec![Place::Pool; n],
            pool: VecDeque::new(),
            plans: vec![BTreeSet::new(); workers],
            plan_weight: vec![0.0; workers],
            retries: VecDeque::new(),
            pending_tests: n,
            held: vec![VecDeque::new(); workers],
            last: vec![None; workers],
            weight,
            any_known,
            order,
            now: 0.0,
            started: vec![0.0; workers],
            done: vec![false; n],
            stopped: false,
            received: vec![0; workers],
            fair_share: 0,
            stealable: vec![true; workers],
            initial_workers: workers,
            fresh_slots: 0,
            units,
            unit_of,
        };
        if any_known && q.plan_pays() {
            q.plan(&vec![false; n]);
        } else {
            q.pool = (0..q.units.len()).collect();
            q.fair_share = if workers > 1 { q.pool.len() / workers } else { 0 };
        }
        q
    }

    /// The queue for a run: `tests` are (node id, xdist_group) in collection
    /// order, grouped into units by `mode`. Never more worker slots than
    /// units: a worker with nothing to do is not worth forking. With one
    /// worker, or `--dist no`, collection order.
    pub fn for_run(
        tests: &[(&str, Option<&str>)],
        durations: Vec<Option<f64>>,
        mode: DistMode,
        workers: usize,
        order: Order,
    ) -> Self {
        let units = dist::units(mode, tests);
        let workers = workers.min(units.len()).max(1);
        let order = if workers == 1 || mode == DistMode::No { Order::Collection } else { order };
        RunQueue::new(durations, units, workers, order)
    }

    /// Worker slots the queue serves.
    pub fn workers(&self) -> usize {
        self.held.len()
    }

    /// One unit per test, longest first within each worker.
    #[cfg(test)]
    pub fn per_test(durations: Vec<Option<f64>>, workers: usize) -> Self {
        let units = (0..durations.len()).map(|i| vec![i]).collect();
        RunQueue::new(durations, units, workers, Order::Longest)
    }

    pub fn total(&self) -> usize {
        self.done.len()
    }

    /// Nothing pending and nothing held: every test ran, crashed, or was
    /// left unstarted by a stop.
    pub fn is_finished(&self) -> bool {
        !self.has_pending() && self.held.iter().all(VecDeque::is_empty)
    }

    /// The run is stopping (-x, --maxfail, an interrupt): pending tests will
    /// not start. Returns how many were dropped.
    pub fn stop(&mut self) -> usize {
        self.stopped = true;
        let dropped = self.pending_tests;
        self.pool.clear();
        self.retries.clear();
        self.plans.iter_mut().for_each(BTreeSet::clear);
        self.plan_weight.iter_mut().for_each(|w| *w = 0.0);
        self.pending_tests = 0;
        dropped
    }

    /// A worker finished after a stop: the tests it still held never started.
    pub fn release(&mut self, worker: usize) -> Vec<usize> {
        if !self.stopped {
            return Vec::new();
        }
        self.held[worker].drain(..).collect()
    }

    /// Tests waiting to be handed out.
    pub fn pending_tests(&self) -> Vec<usize> {
        let pool = self.pool.iter().flat_map(|&u| self.units[u].iter().copied());
        let plans = self.plans.iter().flat_map(|p| p.iter().map(|&(_, t)| t));
        let mut all: Vec<usize> = self.retries.iter().copied().chain(pool).chain(plans).collect();
        all.sort_unstable();
        all
    }

    pub fn has_pending(&self) -> bool {
        self.pending_tests > 0
    }

    /// Whether `worker`'s process may run `unit` next under the order rule.
    pub(super) fn may_run(&self, worker: usize, unit: usize) -> bool {
        self.may_run_after(self.last[worker], unit)
    }

    fn may_run_after(&self, last: Option<usize>, unit: usize) -> bool {
        self.order == Order::Longest || last.is_none_or(|last| self.first_left(unit) > last)
    }

    /// The lowest collection index of `unit`'s tests not yet finished.
    fn first_left(&self, unit: usize) -> usize {
        self.units[unit].iter().copied().find(|&t| self.place[t] != Place::Done).unwrap_or(usize::MAX)
    }

    /// What each worker runs now (its first held test) and since when
    /// (seconds on the queue's clock): (worker, test, since).
    pub fn running(&self) -> Vec<(usize, usize, f64)> {
        let fronts = self.held.iter().enumerate().filter_map(|(w, held)| held.front().map(|&t| (w, t)));
        fronts.map(|(w, t)| (w, t, self.started[w])).collect()
    }

    /// Expected seconds of the work not finished yet (history; unknown
    /// tests at the mean; 0 without history).
    pub fn expected_left(&self) -> f64 {
        (0..self.done.len()).filter(|&i| !self.done[i]).map(|i| self.weight[i]).sum()
    }

    /// Sets the clock: seconds since the run started.
    pub fn tick(&mut self, now: f64) {
        self.now = now;
    }

    /// Marks `index` finished on `worker`. False if it was not held there
    /// (a duplicate or stray report), which the caller must not count.
    pub fn complete(&mut self, worker: usize, index: usize) -> bool {
        let Some(pos) = self.held.get(worker).and_then(|h| h.iter().position(|&i| i == index)) else {
            return false;
        };
        self.held[worker].remove(pos);
        self.started[worker] = self.now;
        self.finish(index)
    }

    pub(super) fn finish(&mut self, index: usize) -> bool {
        self.place[index] = Place::Done;
        !std::mem::replace(&mut self.done[index], true)
    }
}
