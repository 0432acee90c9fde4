//! The run's queue of tests: what is pending, what each worker holds, what
//! is done. Plain logic, no actors, so every rule is unit-tested.
//!
//! Work travels in *units*: a test alone (`--dist load`) or a group that
//! must stay on one worker (a module, class, file or `xdist_group`, see
//! `dist.rs`). Dispatch is pull-based: a worker asks when its local queue
//! runs low and gets a batch of whole units. Batches shrink as the queue
//! drains (so the tail balances) and a unit known to be long travels alone.
//!
//! The order is LPT in pull form: units sorted by summed duration, longest
//! first, each to whichever worker asks next (the least-loaded one, since a
//! worker asks when it runs dry). Workers also ask before they run dry
//! (pytest needs the next test to plan fixture teardown, and prefetching
//! hides the round trip), so while long units lead the queue, an asker gets
//! the unit an LPT plan from every worker's held work assigns to it.
//!
//! A test without history counts as the mean known duration, so a new test
//! is neither starved nor assumed huge; when nothing is known the order is
//! collection order, handed out in small batches to whoever asks:
//! round-robin in effect. Then, at the start, a worker that asks again
//! (prefetching) while others have not had their fair share yet (units /
//! workers) waits for them, for up to `FAIR_START_LIMIT`: the first worker
//! to connect would otherwise take the next worker's tests (8 equal tests
//! on 4 workers went 3/2/0/3 where xdist gives 2/2/2/2). With one worker, or `--dist no`, the order is
//! always collection order: LPT gains nothing there, and pytest's order
//! sets each module fixture up once.

use std::collections::VecDeque;

use crate::dist::{self, DistMode};

/// Units whose known durations add up to this (seconds) are dispatched alone.
const LONG_UNIT: f64 = 0.1;
const MAX_BATCH: usize = 32;
/// Seconds (on the queue's clock) that early workers hold back for the
/// others' fair share; a worker that has not connected by then loses it.
pub const FAIR_START_LIMIT: f64 = 2.0;

/// How pending units are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Longest first (LPT), by recorded durations.
    Longest,
    /// As collected.
    Collection,
}

/// Tests that go to one worker together, in collection order.
#[derive(Debug, Clone, PartialEq)]
struct Unit {
    tests: Vec<usize>,
    /// Known durations add up to `LONG_UNIT` or more.
    long: bool,
    /// Expected seconds: known durations, unknown tests at the mean.
    weight: f64,
}

#[derive(Debug)]
pub struct RunQueue {
    pending: VecDeque<Unit>,
    pending_tests: usize,
    /// Per worker slot: tests sent and not yet finished, in run order.
    held: Vec<VecDeque<usize>>,
    /// The unit each test was dispatched in, to requeue a lost worker's
    /// tests without splitting or merging units.
    unit_of: Vec<usize>,
    /// Per test: recorded seconds (0 when unknown), and expected seconds
    /// (unknown at the mean recorded duration).
    known: Vec<f64>,
    weight: Vec<f64>,
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
}

/// What a lost worker leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Lost {
    /// The test it was running (the first it held), now finished as crashed.
    pub in_flight: Option<usize>,
    /// Tests it held behind that one, back at the front of the queue.
    pub requeued: Vec<usize>,
    /// Tests it held behind that one after a stop: they never start.
    pub dropped: Vec<usize>,
}

impl RunQueue {
    /// `durations[i]` is test i's recorded duration, if any; `units` partition
    /// the tests (every test in exactly one unit).
    pub fn new(durations: Vec<Option<f64>>, units: Vec<Vec<usize>>, workers: usize, order: Order) -> Self {
        let mut unit_of = vec![0; durations.len()];
        for (u, tests) in units.iter().enumerate() {
            tests.iter().for_each(|&t| unit_of[t] = u);
        }
        let known: Vec<f64> = durations.iter().map(|d| d.unwrap_or(0.0)).collect();
        let weight = expected(&durations);
        let ordered = match order {
            Order::Longest => lpt_order(&durations, &units),
            Order::Collection => (0..units.len()).collect(),
        };
        let pending: VecDeque<Unit> =
            ordered.into_iter().map(|u| make_unit(units[u].clone(), &known, &weight)).collect();
        let nothing_known = known.iter().all(|&k| k == 0.0);
        let fair_share = if order == Order::Longest && nothing_known { pending.len() / workers.max(1) } else { 0 };
        RunQueue {
            pending,
            pending_tests: durations.len(),
            held: vec![VecDeque::new(); workers],
            unit_of,
            known,
            weight,
            order,
            now: 0.0,
            started: vec![0.0; workers],
            done: vec![false; durations.len()],
            stopped: false,
            received: vec![0; workers],
            fair_share,
        }
    }

    /// The queue for a run: `tests` are (node id, xdist_group) in collection
    /// order, grouped into units by `mode`. Never more worker slots than
    /// units: a worker with nothing to do is not worth forking.
    pub fn for_run(
        tests: &[(&str, Option<&str>)],
        durations: Vec<Option<f64>>,
        mode: DistMode,
        workers: usize,
    ) -> Self {
        let units = dist::units(mode, tests);
        let workers = workers.min(units.len()).max(1);
        let order = if workers == 1 || mode == DistMode::No { Order::Collection } else { Order::Longest };
        RunQueue::new(durations, units, workers, order)
    }

    /// pytest's `--ff`/`--nf`: units holding a test marked in `first` go
    /// before all others, each group still longest first. (In collection
    /// order pytest's own reordering already put them first.)
    pub fn put_first(&mut self, first: &[bool]) {
        let (front, back): (Vec<Unit>, Vec<Unit>) =
            self.pending.drain(..).partition(|unit| unit.tests.iter().any(|&t| first[t]));
        self.pending = front.into_iter().chain(back).collect();
    }

    /// Worker slots the queue serves.
    pub fn workers(&self) -> usize {
        self.held.len()
    }

    /// One unit per test, in the given order (`--dist load`).
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
        self.pending.is_empty() && self.held.iter().all(VecDeque::is_empty)
    }

    /// The run is stopping (-x, --maxfail, an interrupt): pending tests will
    /// not start. Returns how many were dropped.
    pub fn stop(&mut self) -> usize {
        self.stopped = true;
        let dropped = self.pending_tests;
        self.pending.clear();
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
        self.pending.iter().flat_map(|u| u.tests.iter().copied()).collect()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next batch for `worker`: whole units, about pending/(4·workers)
    /// tests; while long units lead the queue, the one unit LPT plans for
    /// this worker. Empty when nothing is left to hand out.
    pub fn next_batch(&mut self, worker: usize) -> Vec<usize> {
        if self.held[worker].is_empty() {
            self.started[worker] = self.now;
        }
        let long_ahead = self.pending.front().is_some_and(|unit| unit.long);
        let (batch, units) = if self.order == Order::Longest && long_ahead {
            (self.planned_unit(worker), 1)
        } else {
            self.front_batch(self.allowance(worker).unwrap_or(usize::MAX).max(1))
        };
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
        !self.held[worker].is_empty() && !self.pending.is_empty() && self.allowance(worker) == Some(0)
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
        Some(self.pending.len().saturating_sub(owed))
    }

    /// Pull-form LPT gives the next longest unit to the worker that will be
    /// free first. But a worker also asks while it still holds work (to learn
    /// pytest's `nextitem`, or to prefetch), so the asker is not always that
    /// worker. Plan forward from what every worker holds: pending units in
    /// order, each to the least-loaded worker (the asker on ties); the asker
    /// gets the first unit planned for it. If the plan never reaches it,
    /// the shortest unit (it still needs a next test).
    fn planned_unit(&mut self, worker: usize) -> Vec<usize> {
        let mut loads: Vec<f64> = (0..self.held.len()).map(|w| self.remaining(w)).collect();
        for position in 0..self.pending.len() {
            let least = (0..loads.len()).min_by(|&a, &b| loads[a].total_cmp(&loads[b])).unwrap_or(worker);
            if loads[worker] <= loads[least] {
                return self.pending.remove(position).map_or_else(Vec::new, |unit| unit.tests);
            }
            loads[least] += self.pending[position].weight;
        }
        self.pending.pop_back().map_or_else(Vec::new, |unit| unit.tests)
    }

    /// Expected seconds of work `worker` still holds: its running test
    /// counts only what is left of it.
    fn remaining(&self, worker: usize) -> f64 {
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

    /// Whole units from the front, about pending/(4·workers) tests and at
    /// most `max_units` units; returns the tests and the number of units.
    fn front_batch(&mut self, max_units: usize) -> (Vec<usize>, usize) {
        let workers = self.held.len().max(1);
        let size = (self.pending_tests / (workers * 4)).clamp(1, MAX_BATCH);
        let (mut batch, mut units) = (Vec::new(), 0);
        while batch.len() < size && units < max_units {
            let Some(next) = self.pending.front() else { break };
            if next.long && !batch.is_empty() {
                break;
            }
            let unit = self.pending.pop_front().unwrap();
            batch.extend(unit.tests);
            units += 1;
            if unit.long {
                break;
            }
        }
        (batch, units)
    }

    /// Marks `index` finished on `worker`. False if it was not held there
    /// (a duplicate or stray report), which the caller must not count.
    pub fn complete(&mut self, worker: usize, index: usize) -> bool {
        let Some(pos) = self.held[worker].iter().position(|&i| i == index) else { return false };
        self.held[worker].remove(pos);
        self.started[worker] = self.now;
        self.finish(index)
    }

    fn finish(&mut self, index: usize) -> bool {
        !std::mem::replace(&mut self.done[index], true)
    }

    /// `worker` died: its first held test is the one it was running. The
    /// tests behind it go back to the front, still grouped by unit.
    pub fn worker_lost(&mut self, worker: usize) -> Lost {
        let mut held = std::mem::take(&mut self.held[worker]);
        let in_flight = held.pop_front().filter(|&i| self.finish(i));
        let (requeued, dropped): (Vec<usize>, Vec<usize>) = if self.stopped {
            (Vec::new(), held.into_iter().collect())
        } else {
            (held.into_iter().collect(), Vec::new())
        };
        self.requeue_front(&requeued);
        Lost { in_flight, requeued, dropped }
    }

    /// `worker` was retired (memory) and finished its current test: the
    /// tests it still held go back to the front for the others.
    pub fn worker_retired(&mut self, worker: usize) -> Vec<usize> {
        let held: Vec<usize> = self.held[worker].drain(..).collect();
        if !self.stopped {
            self.requeue_front(&held);
        }
        held
    }

    fn requeue_front(&mut self, requeued: &[usize]) {
        let mut pieces: Vec<Vec<usize>> = Vec::new();
        for &test in requeued {
            match pieces.last_mut() {
                Some(piece) if self.unit_of[piece[0]] == self.unit_of[test] => piece.push(test),
                _ => pieces.push(vec![test]),
            }
        }
        for piece in pieces.into_iter().rev() {
            self.pending.push_front(make_unit(piece, &self.known, &self.weight));
        }
        self.pending_tests += requeued.len();
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
        self.pending.push_front(make_unit(vec![index], &self.known, &self.weight));
        self.pending_tests += 1;
        true
    }

    /// A new worker slot (a fresh worker for retries once every other one
    /// has been told there is no more work); returns its number.
    pub fn add_worker(&mut self) -> usize {
        self.fair_share = 0;
        self.received.push(0);
        self.held.push(VecDeque::new());
        self.started.push(self.now);
        self.held.len() - 1
    }

    /// Ends every test not yet finished (pending or held): the run cannot go on.
    pub fn drain_unfinished(&mut self) -> Vec<usize> {
        let mut left: Vec<usize> = self.pending.drain(..).flat_map(|u| u.tests).collect();
        self.pending_tests = 0;
        for held in &mut self.held {
            left.extend(held.drain(..));
        }
        left.retain(|&i| self.finish(i));
        left.sort_unstable();
        left
    }
}

fn make_unit(tests: Vec<usize>, known: &[f64], weight: &[f64]) -> Unit {
    let long = tests.iter().map(|&t| known[t]).sum::<f64>() >= LONG_UNIT;
    let weight = tests.iter().map(|&t| weight[t]).sum();
    Unit { tests, long, weight }
}

/// Expected seconds per test: recorded, else the mean recorded duration
/// (0 when nothing is recorded).
fn expected(durations: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<f64> = durations.iter().flatten().copied().collect();
    let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    durations.iter().map(|d| d.unwrap_or(mean)).collect()
}

/// Unit indices, longest summed duration first; unknown tests count as the
/// mean known duration; ties keep collection order (stable sort). Without
/// any history: collection order.
pub fn lpt_order(durations: &[Option<f64>], units: &[Vec<usize>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    if durations.iter().all(Option::is_none) {
        return order;
    }
    let expected = expected(durations);
    let weight: Vec<f64> = units.iter().map(|u| u.iter().map(|&t| expected[t]).sum()).collect();
    order.sort_by(|&a, &b| weight[b].total_cmp(&weight[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn singles(n: usize) -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![i]).collect()
    }

    #[test]
    fn without_history_keeps_collection_order() {
        assert_eq!(lpt_order(&[None, None, None], &singles(3)), vec![0, 1, 2]);
    }

    #[test]
    fn longest_first_and_unknown_at_the_mean() {
        let d = [Some(0.1), None, Some(3.0), Some(0.5)];
        // mean = 1.2: the unknown test goes between 3.0 and 0.5.
        assert_eq!(lpt_order(&d, &singles(4)), vec![2, 1, 3, 0]);
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
    fn long_tests_travel_alone() {
        let mut d = vec![Some(0.001); 50];
        d[0] = Some(2.0);
        let mut q = RunQueue::per_test(d, 1);
        assert_eq!(q.next_batch(0), vec![0]);
        assert!(q.complete(0, 0));
        assert!(q.next_batch(0).len() > 1);
    }

    #[test]
    fn a_lost_worker_finishes_its_running_test_and_requeues_the_rest() {
        let mut q = RunQueue::per_test(vec![None; 200], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        let lost = q.worker_lost(0);
        assert_eq!(lost.in_flight, Some(batch[1]));
        assert_eq!(lost.requeued, batch[2..].to_vec());
        let again = q.next_batch(1);
        assert_eq!(again[0], batch[2]);
    }

    #[test]
    fn a_retired_worker_gives_back_every_test_it_had_not_started() {
        let mut q = RunQueue::per_test(vec![None; 200], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        assert_eq!(q.worker_retired(0), batch[1..].to_vec());
        assert_eq!(q.next_batch(1)[0], batch[1], "the others take them first");
    }

    #[test]
    fn duplicate_and_stray_reports_are_not_counted() {
        let mut q = RunQueue::per_test(vec![None; 40], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        assert!(!q.complete(0, batch[0]));
        assert!(!q.complete(1, batch[1]));
    }

    #[test]
    fn draining_ends_everything_left() {
        let mut q = RunQueue::per_test(vec![None; 10], 2);
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
    fn lpt_in_pull_form_on_a_known_input() {
        // 4 long tests and 8 short ones, 2 workers asking in turn without
        // finishing anything: the LPT plan from what each holds decides
        // (3 + 1 | 2 + 2), not the order of asking.
        let mut d = vec![Some(0.01); 8];
        d.extend([Some(1.0), Some(3.0), Some(2.0), Some(2.0)]);
        let mut q = RunQueue::per_test(d, 2);
        assert_eq!(q.next_batch(0), vec![9]);
        assert_eq!(q.next_batch(1), vec![10]);
        assert_eq!(q.next_batch(0), vec![8]);
        assert!(q.complete(0, 9) && q.complete(0, 8));
        assert_eq!(q.next_batch(0), vec![11]);
    }

    #[test]
    fn without_history_the_front_is_served_in_batches() {
        let mut q = RunQueue::per_test(vec![None; 40], 2);
        assert_eq!(q.next_batch(0), (0..5).collect::<Vec<_>>());
        assert_eq!(q.next_batch(0), (5..9).collect::<Vec<_>>());
    }

    #[test]
    fn units_travel_whole_and_are_ordered_by_summed_duration() {
        let d = vec![Some(0.01), Some(0.01), Some(0.5), Some(0.2), Some(0.2), Some(0.2)];
        let units = vec![vec![0, 1], vec![2], vec![3, 4, 5]];
        let mut q = RunQueue::new(d, units, 2, Order::Longest);
        assert_eq!(q.next_batch(0), vec![3, 4, 5]);
        assert_eq!(q.next_batch(1), vec![2]);
        assert_eq!(q.next_batch(0), vec![0, 1]);
        assert!(q.next_batch(1).is_empty());
    }

    #[test]
    fn failed_or_new_tests_go_first_and_each_group_stays_longest_first() {
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
        assert_eq!(q.expected_left(), 4.5);
        q.tick(0.5);
        let a = q.next_batch(0);
        assert_eq!(q.running(), vec![(0, a[0], 0.5)]);
        assert!(q.complete(0, a[0]));
        assert!(q.expected_left() < 4.5);
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
    fn a_lost_worker_requeues_its_units_without_merging_them() {
        let units = vec![vec![0, 1, 2], vec![3, 4]];
        let mut q = RunQueue::new(vec![None; 5], units, 1, Order::Collection);
        assert_eq!(q.next_batch(0), vec![0, 1, 2]);
        assert_eq!(q.next_batch(0), vec![3, 4]);
        let lost = q.worker_lost(0);
        assert_eq!((lost.in_flight, lost.requeued), (Some(0), vec![1, 2, 3, 4]));
        assert_eq!(q.next_batch(0), vec![1, 2]);
        assert_eq!(q.next_batch(0), vec![3, 4]);
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

    /// Simulates workers that ask for work whenever they are idle; returns
    /// the makespan.
    fn simulate(durations: &[f64], workers: usize) -> f64 {
        let mut q = RunQueue::per_test(durations.iter().map(|d| Some(*d)).collect(), workers);
        let mut free_at = vec![0.0f64; workers];
        while q.has_pending() {
            let w = (0..workers).min_by(|&a, &b| free_at[a].total_cmp(&free_at[b])).unwrap();
            for t in q.next_batch(w) {
                free_at[w] += durations[t];
                q.complete(w, t);
            }
        }
        free_at.into_iter().fold(0.0, f64::max)
    }

    #[test]
    fn pull_dispatch_matches_greedy_lpt_on_long_tests() {
        for (durations, workers) in [(vec![3.0, 3.0, 2.0, 2.0, 2.0], 2), (vec![5.0, 1.0, 4.0, 2.0, 3.0, 3.0, 1.0], 3)] {
            let order = crate::lpt::heaviest_first(&durations, |i| i);
            let (_, loads) = crate::lpt::assign(&order, &durations, workers);
            assert_eq!(simulate(&durations, workers), loads.into_iter().fold(0.0, f64::max));
        }
    }

    #[test]
    fn a_run_gets_no_more_workers_than_units_and_one_worker_keeps_collection_order() {
        let tests = [("a.py::t1", None), ("a.py::t2", None), ("b.py::t3", None)];
        let d = vec![Some(0.01), Some(0.02), Some(5.0)];
        assert_eq!(RunQueue::for_run(&tests, d.clone(), DistMode::LoadFile, 4).workers(), 2);
        let mut q = RunQueue::for_run(&tests, d, DistMode::Load, 1);
        assert_eq!(q.next_batch(0), vec![0]);
    }

    fn fill(q: &mut RunQueue, local: &mut VecDeque<usize>, worker: usize) {
        while local.len() < 2 && q.has_pending() {
            local.extend(q.next_batch(worker));
        }
    }

    /// Simulates real workers: each holds two tests before it runs one
    /// (pytest's nextitem) and asks for more while it holds two or fewer;
    /// they start one after another. Returns the makespan.
    fn simulate_prefetching(durations: &[f64], workers: usize) -> f64 {
        let mut q = RunQueue::per_test(durations.iter().map(|d| Some(*d)).collect(), workers);
        let mut local = vec![VecDeque::new(); workers];
        let mut running: Vec<Option<usize>> = vec![None; workers];
        let mut free_at = vec![0.0f64; workers];
        (0..workers).for_each(|w| fill(&mut q, &mut local[w], w));
        let active = |running: &[Option<usize>], local: &[VecDeque<usize>], w: usize| {
            running[w].is_some() || !local[w].is_empty()
        };
        while let Some(w) =
            (0..workers).filter(|&w| active(&running, &local, w)).min_by(|&a, &b| free_at[a].total_cmp(&free_at[b]))
        {
            q.tick(free_at[w]);
            if let Some(done) = running[w].take() {
                assert!(q.complete(w, done));
            }
            if local[w].len() <= 2 && q.has_pending() {
                local[w].extend(q.next_batch(w));
            }
            fill(&mut q, &mut local[w], w);
            if let Some(test) = local[w].pop_front() {
                running[w] = Some(test);
                free_at[w] += durations[test];
            }
        }
        assert!(q.is_finished());
        free_at.into_iter().fold(0.0, f64::max)
    }

    #[test]
    fn prefetching_workers_still_finish_near_the_lpt_bound() {
        // The bench's skewed shape: 494 short tests, six long ones mid-suite.
        let mut d: Vec<f64> = (0..494).map(|i| 0.002 + (i % 7) as f64 * 0.001).collect();
        for (at, long) in [(40, 1.2), (90, 1.0), (200, 0.9), (260, 0.8), (300, 0.6), (480, 0.5)] {
            d.insert(at, long);
        }
        let bound = crate::lpt::lower_bound(&d, 4);
        let makespan = simulate_prefetching(&d, 4);
        assert!(makespan <= 1.05 * bound, "makespan {makespan:.3} vs bound {bound:.3}");
    }

    #[test]
    fn prefetching_workers_balance_a_suite_of_medium_long_tests() {
        // 40 tests from 0.1 to 2.05 s: every asker holds a long test.
        let d: Vec<f64> = (0..40).map(|i| 0.1 + (i * 37 % 40) as f64 * 0.05).collect();
        let order = crate::lpt::heaviest_first(&d, |i| i);
        let greedy = crate::lpt::assign(&order, &d, 4).1.into_iter().fold(0.0, f64::max);
        let makespan = simulate_prefetching(&d, 4);
        assert!(makespan <= 1.05 * greedy, "makespan {makespan:.3} vs greedy LPT {greedy:.3}");
    }
}
