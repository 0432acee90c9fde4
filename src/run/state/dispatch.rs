//! Handing tests to workers: answers to `ready`, fresh workers when work
//! needs one, and which workers still count.

use super::{Effect, RunState};
use crate::protocol::ToPython;
use crate::schedule::run_queue::Answer;

impl RunState {
    /// Answers a worker's `ready`: a batch, `no_more`, or later: after it
    /// finishes a test (it holds enough, see `RunQueue::answer`) or, while
    /// it must leave the rest to workers that have not had their fair
    /// share, at the fair start's retry.
    pub(super) fn dispatch(&mut self, worker: usize, now: f64) {
        if !self.connected.contains(&worker) {
            return;
        }
        self.queue.tick(now);
        let message = match self.queue.answer(worker) {
            Answer::Later => {
                if self.waiting.insert(worker) && self.queue.must_wait(worker) {
                    self.emit(Effect::RetryWaitingLater);
                }
                return;
            }
            Answer::Run(indices) => ToPython::Run { indices },
            Answer::NoMore => {
                self.told_no_more.insert(worker);
                ToPython::NoMore
            }
        };
        self.waiting.remove(&worker);
        self.emit(Effect::ToWorker { worker, message });
        self.emit(Effect::StatusChanged);
        self.answer_waiting(now);
    }

    /// Answers again every worker left waiting: one of them may get work now.
    pub(super) fn answer_waiting(&mut self, now: f64) {
        for worker in std::mem::take(&mut self.waiting) {
            self.dispatch(worker, now);
        }
    }

    /// A worker that has ended after it was told there was no more work:
    /// if a fresh worker would take enough of the slowest one's plan
    /// (`RunQueue::fresh_steal`), start one.
    pub(super) fn offer_fresh_steal(&mut self, worker: usize, now: f64) {
        if self.stopped.is_some() || !self.told_no_more.contains(&worker) {
            return;
        }
        self.queue.tick(now);
        if let Some(slot) = self.queue.fresh_steal() {
            crate::trace::event(|| format!("gw{slot} starts fresh for work stolen from a slower worker"));
            self.emit(Effect::RestartWorker { worker: slot });
        }
    }

    /// A retried test needs a worker that will still ask for work; when
    /// every live one has been told there is none, start a fresh one.
    pub(super) fn ensure_asking_worker(&mut self) {
        let asking =
            self.connected.iter().any(|w| !self.finished_workers.contains(w) && !self.told_no_more.contains(w));
        if asking || !self.queue.has_pending() {
            return;
        }
        let worker = self.queue.add_worker();
        self.emit(Effect::RestartWorker { worker });
    }

    /// Marks a reported test finished. False when the worker did not hold
    /// it (a duplicate or stray report), which must not count.
    pub(super) fn completes_held_test(&mut self, worker: usize, index: usize) -> bool {
        index < self.queue.total() && self.queue.complete(worker, index)
    }

    /// Whether `worker` is being stopped for a timeout: what it says is void.
    pub(super) fn being_stopped(&self, worker: usize) -> bool {
        self.timed_out.contains_key(&worker)
    }

    /// A lost worker: its connection, and what its process ran, are gone.
    pub(super) fn forget_worker(&mut self, worker: usize) {
        self.connected.remove(&worker);
        self.finished_workers.remove(&worker);
        self.sequences.remove(&worker);
        self.emit(Effect::DropLink { worker });
    }
}
