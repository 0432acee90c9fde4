//! Tests and workers that come back: a lost or retired worker's tests
//! return to its slot, a failed test runs again (`--retries`,
//! `--rerun-isolated`), new worker slots, and a run that cannot go on.

use std::collections::{BTreeSet, VecDeque};

use super::{Lost, Place, RunQueue};

impl RunQueue {
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
