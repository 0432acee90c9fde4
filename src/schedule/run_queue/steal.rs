//! Work stealing: an idle worker takes units from the back of the plan
//! expected to finish last, and work that only a fresh process may run
//! goes to a new worker slot (`fresh_steal`).

use super::{Place, RunQueue, FRESH_GAIN};

impl RunQueue {
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

    pub(super) fn steal(&mut self, worker: usize) {
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
}
