//! The run's queue of tests: what is planned for each worker, what each
//! worker holds, what is done. Plain logic, no actors, so every rule is
//! unit-tested (the simulation of prefetching workers at the end drives it
//! exactly as the scheduler actor does).
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

use crate::dist::{self, DistMode};

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

    /// Whether an LPT plan can end the run earlier than the shared pool:
    /// always for longest-first order (the user asked for it), else only
    /// with a unit heavy enough to make the pool's end uneven.
    fn plan_pays(&self) -> bool {
        let unit_weight = |u: &Vec<usize>| u.iter().map(|&t| self.weight[t]).sum::<f64>();
        let heaviest = self.units.iter().map(unit_weight).fold(0.0, f64::max);
        let share = self.weight.iter().sum::<f64>() / self.plans.len() as f64;
        self.order == Order::Longest || heaviest > PLAN_WHEN_UNIT_OVER * share
    }

    /// The LPT plan: units heaviest first (those with a test marked in
    /// `first` before all others), each to the worker with the least
    /// planned work; each worker's share keyed in its run order.
    fn plan(&mut self, first: &[bool]) {
        let is_first = |unit: &Vec<usize>| unit.iter().any(|&t| first[t]);
        let weights: Vec<f64> = self.units.iter().map(|u| u.iter().map(|&t| self.weight[t]).sum()).collect();
        let mut order: Vec<usize> = (0..self.units.len()).collect();
        order.sort_by(|&a, &b| {
            let (ua, ub) = (&self.units[a], &self.units[b]);
            is_first(ub).cmp(&is_first(ua)).then(weights[b].total_cmp(&weights[a])).then(ua[0].cmp(&ub[0]))
        });
        let (bin_of, _) = crate::lpt::assign(&order, &weights, self.plans.len());
        let n = self.done.len();
        for (rank, &u) in order.iter().enumerate() {
            for t in self.units[u].clone() {
                self.key[t] = match self.order {
                    Order::Collection => t,
                    Order::Longest => rank * n + t,
                };
                self.plan_test(bin_of[u], t);
            }
        }
    }

    fn plan_test(&mut self, worker: usize, test: usize) {
        self.plans[worker].insert((self.key[test], test));
        self.plan_weight[worker] += self.weight[test];
        self.place[test] = Place::Plan(worker);
    }

    fn unplan_test(&mut self, worker: usize, test: usize) {
        self.plans[worker].remove(&(self.key[test], test));
        self.plan_weight[worker] -= self.weight[test];
        if self.plans[worker].is_empty() {
            self.plan_weight[worker] = 0.0;
        }
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

    /// pytest's `--ff`/`--nf`: under `Order::Longest`, units holding a test
    /// marked in `first` are planned and run before all others. (In
    /// collection order pytest's own reordering already put them first.)
    pub fn put_first(&mut self, first: &[bool]) {
        if self.order != Order::Longest {
            return;
        }
        if self.any_known {
            self.plans.iter_mut().for_each(BTreeSet::clear);
            self.plan_weight.iter_mut().for_each(|w| *w = 0.0);
            self.plan(first);
        } else {
            let (front, back): (Vec<usize>, Vec<usize>) =
                self.pool.drain(..).partition(|&u| self.units[u].iter().any(|&t| first[t]));
            self.pool = front.into_iter().chain(back).collect();
        }
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

    /// What to tell `worker`, which asks for more work (see the module doc).
    pub fn answer(&mut self, worker: usize) -> Answer {
        if self.held[worker].is_empty() {
            self.started[worker] = self.now;
        }
        if self.stopped {
            return Answer::NoMore;
        }
        if self.must_wait(worker) {
            return Answer::Later;
        }
        // It needs a test now: none to run, or none to follow the running one.
        let needs = self.held[worker].len() <= 1;
        if let Some(test) = self.retries.pop_front() {
            return Answer::Run(self.send(worker, vec![test], 1));
        }
        if self.plans[worker].is_empty() && self.pool.is_empty() {
            self.steal(worker);
        }
        if !self.plans[worker].is_empty() {
            return self.serve_own_plan(worker, needs);
        }
        if !self.pool.is_empty() {
            // The tail without history: a worker gets more only when it
            // needs a next test, so no one holds what another could run.
            if !needs && self.pending_tests <= 2 * self.initial_workers {
                return Answer::Later;
            }
            let max_units = self.allowance(worker).unwrap_or(usize::MAX).max(1);
            let (batch, units) = self.pool_batch(worker, max_units);
            if !batch.is_empty() {
                return Answer::Run(self.send(worker, batch, units));
            }
        }
        if needs {
            Answer::NoMore
        } else {
            Answer::Later
        }
    }

    /// `answer`, for a worker that must get something now: the batch, empty
    /// for "no more" (the fair start and prefetch limits do not apply).
    #[cfg(test)]
    pub fn next_batch(&mut self, worker: usize) -> Vec<usize> {
        let saved = std::mem::take(&mut self.held[worker]);
        let answer = self.answer(worker);
        let mut held = saved;
        let batch = match answer {
            Answer::Run(batch) => batch,
            _ => Vec::new(),
        };
        held.extend(self.held[worker].drain(..));
        self.held[worker] = held;
        batch
    }

    /// The next tests of `worker`'s own plan, in its run order: at most
    /// `PREFETCH_SECS` (or an eighth of its plan, if more) of expected work
    /// beyond its running test (at least one test when it needs one).
    fn serve_own_plan(&mut self, worker: usize, needs: bool) -> Answer {
        let unstarted: f64 = self.held[worker].iter().skip(1).map(|&t| self.weight[t]).sum();
        let size = self.batch_size();
        // Taking from the front of a long plan leaves its back, what
        // stealing takes, alone: the limit bites as the plan runs out.
        let budget = PREFETCH_SECS.max(self.plan_weight[worker] / 8.0);
        let mut batch = Vec::new();
        let mut load = unstarted;
        let mut units = 0;
        while let Some(&(_, test)) = self.plans[worker].first() {
            let w = self.weight[test];
            let first_one = batch.is_empty() && needs;
            if !first_one && (batch.len() >= size || (self.any_known && load + w > budget)) {
                break;
            }
            self.unplan_test(worker, test);
            if batch.last().is_none_or(|&prev| self.unit_of[prev] != self.unit_of[test]) {
                units += 1;
            }
            batch.push(test);
            load += w;
        }
        if batch.is_empty() {
            return Answer::Later;
        }
        Answer::Run(self.send(worker, batch, units))
    }

    /// Count-sized batches: about pending / (4 · workers) tests, at most
    /// `MAX_BATCH`, so a big suite is not one round trip per test and the
    /// batches shrink as the queue drains.
    fn batch_size(&self) -> usize {
        (self.pending_tests / (self.initial_workers * 4)).clamp(1, MAX_BATCH)
    }

    /// Hands `batch` to `worker`.
    fn send(&mut self, worker: usize, batch: Vec<usize>, units: usize) -> Vec<usize> {
        for &t in &batch {
            self.place[t] = Place::Held(worker);
            self.last[worker] = self.last[worker].max(Some(t));
        }
        self.pending_tests -= batch.len();
        self.received[worker] += units;
        self.held[worker].extend(&batch);
        batch
    }

    /// Without history, at the start: `worker` already holds work and
    /// asks for more (prefetch), but what is pending is the fair share of
    /// workers that have not had theirs. It should ask again later (the
    /// caller retries after `tick`); nothing is held back after
    /// `FAIR_START_LIMIT`, or from a worker with nothing to run.
    pub fn must_wait(&self, worker: usize) -> bool {
        !self.held[worker].is_empty() && !self.pool.is_empty() && self.allowance(worker) == Some(0)
    }

    /// Units `worker` may take now without eating into the fair share still
    /// owed to the others; `None` when no fair start applies (any more).
    fn allowance(&self, worker: usize) -> Option<usize> {
        if self.fair_share == 0 || self.now >= FAIR_START_LIMIT || self.stopped {
            return None;
        }
        let owed: usize = (0..self.received.len())
            .filter(|&w| w != worker)
            .map(|w| self.fair_share.saturating_sub(self.received[w]))
            .sum();
        Some(self.pool.len().saturating_sub(owed))
    }

    /// Whole units from the pool's front that `worker` may run (after
    /// everything it has run), about `batch_size` tests and at most
    /// `max_units` units; returns the tests and the number of units.
    fn pool_batch(&mut self, worker: usize, max_units: usize) -> (Vec<usize>, usize) {
        let size = self.batch_size();
        let (mut batch, mut units) = (Vec::new(), 0);
        let mut position = 0;
        while batch.len() < size && units < max_units && position < self.pool.len() {
            let unit = self.pool[position];
            if !self.may_run(worker, unit) {
                position += 1;
                continue;
            }
            self.pool.remove(position);
            batch.extend(self.units[unit].iter().copied());
            units += 1;
        }
        (batch, units)
    }

    /// Whether `worker`'s process may run `unit` next under the order rule.
    fn may_run(&self, worker: usize, unit: usize) -> bool {
        self.may_run_after(self.last[worker], unit)
    }

    fn may_run_after(&self, last: Option<usize>, unit: usize) -> bool {
        self.order == Order::Longest || last.is_none_or(|last| self.first_left(unit) > last)
    }

    /// The lowest collection index of `unit`'s tests not yet finished.
    fn first_left(&self, unit: usize) -> usize {
        self.units[unit].iter().copied().find(|&t| self.place[t] != Place::Done).unwrap_or(usize::MAX)
    }

    /// Work stealing: units from the back of the plan of the worker expected
    /// to finish last, for `worker` (None: a fresh one), expected to be free
    /// after `free_in` seconds, as long as each unit moved brings the two
    /// finishing times closer; under `Order::Collection` only units after
    /// everything `worker` has run. Returns the victim and the tests to move.
    fn find_steal(&self, worker: Option<usize>, free_in: f64) -> Option<(usize, Vec<usize>)> {
        let last = worker.and_then(|w| self.last[w]);
        let mut victims: Vec<(usize, f64)> = (0..self.plans.len())
            .filter(|&v| Some(v) != worker && !self.plans[v].is_empty() && self.stealable[v])
            .map(|v| (v, self.remaining(v) + self.plan_weight[v]))
            .collect();
        victims.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (victim, finish) in victims {
            let mut moved = 0.0;
            let mut taken: Vec<usize> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for &(_, test) in self.plans[victim].iter().rev() {
                let unit = self.unit_of[test];
                if !seen.insert(unit) {
                    continue;
                }
                let tests = &self.units[unit];
                let here = |t: &usize| self.place[*t] == Place::Done || self.place[*t] == Place::Plan(victim);
                if !tests.iter().all(here) || !self.may_run_after(last, unit) {
                    continue;
                }
                let left = || tests.iter().copied().filter(|&t| self.place[t] != Place::Done);
                let w: f64 = left().map(|t| self.weight[t]).sum();
                if free_in + moved + w >= finish - moved {
                    break;
                }
                moved += w;
                taken.extend(left());
            }
            if !taken.is_empty() {
                taken.sort_unstable();
                return Some((victim, taken));
            }
        }
        None
    }

    fn steal(&mut self, worker: usize) {
        if let Some((victim, tests)) = self.find_steal(Some(worker), self.remaining(worker)) {
            for test in tests {
                self.unplan_test(victim, test);
                self.plan_test(worker, test);
            }
        }
    }

    /// A worker process has finished (it was told there is no more work):
    /// if the worker expected to finish last holds planned work that a
    /// fresh worker would take at a gain of at least `FRESH_GAIN` seconds,
    /// it moves to a new worker slot, whose number is returned (start a
    /// worker for it). Only a fresh process may take work from before what
    /// the finished ones ran; at most as many fresh slots as the run had
    /// workers.
    pub fn fresh_steal(&mut self) -> Option<usize> {
        if self.stopped || self.fresh_slots >= self.initial_workers || !self.any_known {
            return None;
        }
        let (victim, tests) = self.find_steal(None, 0.0)?;
        let gain: f64 = tests.iter().map(|&t| self.weight[t]).sum();
        if gain < FRESH_GAIN {
            return None;
        }
        self.fresh_slots += 1;
        let slot = self.add_worker();
        for test in tests {
            self.unplan_test(victim, test);
            self.plan_test(slot, test);
        }
        Some(slot)
    }

    /// Expected seconds of work `worker` still holds: its running test
    /// counts only what is left of it.
    fn remaining(&self, worker: usize) -> f64 {
        if worker >= self.held.len() {
            return 0.0;
        }
        let held: f64 = self.held[worker].iter().map(|&t| self.weight[t]).sum();
        let running = self.held[worker].front().map_or(0.0, |&t| self.weight[t]);
        held - (self.now - self.started[worker]).clamp(0.0, running)
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

    fn finish(&mut self, index: usize) -> bool {
        self.place[index] = Place::Done;
        !std::mem::replace(&mut self.done[index], true)
    }

    /// `worker` died: its first held test is the one it was running. The
    /// tests behind it go back to its slot's plan, for its replacement: a
    /// fresh fork, which may run them whatever the others ran.
    pub fn worker_lost(&mut self, worker: usize) -> Lost {
        let mut held = std::mem::take(&mut self.held[worker]);
        let in_flight = held.pop_front().filter(|&i| self.finish(i));
        self.last[worker] = None;
        if self.stopped {
            return Lost { in_flight, requeued: Vec::new(), dropped: held.into_iter().collect() };
        }
        let requeued: Vec<usize> = held.into_iter().collect();
        requeued.iter().for_each(|&t| self.plan_test(worker, t));
        self.pending_tests += requeued.len();
        Lost { in_flight, requeued, dropped: Vec::new() }
    }

    /// `worker` was retired (`--max-memory`) and finished its current test:
    /// the tests it still held go back to its slot's plan, for a fresh
    /// process in that slot (which may run anything, as after a crash).
    pub fn worker_retired(&mut self, worker: usize) -> Vec<usize> {
        let held: Vec<usize> = self.held[worker].drain(..).collect();
        self.last[worker] = None;
        if !self.stopped {
            held.iter().for_each(|&t| self.plan_test(worker, t));
            self.pending_tests += held.len();
        }
        held
    }
}

impl RunQueue {
    /// `--retries`: a finished test runs again, next, on whichever worker
    /// asks first. False after a stop (nothing more starts) or for a test
    /// that has not finished.
    pub fn retry(&mut self, index: usize) -> bool {
        if self.stopped || !self.done.get(index).copied().unwrap_or(false) {
            return false;
        }
        self.done[index] = false;
        self.place[index] = Place::Retry;
        self.retries.push_back(index);
        self.pending_tests += 1;
        true
    }

    /// A new worker slot (a fresh worker for retries once every other one
    /// has been told there is no more work, or for a fresh steal); returns
    /// its number.
    pub fn add_worker(&mut self) -> usize {
        self.fair_share = 0;
        self.received.push(0);
        self.held.push(VecDeque::new());
        self.plans.push(BTreeSet::new());
        self.plan_weight.push(0.0);
        self.last.push(None);
        self.stealable.push(true);
        self.started.push(self.now);
        self.held.len() - 1
    }

    /// `--rerun-isolated`: a finished test runs once more, alone, on a new
    /// worker slot (start a fresh worker for it); returns the slot.
    pub fn isolate(&mut self, test: usize) -> usize {
        let slot = self.add_worker();
        self.stealable[slot] = false;
        self.done[test] = false;
        self.plan_test(slot, test);
        self.pending_tests += 1;
        slot
    }

    /// Ends every test not yet finished (pending or held): the run cannot go on.
    pub fn drain_unfinished(&mut self) -> Vec<usize> {
        let mut left = self.pending_tests();
        self.stop();
        self.stopped = false;
        for held in &mut self.held {
            left.extend(held.drain(..));
        }
        left.retain(|&i| self.finish(i));
        left.sort_unstable();
        left
    }
}

/// Expected seconds per test: recorded, else the mean recorded duration
/// (0 when nothing is recorded).
fn expected(durations: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<f64> = durations.iter().flatten().copied().collect();
    let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    durations.iter().map(|d| d.unwrap_or(mean) + PER_TEST_OVERHEAD).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn singles(n: usize) -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![i]).collect()
    }

    #[test]
    fn without_history_the_pool_keeps_collection_order() {
        let mut q = RunQueue::new(vec![None; 3], singles(3), 2, Order::Longest);
        assert_eq!(q.next_batch(0), vec![0]);
        assert_eq!(q.next_batch(1), vec![1]);
        assert_eq!(q.next_batch(0), vec![2]);
    }

    #[test]
    fn batches_shrink_and_cover_everything_once() {
        let mut q = RunQueue::per_test(vec![None; 100], 2);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let b = q.next_batch(seen.len() % 2);
            if b.is_empty() {
                break;
            }
            sizes.push(b.len());
            seen.extend(b);
        }
        assert_eq!(sizes[0], 12);
        assert_eq!(*sizes.last().unwrap(), 1);
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    /// Workers ask for a second test at once (pytest needs the next one);
    /// the first to connect must not take the others' share.
    #[test]
    fn without_history_every_worker_gets_its_fair_share_first() {
        let mut q = RunQueue::per_test(vec![None; 8], 4);
        let mut got = vec![Vec::new(); 4];
        for (worker, held) in got.iter_mut().enumerate() {
            // Each asks until it holds two, then once more (after a test).
            held.extend(q.next_batch(worker));
            assert!(!q.must_wait(worker), "gw{worker} may prefetch its second test");
            held.extend(q.next_batch(worker));
            if worker < 3 {
                assert!(q.complete(worker, held[0]));
                assert!(q.must_wait(worker), "gw{worker} waits: the rest is the others' share");
                assert_eq!(q.answer(worker), Answer::Later);
            }
        }
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 2]);
        assert!(!q.has_pending());
    }

    #[test]
    fn the_fair_start_ends_after_its_limit_and_never_applies_with_history() {
        let mut q = RunQueue::per_test(vec![None; 8], 4);
        q.next_batch(0);
        q.next_batch(0);
        assert!(q.must_wait(0));
        q.tick(FAIR_START_LIMIT);
        assert!(!q.must_wait(0), "a worker that never connects does not hold the others back");
        let mut known = RunQueue::per_test(vec![Some(0.01); 8], 4);
        known.next_batch(0);
        known.next_batch(0);
        assert!(!known.must_wait(0));
        let mut one = RunQueue::per_test(vec![None; 8], 1);
        one.next_batch(0);
        assert!(!one.must_wait(0));
    }

    #[test]
    fn long_tests_travel_alone_and_short_ones_in_batches() {
        let mut d = vec![Some(0.001); 50];
        d[0] = Some(2.0);
        let mut q = RunQueue::per_test(d, 1);
        assert_eq!(q.next_batch(0), vec![0]);
        assert!(q.complete(0, 0));
        assert!(q.next_batch(0).len() > 1);
    }

    #[test]
    fn a_worker_holding_enough_is_answered_after_its_next_test() {
        // With history, a worker holds its running test, its next one and
        // at most PREFETCH_SECS more: the rest stays stealable.
        let mut q = RunQueue::new(vec![Some(0.05); 8], singles(8), 2, Order::Collection);
        let Answer::Run(first) = q.answer(0) else { panic!() };
        assert_eq!(first, vec![0]);
        let Answer::Run(second) = q.answer(0) else { panic!() };
        assert_eq!(second, vec![2]);
        assert_eq!(q.answer(0), Answer::Later, "running 0, next 2: enough");
        assert!(q.complete(0, 0));
        assert_eq!(q.answer(0), Answer::Run(vec![4]));
    }

    #[test]
    fn a_lost_worker_finishes_its_running_test_and_its_replacement_gets_the_rest() {
        let mut q = RunQueue::per_test(vec![None; 200], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        let lost = q.worker_lost(0);
        assert_eq!(lost.in_flight, Some(batch[1]));
        assert_eq!(lost.requeued, batch[2..].to_vec());
        let other = q.next_batch(1);
        assert!(other.iter().all(|t| !batch.contains(t)), "the others keep their order");
        let mut again = Vec::new();
        while again.len() < batch.len() - 2 {
            again.extend(q.next_batch(0));
        }
        assert_eq!(again[..batch.len() - 2], batch[2..]);
    }

    #[test]
    fn a_retired_workers_unstarted_tests_wait_in_its_slot_for_a_fresh_process() {
        let mut q = RunQueue::per_test(vec![None; 40], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        assert_eq!(q.worker_retired(0), batch[1..].to_vec());
        assert_eq!(q.next_batch(0), batch[1..].to_vec(), "the fresh process runs them, in order");
    }

    #[test]
    fn duplicate_and_stray_reports_are_not_counted() {
        let mut q = RunQueue::per_test(vec![None; 40], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        assert!(!q.complete(0, batch[0]));
        assert!(!q.complete(1, batch[1]));
        assert!(!q.complete(7, batch[1]));
    }

    #[test]
    fn draining_ends_everything_left() {
        let mut q = RunQueue::per_test(vec![Some(0.01); 10], 2);
        let b = q.next_batch(0);
        q.complete(0, b[0]);
        assert_eq!(q.drain_unfinished().len(), 9);
        assert!(q.is_finished());
    }

    #[test]
    fn a_stop_drops_pending_and_releases_held_tests() {
        let mut q = RunQueue::per_test(vec![None; 100], 2);
        let a = q.next_batch(0);
        let b = q.next_batch(1);
        assert!(q.complete(0, a[0]));
        assert_eq!(q.stop(), 100 - a.len() - b.len());
        assert!(q.next_batch(0).is_empty());
        assert_eq!(q.answer(0), Answer::NoMore);
        assert_eq!(q.release(0), a[1..].to_vec());
        assert!(!q.is_finished(), "worker 1 still holds tests");
        let lost = q.worker_lost(1);
        assert_eq!(lost.in_flight, Some(b[0]));
        assert!(lost.requeued.is_empty(), "a stopped run requeues nothing");
        assert!(q.is_finished());
    }

    #[test]
    fn release_without_a_stop_keeps_held_tests() {
        let mut q = RunQueue::per_test(vec![None; 10], 1);
        let a = q.next_batch(0);
        assert!(q.release(0).is_empty());
        assert!(q.complete(0, a[0]));
    }

    #[test]
    fn finishes_when_every_test_is_done_or_crashed() {
        let mut q = RunQueue::per_test(vec![None; 3], 1);
        let b = q.next_batch(0);
        assert_eq!(b.len(), 1);
        q.worker_lost(0);
        while q.has_pending() {
            for i in q.next_batch(0) {
                q.complete(0, i);
            }
        }
        assert!(q.is_finished());
    }

    #[test]
    fn the_plan_is_lpt_and_each_worker_runs_its_share_in_collection_order() {
        // 4 long tests and 8 short ones on 2 workers: LPT gives 3 + 1 and
        // 2 + 2 (shorts spread), each share then runs by collection index.
        let mut d = vec![Some(0.01); 8];
        d.extend([Some(1.0), Some(3.0), Some(2.0), Some(2.0)]);
        let mut q = RunQueue::new(d, singles(12), 2, Order::Collection);
        let plan = |q: &RunQueue, w: usize| q.plans[w].iter().map(|&(_, t)| t).collect::<Vec<_>>();
        assert_eq!(plan(&q, 0), vec![0, 2, 4, 6, 8, 9]);
        assert_eq!(plan(&q, 1), vec![1, 3, 5, 7, 10, 11]);
        let mut ran = Vec::new();
        loop {
            let b = q.next_batch(1);
            if b.is_empty() {
                break;
            }
            b.iter().for_each(|&i| assert!(q.complete(1, i)));
            ran.extend(b);
        }
        assert_eq!(ran, vec![1, 3, 5, 7, 10, 11], "then nothing of worker 0's: all before 11");
    }

    #[test]
    fn longest_first_is_the_explicit_order() {
        let d = vec![Some(0.01), Some(0.01), Some(0.5), Some(0.2), Some(0.2), Some(0.2)];
        let units = vec![vec![0, 1], vec![2], vec![3, 4, 5]];
        let mut q = RunQueue::new(d, units, 1, Order::Longest);
        let mut order = Vec::new();
        while q.has_pending() {
            let b = q.next_batch(0);
            b.iter().for_each(|&i| assert!(q.complete(0, i)));
            order.extend(b);
        }
        assert_eq!(order, vec![3, 4, 5, 2, 0, 1]);
    }

    #[test]
    fn failed_or_new_tests_go_first_under_longest_first() {
        let d = vec![Some(0.5), Some(0.01), Some(2.0), Some(0.2), Some(1.0)];
        let mut q = RunQueue::per_test(d, 1);
        q.put_first(&[false, true, false, true, false]);
        let order: Vec<usize> = std::iter::from_fn(|| {
            let b = q.next_batch(0);
            b.iter().for_each(|&i| assert!(q.complete(0, i)));
            (!b.is_empty()).then_some(b)
        })
        .flatten()
        .collect();
        assert_eq!(order, vec![3, 1, 2, 4, 0]);
    }

    #[test]
    fn running_tests_and_expected_work_left() {
        let mut q = RunQueue::per_test(vec![Some(1.0), Some(2.0), None], 2);
        assert!((q.expected_left() - (4.5 + 3.0 * PER_TEST_OVERHEAD)).abs() < 1e-9);
        q.tick(0.5);
        let a = q.next_batch(0);
        assert_eq!(q.running(), vec![(0, a[0], 0.5)]);
        assert!(q.complete(0, a[0]));
        assert!(q.expected_left() < 4.5);
    }

    #[test]
    fn trivial_tests_share_the_pool_in_collection_order() {
        // Microsecond durations: a plan would split by their noise, and
        // under collection order its misestimate could not be stolen back.
        let durations = (0..100).map(|i| Some(1e-5 * (1 + i % 7) as f64)).collect();
        let mut q = RunQueue::new(durations, singles(100), 2, Order::Collection);
        let first = q.next_batch(0);
        assert_eq!(first, (0..first.len()).collect::<Vec<_>>());
        assert_eq!(q.next_batch(1)[0], first.len());
    }

    #[test]
    fn a_heavy_unit_is_planned() {
        let mut durations = vec![Some(0.001); 100];
        durations[99] = Some(1.0);
        let mut q = RunQueue::new(durations, singles(100), 2, Order::Collection);
        // The plan gives the heavy last test a worker of its own.
        assert_eq!(q.next_batch(0), vec![99]);
        assert_eq!(q.next_batch(1)[0], 0);
    }

    #[test]
    fn collection_order_ignores_durations() {
        let mut q = RunQueue::new(vec![Some(0.01), Some(5.0)], singles(2), 1, Order::Collection);
        assert_eq!(q.next_batch(0), vec![0]);
        assert_eq!(q.next_batch(0), vec![1]);
    }

    #[test]
    fn a_big_unit_is_not_cut_to_the_batch_size() {
        let mut q = RunQueue::new(vec![None; 100], vec![(0..100).collect()], 4, Order::Longest);
        assert_eq!(q.next_batch(0).len(), 100);
    }

    #[test]
    fn a_lost_worker_requeues_its_tests_in_order_for_its_replacement() {
        let units = vec![vec![0, 1, 2], vec![3, 4]];
        let mut q = RunQueue::new(vec![None; 5], units, 1, Order::Collection);
        assert_eq!(q.next_batch(0), vec![0, 1, 2]);
        assert_eq!(q.next_batch(0), vec![3, 4]);
        let lost = q.worker_lost(0);
        assert_eq!((lost.in_flight, lost.requeued), (Some(0), vec![1, 2, 3, 4]));
        let again: Vec<usize> =
            std::iter::from_fn(|| Some(q.next_batch(0)).filter(|b| !b.is_empty())).flatten().collect();
        assert_eq!(again, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_retried_test_runs_next_once_more() {
        let mut q = RunQueue::per_test(vec![None; 3], 1);
        let b = q.next_batch(0);
        assert_eq!(b, vec![0]);
        assert!(!q.retry(0), "not finished yet");
        assert!(q.complete(0, 0));
        assert!(q.retry(0));
        assert_eq!(q.next_batch(0), vec![0]);
        assert!(q.complete(0, 0));
        let w = q.add_worker();
        assert_eq!(w, 1);
        while q.has_pending() {
            for i in q.next_batch(w) {
                assert!(q.complete(w, i));
            }
        }
        assert!(q.is_finished());
        q.stop();
        assert!(!q.retry(1), "a stopped run retries nothing");
    }

    #[test]
    fn an_idle_worker_steals_only_what_comes_after_what_it_ran() {
        // Plans: worker 0 {0, 5}, worker 1 {1, 2, 3, 4}. Worker 0 runs its
        // 3 s test; worker 1, done with 4, takes 5 from it.
        let d = [3.0, 1.0, 1.0, 0.5, 0.5, 0.5].map(Some).to_vec();
        let mut q = RunQueue::new(d, singles(6), 2, Order::Collection);
        assert_eq!(q.answer(0), Answer::Run(vec![0]));
        for t in 1..5 {
            assert_eq!(q.next_batch(1), vec![t]);
            assert!(q.complete(1, t));
        }
        assert_eq!(q.next_batch(1), vec![5], "stolen: it follows 4");
        assert!(q.complete(1, 5));
        assert!(q.next_batch(1).is_empty());
        assert_eq!(q.answer(0), Answer::NoMore);
    }

    #[test]
    fn what_comes_before_goes_to_a_fresh_worker() {
        // Plans {0, 2, 4, 6} and {1, 3, 5, 7}; worker 0 is stuck in test 0
        // while worker 1 runs its whole plan: 2, 4 and 6 come before 7, so
        // worker 1 may not take them, but a fresh worker may.
        let mut q = RunQueue::new(vec![Some(1.0); 8], singles(8), 2, Order::Collection);
        assert_eq!(q.answer(0), Answer::Run(vec![0]));
        for t in [1, 3, 5, 7] {
            assert_eq!(q.next_batch(1), vec![t]);
            assert!(q.complete(1, t));
        }
        assert!(q.next_batch(1).is_empty(), "2, 4 and 6 come before what it ran");
        let fresh = q.fresh_steal().expect("1 s of work is worth a fork");
        assert_eq!(q.next_batch(fresh), vec![4], "the back half of worker 0's plan, in order");
        assert_eq!(q.next_batch(fresh), vec![6]);
        assert_eq!(q.next_batch(0), vec![2]);
    }

    #[test]
    fn an_isolated_rerun_goes_alone_to_a_new_slot_nobody_steals_from() {
        let mut q = RunQueue::new(vec![Some(0.5); 4], singles(4), 1, Order::Collection);
        for t in 0..4 {
            assert_eq!(q.next_batch(0), vec![t]);
            assert!(q.complete(0, t));
        }
        assert!(q.is_finished());
        let slot = q.isolate(2);
        assert_eq!(slot, 1);
        assert!(q.next_batch(0).is_empty(), "worker 0 may not take it");
        assert_eq!(q.fresh_steal(), None);
        assert_eq!(q.answer(slot), Answer::Run(vec![2]));
        assert_eq!(q.answer(slot), Answer::NoMore);
        assert!(q.complete(slot, 2));
        assert!(q.is_finished());
    }

    #[test]
    fn a_run_gets_no_more_workers_than_units_and_one_worker_keeps_collection_order() {
        let tests = [("a.py::t1", None), ("a.py::t2", None), ("b.py::t3", None)];
        let d = vec![Some(0.01), Some(0.02), Some(5.0)];
        assert_eq!(RunQueue::for_run(&tests, d.clone(), DistMode::LoadFile, 4, Order::Collection).workers(), 2);
        let mut q = RunQueue::for_run(&tests, d, DistMode::Load, 1, Order::Longest);
        assert_eq!(q.next_batch(0), vec![0]);
    }

    // ---- A simulation of the real protocol -------------------------------

    /// One worker process in the simulation.
    #[derive(Debug)]
    struct Proc {
        slot: usize,
        start: f64,
        local: VecDeque<usize>,
        running: Option<usize>,
        until: f64,
        asked: bool,
        no_more: bool,
        ended: Option<f64>,
        ran: Vec<usize>,
    }

    /// What a simulated run did.
    #[derive(Debug)]
    struct Outcome {
        makespan: f64,
        /// Per process: finishing time and the tests it started, in order.
        ends: Vec<f64>,
        sequences: Vec<Vec<usize>>,
        completed: Vec<usize>,
    }

    const FORK: f64 = 0.005;

    fn apply(q: &mut RunQueue, p: &mut Proc) {
        match q.answer(p.slot) {
            Answer::Run(batch) => {
                p.local.extend(batch);
                p.asked = false;
            }
            Answer::NoMore => {
                p.no_more = true;
                p.asked = false;
            }
            Answer::Later => {}
        }
    }

    /// Simulates the workers of `worker.py` against the queue as the
    /// scheduler actor drives it: a worker holds its running test and the
    /// next (nextitem), asks for more while it holds two or fewer, waits for
    /// the answer only when it has no next test; an answer that is `Later`
    /// is given again after every finished test; a worker told there is no
    /// more ends, and the scheduler then offers a fresh steal. `actual` are
    /// the real durations; `crash` kills the process of a slot at a time.
    fn simulate(q: &mut RunQueue, actual: &[f64], crash: Option<(usize, f64)>) -> Outcome {
        let mut procs: Vec<Proc> = (0..q.workers()).map(|w| new_proc(w, w as f64 * 0.002)).collect();
        let mut now = 0.0f64;
        let mut crash = crash;
        let mut completed = Vec::new();
        for step in 0.. {
            assert!(step < 200_000, "the simulation does not end: {procs:?}");
            // Everyone acts at `now` until nothing changes.
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..procs.len() {
                    if let Some(fresh) = act(q, &mut procs[i], now, actual, &mut changed) {
                        procs.push(new_proc(fresh, now + FORK));
                    }
                }
            }
            let live = || procs.iter().filter(|p| p.ended.is_none());
            let running = live().filter(|p| p.running.is_some()).map(|p| p.until);
            let starting = live().filter(|p| p.running.is_none() && p.start > now).map(|p| p.start);
            let mut next = running.chain(starting).fold(f64::INFINITY, f64::min);
            if let Some((_, at)) = crash {
                next = next.min(at.max(now));
            }
            if next == f64::INFINITY {
                if live().next().is_none() {
                    break;
                }
                next = now + 0.1; // all wait for the fair start: the scheduler's retry
            }
            now = next;
            q.tick(now);
            if let Some((slot, _)) = crash.filter(|&(_, at)| at <= now) {
                crash = None;
                if let Some(p) = procs.iter_mut().find(|p| p.slot == slot && p.ended.is_none()) {
                    p.ended = Some(now);
                    p.running = None;
                    let lost = q.worker_lost(slot);
                    completed.extend(lost.in_flight);
                    if q.has_pending() {
                        procs.push(new_proc(slot, now + FORK));
                    }
                }
            }
            for p in procs.iter_mut().filter(|p| p.running.is_some() && p.until <= now) {
                let test = p.running.take().unwrap();
                assert!(q.complete(p.slot, test), "test {test} completes once");
                completed.push(test);
            }
            for p in procs.iter_mut().filter(|p| p.asked && p.ended.is_none()) {
                apply(q, p);
            }
        }
        assert!(q.is_finished(), "every test ran");
        let ends: Vec<f64> = procs.iter().map(|p| p.ended.unwrap_or(now)).collect();
        let makespan = ends.iter().copied().fold(0.0, f64::max);
        let sequences = procs.into_iter().map(|p| p.ran).collect();
        return Outcome { makespan, ends, sequences, completed };

        fn new_proc(slot: usize, start: f64) -> Proc {
            let (local, running, ran) = (VecDeque::new(), None, Vec::new());
            Proc { slot, start, local, running, until: 0.0, asked: false, no_more: false, ended: None, ran }
        }

        /// The worker loop at `now`; returns a fresh slot to start.
        fn act(q: &mut RunQueue, p: &mut Proc, now: f64, actual: &[f64], changed: &mut bool) -> Option<usize> {
            if p.ended.is_some() || p.running.is_some() || p.start > now {
                return None;
            }
            while p.local.len() < 2 && !p.no_more {
                let had = p.local.len();
                if !p.asked {
                    p.asked = true;
                    apply(q, p);
                }
                if p.local.len() == had && !p.no_more {
                    return None; // waits for the answer
                }
            }
            *changed = true;
            let Some(test) = p.local.pop_front() else {
                p.ended = Some(now);
                return q.fresh_steal();
            };
            if p.local.len() <= 1 && !p.asked && !p.no_more {
                p.asked = true;
                apply(q, p);
            }
            p.running = Some(test);
            p.until = now + actual[test];
            p.ran.push(test);
            None
        }
    }

    fn run_sim(q: &mut RunQueue, actual: &[f64], crash: Option<(usize, f64)>) -> Outcome {
        simulate(q, actual, crash)
    }

    /// A small deterministic generator for the duration sets.
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn increasing(sequence: &[usize]) -> bool {
        sequence.windows(2).all(|p| p[0] < p[1])
    }

    fn lpt_plan(weights: &[f64], workers: usize) -> f64 {
        let order = crate::lpt::heaviest_first(weights, |i| i);
        crate::lpt::assign(&order, weights, workers).1.into_iter().fold(0.0, f64::max)
    }

    /// Duration sets: the bench's skewed suite, the mixed suite,
    /// uniform, and bimodal.
    fn duration_sets() -> Vec<(&'static str, Vec<f64>)> {
        let mut seed = 7;
        let mut skewed: Vec<f64> = (0..494).map(|_| 0.002 + 0.006 * lcg(&mut seed)).collect();
        for (at, long) in [(40, 1.2), (90, 1.0), (200, 0.9), (260, 0.8), (300, 0.6), (480, 0.5)] {
            skewed.insert(at, long);
        }
        let mixed = (0..500)
            .map(|_| {
                let r = lcg(&mut seed);
                if r < 0.9 {
                    0.001
                } else if r < 0.97 {
                    0.05
                } else if lcg(&mut seed) < 0.5 {
                    0.2
                } else {
                    0.3
                }
            })
            .collect();
        let uniform = (0..200).map(|_| 0.01 + 0.09 * lcg(&mut seed)).collect();
        let bimodal = (0..300)
            .map(|_| if lcg(&mut seed) < 0.9 { 0.001 + 0.004 * lcg(&mut seed) } else { 0.2 + 0.2 * lcg(&mut seed) })
            .collect();
        vec![("skewed", skewed), ("mixed", mixed), ("uniform", uniform), ("bimodal", bimodal)]
    }

    #[test]
    fn prefetching_workers_finish_within_five_percent_of_the_lpt_plan() {
        for order in [Order::Collection, Order::Longest] {
            for (name, expected) in duration_sets() {
                for noise in [0.0, 0.1] {
                    let mut seed = 11;
                    let actual: Vec<f64> =
                        expected.iter().map(|d| d * (1.0 - noise + 2.0 * noise * lcg(&mut seed))).collect();
                    let history = expected.iter().map(|&d| Some(d)).collect();
                    let mut q = RunQueue::new(history, singles(expected.len()), 4, order);
                    let out = run_sim(&mut q, &actual, None);
                    let plan = lpt_plan(&actual, 4);
                    assert!(
                        out.makespan <= 1.05 * plan,
                        "{name} {order:?} noise {noise}: makespan {:.3} vs LPT plan {plan:.3}, ends {:?}",
                        out.makespan,
                        out.ends
                    );
                    if order == Order::Collection {
                        assert!(out.sequences.iter().all(|s| increasing(s)), "{name}: {:?}", out.sequences);
                    }
                }
            }
        }
    }

    #[test]
    fn equal_tests_without_history_split_within_one_of_even() {
        for workers in 1..=8 {
            for n in [workers, 8, 9, 20, 37, 64, 100] {
                let mut q = RunQueue::new(vec![None; n], singles(n), workers, Order::Collection);
                let out = run_sim(&mut q, &vec![1.0; n], None);
                let counts: Vec<usize> = out.sequences.iter().map(Vec::len).collect();
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 1, "{n} tests on {workers}: {counts:?} {:?}", out.sequences);
                assert!(out.sequences.iter().all(|s| increasing(s)));
            }
        }
        let mut q = RunQueue::new(vec![None; 8], singles(8), 4, Order::Collection);
        let out = run_sim(&mut q, &[1.0; 8], None);
        assert!(out.makespan < 2.1, "8 equal 1 s tests on 4 workers take about 2 s: {}", out.makespan);
    }

    fn grouped(sizes: &[usize]) -> Vec<Vec<usize>> {
        let mut next = 0;
        sizes
            .iter()
            .map(|&s| {
                next += s;
                (next - s..next).collect()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// For random durations and groupings, with or without history,
        /// with work stealing, fresh steals and a crash: every test finishes
        /// once and every process runs its tests in collection order.
        #[test]
        fn every_worker_runs_an_increasing_sequence(
            durations in prop::collection::vec(0.001f64..0.5, 1..120),
            group_sizes in prop::collection::vec(1usize..5, 1..120),
            workers in 1usize..6,
            known in 0u8..3,
            crash in prop::option::of((0usize..6, 0.0f64..3.0)),
            noise_seed in 0u64..1000,
        ) {
            let n = durations.len();
            let mut sizes = Vec::new();
            let mut left = n;
            for s in group_sizes.iter().cycle() {
                if left == 0 { break; }
                let s = (*s).min(left);
                sizes.push(s);
                left -= s;
            }
            let units = grouped(&sizes);
            let history: Vec<Option<f64>> = durations
                .iter()
                .enumerate()
                .map(|(i, &d)| match known { 0 => None, 1 if i % 3 == 0 => None, _ => Some(d) })
                .collect();
            let mut seed = noise_seed;
            let actual: Vec<f64> = durations.iter().map(|d| d * (0.5 + lcg(&mut seed))).collect();
            let workers = workers.min(units.len());
            let mut q = RunQueue::new(history, units, workers, Order::Collection);
            let crash = crash.filter(|&(w, _)| w < workers);
            let out = run_sim(&mut q, &actual, crash);
            for s in &out.sequences {
                prop_assert!(increasing(s), "{:?}", out.sequences);
            }
            let mut completed = out.completed.clone();
            completed.sort_unstable();
            prop_assert_eq!(completed, (0..n).collect::<Vec<_>>());
        }
    }
}
