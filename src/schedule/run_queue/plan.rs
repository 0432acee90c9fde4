//! The LPT plan: whether one pays (history with a heavy unit, or
//! longest-first order), how units are dealt to the workers' plans, and
//! the bookkeeping of a test entering or leaving a plan.

use std::collections::BTreeSet;

use super::{Order, Place, RunQueue, PER_TEST_OVERHEAD, PLAN_WHEN_UNIT_OVER};

impl RunQueue {
    /// Whether an LPT plan can end the run earlier than the shared pool:
    /// always for longest-first order (the user asked for it), else only
    /// with a unit heavy enough to make the pool's end uneven.
    pub(super) fn plan_pays(&self) -> bool {
        let heaviest = self.unit_weights().into_iter().fold(0.0, f64::max);
        let share = self.weight.iter().sum::<f64>() / self.plans.len() as f64;
        self.order == Order::Longest || heaviest > PLAN_WHEN_UNIT_OVER * share
    }

    /// The LPT plan: units heaviest first (those with a test marked in
    /// `first` before all others), each to the worker with the least
    /// planned work; each worker's share keyed in its run order.
    pub(super) fn plan(&mut self, first: &[bool]) {
        let is_first = |unit: &Vec<usize>| unit.iter().any(|&t| first[t]);
        let weights = self.unit_weights();
        let mut order: Vec<usize> = (0..self.units.len()).collect();
        order.sort_by(|&a, &b| {
            let (ua, ub) = (&self.units[a], &self.units[b]);
            is_first(ub).cmp(&is_first(ua)).then(weights[b].total_cmp(&weights[a])).then(ua[0].cmp(&ub[0]))
        });
        let (bin_of, _) = crate::schedule::lpt::assign(&order, &weights, self.plans.len());
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

    /// After a spread collection: each unit planned for the worker that
    /// collected its first test (`holders[test]`), so a worker runs the
    /// tests it holds and only stolen work is collected twice. Collection
    /// order only (a longest-first plan is by duration); a holder beyond
    /// the workers (`-n` from pytest's addopts asked for fewer) maps onto one.
    pub fn plan_by_holders(&mut self, holders: &[usize]) {
        if self.order != Order::Collection || holders.len() != self.done.len() || self.done.is_empty() {
            return;
        }
        let workers = self.plans.len();
        self.pool.clear();
        self.fair_share = 0;
        self.plans.iter_mut().for_each(BTreeSet::clear);
        self.plan_weight.iter_mut().for_each(|w| *w = 0.0);
        for u in 0..self.units.len() {
            let worker = holders[self.units[u][0]] % workers;
            for t in self.units[u].clone() {
                self.key[t] = t;
                self.plan_test(worker, t);
            }
        }
    }

    /// Each unit's expected seconds: its tests' summed.
    fn unit_weights(&self) -> Vec<f64> {
        self.units.iter().map(|u| u.iter().map(|&t| self.weight[t]).sum()).collect()
    }

    pub(super) fn plan_test(&mut self, worker: usize, test: usize) {
        self.plans[worker].insert((self.key[test], test));
        self.plan_weight[worker] += self.weight[test];
        self.place[test] = Place::Plan(worker);
    }

    pub(super) fn unplan_test(&mut self, worker: usize, test: usize) {
        self.plans[worker].remove(&(self.key[test], test));
        self.plan_weight[worker] -= self.weight[test];
        if self.plans[worker].is_empty() {
            self.plan_weight[worker] = 0.0;
        }
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
}

/// Expected seconds per test: recorded, else the mean recorded duration
/// (0 when nothing is recorded).
pub(super) fn expected(durations: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<f64> = durations.iter().flatten().copied().collect();
    let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    durations.iter().map(|d| d.unwrap_or(mean) + PER_TEST_OVERHEAD).collect()
}
