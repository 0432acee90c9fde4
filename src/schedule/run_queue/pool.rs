//! The shared pool, used without a plan: whole units from its front in
//! collection order, and the fair start that keeps early workers from
//! taking the others' share.

use super::{RunQueue, FAIR_START_LIMIT};

impl RunQueue {
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
    pub(super) fn allowance(&self, worker: usize) -> Option<usize> {
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
    pub(super) fn pool_batch(&mut self, worker: usize, max_units: usize) -> (Vec<usize>, usize) {
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
}
