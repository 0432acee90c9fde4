//! The run's queue of tests: what is pending, what each worker holds, what
//! is done. Plain logic, no actors, so every rule is unit-tested.
//!
//! Dispatch is pull-based: a worker asks when its local queue runs low and
//! gets a batch. Batches shrink as the queue drains (so the tail balances)
//! and a test known to be long travels alone. The order is LPT: longest
//! recorded duration first; tests without history get the mean known
//! duration, so a new test is neither starved nor assumed huge.

use std::collections::VecDeque;

/// Tests longer than this (seconds, from history) are dispatched alone.
const LONG_TEST: f64 = 0.1;
const MAX_BATCH: usize = 32;

#[derive(Debug)]
pub struct RunQueue {
    pending: VecDeque<usize>,
    /// Per worker slot: tests sent and not yet finished, in run order.
    held: Vec<VecDeque<usize>>,
    durations: Vec<Option<f64>>,
    done: Vec<bool>,
    /// Set by `stop`: nothing more is handed out or requeued.
    stopped: bool,
}

/// What a lost worker leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Lost {
    /// The test it was running (the first it held), now finished as crashed.
    pub in_flight: Option<usize>,
    /// Tests it held behind that one, back at the front of the queue.
    pub requeued: Vec<usize>,
}

impl RunQueue {
    /// `durations[i]` is test i's recorded duration, if any.
    pub fn new(durations: Vec<Option<f64>>, workers: usize) -> Self {
        // One worker gains nothing from reordering; pytest's order keeps
        // module fixtures warm and -x stopping where pytest would.
        let order = if workers > 1 { lpt_order(&durations) } else { (0..durations.len()).collect() };
        RunQueue {
            pending: order.into(),
            held: vec![VecDeque::new(); workers],
            done: vec![false; durations.len()],
            durations,
            stopped: false,
        }
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
        let dropped = self.pending.len();
        self.pending.clear();
        dropped
    }

    /// A worker finished after a stop: the tests it still held never started.
    pub fn release(&mut self, worker: usize) -> Vec<usize> {
        if !self.stopped {
            return Vec::new();
        }
        self.held[worker].drain(..).collect()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next batch for `worker`; empty when nothing is left to hand out.
    pub fn next_batch(&mut self, worker: usize) -> Vec<usize> {
        let workers = self.held.len().max(1);
        let size = (self.pending.len() / (workers * 4)).clamp(1, MAX_BATCH);
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
            let Some(&next) = self.pending.front() else { break };
            let long = self.durations[next].is_some_and(|d| d >= LONG_TEST);
            if long && !batch.is_empty() {
                break;
            }
            batch.push(self.pending.pop_front().unwrap());
            if long {
                break;
            }
        }
        self.held[worker].extend(&batch);
        batch
    }

    /// Marks `index` finished on `worker`. False if it was not held there
    /// (a duplicate or stray report), which the caller must not count.
    pub fn complete(&mut self, worker: usize, index: usize) -> bool {
        let Some(pos) = self.held[worker].iter().position(|&i| i == index) else { return false };
        self.held[worker].remove(pos);
        self.finish(index)
    }

    fn finish(&mut self, index: usize) -> bool {
        !std::mem::replace(&mut self.done[index], true)
    }

    /// `worker` died: its first held test is the one it was running.
    pub fn worker_lost(&mut self, worker: usize) -> Lost {
        let mut held = std::mem::take(&mut self.held[worker]);
        let in_flight = held.pop_front().filter(|&i| self.finish(i));
        let requeued: Vec<usize> = if self.stopped { Vec::new() } else { held.into_iter().collect() };
        for &i in requeued.iter().rev() {
            self.pending.push_front(i);
        }
        Lost { in_flight, requeued }
    }
}

impl RunQueue {
    /// Ends every test not yet finished (pending or held): the run cannot go on.
    pub fn drain_unfinished(&mut self) -> Vec<usize> {
        let mut left: Vec<usize> = self.pending.drain(..).collect();
        for held in &mut self.held {
            left.extend(held.drain(..));
        }
        left.retain(|&i| self.finish(i));
        left.sort_unstable();
        left
    }
}

/// Longest known first; unknown tests take the mean known duration; ties
/// keep collection order (stable sort), which keeps modules together.
pub fn lpt_order(durations: &[Option<f64>]) -> Vec<usize> {
    let known: Vec<f64> = durations.iter().flatten().copied().collect();
    let mut order: Vec<usize> = (0..durations.len()).collect();
    if known.is_empty() {
        return order;
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    let key = |i: usize| durations[i].unwrap_or(mean);
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_history_keeps_collection_order() {
        assert_eq!(lpt_order(&[None, None, None]), vec![0, 1, 2]);
    }

    #[test]
    fn longest_first_and_unknown_at_the_mean() {
        let d = [Some(0.1), None, Some(3.0), Some(0.5)];
        // mean = 1.2: the unknown test goes between 3.0 and 0.5.
        assert_eq!(lpt_order(&d), vec![2, 1, 3, 0]);
    }

    #[test]
    fn batches_shrink_and_cover_everything_once() {
        let mut q = RunQueue::new(vec![None; 100], 2);
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

    #[test]
    fn one_worker_keeps_collection_order() {
        let mut q = RunQueue::new(vec![Some(0.01), Some(5.0), None], 1);
        let mut order = Vec::new();
        loop {
            let b = q.next_batch(0);
            if b.is_empty() {
                break;
            }
            order.extend(b);
        }
        assert_eq!(order, vec![0, 1, 2]);
    }

    #[test]
    fn long_tests_travel_alone() {
        let mut d = vec![Some(0.001); 50];
        d[0] = Some(2.0);
        let mut q = RunQueue::new(d, 2);
        assert_eq!(q.next_batch(0), vec![0]);
        assert!(q.next_batch(0).len() > 1);
    }

    #[test]
    fn a_lost_worker_finishes_its_running_test_and_requeues_the_rest() {
        let mut q = RunQueue::new(vec![None; 200], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        let lost = q.worker_lost(0);
        assert_eq!(lost.in_flight, Some(batch[1]));
        assert_eq!(lost.requeued, batch[2..].to_vec());
        let again = q.next_batch(1);
        assert_eq!(again[0], batch[2]);
    }

    #[test]
    fn duplicate_and_stray_reports_are_not_counted() {
        let mut q = RunQueue::new(vec![None; 40], 2);
        let batch = q.next_batch(0);
        assert!(q.complete(0, batch[0]));
        assert!(!q.complete(0, batch[0]));
        assert!(!q.complete(1, batch[1]));
    }

    #[test]
    fn draining_ends_everything_left() {
        let mut q = RunQueue::new(vec![None; 10], 2);
        let b = q.next_batch(0);
        q.complete(0, b[0]);
        assert_eq!(q.drain_unfinished().len(), 9);
        assert!(q.is_finished());
    }

    #[test]
    fn a_stop_drops_pending_and_releases_held_tests() {
        let mut q = RunQueue::new(vec![None; 100], 2);
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
        let mut q = RunQueue::new(vec![None; 10], 1);
        let a = q.next_batch(0);
        assert!(q.release(0).is_empty());
        assert!(q.complete(0, a[0]));
    }

    #[test]
    fn finishes_when_every_test_is_done_or_crashed() {
        let mut q = RunQueue::new(vec![None; 3], 1);
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
}
