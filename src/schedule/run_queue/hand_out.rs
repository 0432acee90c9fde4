//! Answering a worker that asks for work: retries first, then its own
//! plan (within the prefetch limit), then the shared pool; and handing a
//! batch over.

use super::{Answer, Place, RunQueue, MAX_BATCH, PREFETCH_SECS};

impl RunQueue {
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
    pub(super) fn batch_size(&self) -> usize {
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
}
