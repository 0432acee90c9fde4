//! `--rerun-isolated`: once every test has run and every worker ended,
//! each failed test that ran after others on its worker runs again alone,
//! on a fresh fork in a new worker slot. The summary note says whether its
//! failure depends on what ran before it (ORDER-DEPENDENT) or not.

use std::collections::HashMap;

use super::records::final_outcome;
use super::{Effect, RunState};
use crate::protocol::PhaseRecord;

/// More failed tests than this are not rerun.
const MAX_ISOLATED_RERUNS: usize = 20;

/// A test that failed after other tests on its worker.
#[derive(Debug, Clone)]
struct FailedAfter {
    test: usize,
    worker: usize,
    /// What that worker's process ran before it, in order.
    before: Vec<usize>,
}

#[derive(Debug, Default)]
pub(super) struct Isolation {
    failed_after: Vec<FailedAfter>,
    started: bool,
    /// The failure each rerun's worker slot runs alone.
    reruns: HashMap<usize, FailedAfter>,
}

impl Isolation {
    /// `test` failed on `worker`, whose process ran `before` first (a test
    /// that ran first has nothing to be isolated from).
    pub(super) fn failed_after(&mut self, test: usize, worker: usize, before: Vec<usize>) {
        if !before.is_empty() {
            self.failed_after.push(FailedAfter { test, worker, before });
        }
    }

    /// Whether `worker` runs a failed test again alone.
    pub(super) fn is_rerun(&self, worker: usize) -> bool {
        self.reruns.contains_key(&worker)
    }

    /// A worker lost while it reran a test alone: the test, whose first
    /// result stands.
    pub(super) fn rerun_lost(&mut self, worker: usize) -> Option<usize> {
        self.reruns.remove(&worker).map(|failure| failure.test)
    }
}

impl RunState {
    /// Starts the reruns, once, unless the run was stopped. True when
    /// reruns were started (the run goes on).
    pub(super) fn start_isolated_reruns(&mut self) -> bool {
        if !self.settings.rerun_isolated || self.isolation.started || self.stopped.is_some() {
            return false;
        }
        self.isolation.started = true;
        let failed = std::mem::take(&mut self.isolation.failed_after);
        if failed.len() > MAX_ISOLATED_RERUNS {
            self.notes.push(format!(
                "--rerun-isolated: {} tests failed after others; only the first {MAX_ISOLATED_RERUNS} were rerun alone",
                failed.len()
            ));
        }
        for failure in failed.into_iter().take(MAX_ISOLATED_RERUNS) {
            let slot = self.queue.isolate(failure.test);
            self.isolation.reruns.insert(slot, failure);
            self.emit(Effect::RestartWorker { worker: slot });
        }
        !self.isolation.reruns.is_empty()
    }

    /// The result of a failed test run alone on `worker`: a note that says
    /// whether the failure depends on what ran before it.
    pub(super) fn isolated_result(&mut self, worker: usize, phases: &[PhaseRecord]) {
        let Some(failure) = self.isolation.reruns.remove(&worker) else { return };
        let nodeid = &self.inventory.items[failure.test].shown;
        let note = if final_outcome(phases) == "passed" {
            format!(
                "ORDER-DEPENDENT {nodeid}: failed on gw{} after {} test(s) there ({}); passed alone on a fresh worker",
                failure.worker,
                failure.before.len(),
                self.ran_before(&failure.before)
            )
        } else {
            format!("{nodeid}: failed alone on a fresh worker too (not an order dependency)")
        };
        self.notes.push(note);
    }

    /// The tests that ran before a failure, by name: with more than 8, the
    /// first ones and the last ones (a polluter is usually one of them).
    fn ran_before(&self, before: &[usize]) -> String {
        let items = &self.inventory.items;
        let mut shown: Vec<String> = before.iter().map(|&t| items[t].shown.clone()).collect();
        let n = shown.len();
        if n > 8 {
            let last = shown.split_off(n - 4);
            shown.truncate(3);
            shown.push(format!("{} more", n - 7));
            shown.extend(last);
        }
        shown.join(", ")
    }
}
