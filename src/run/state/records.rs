//! What each test is recorded as: its result for the Reporter and the
//! History, its entry for the zygote's replay, and the records that stand
//! for tests a crash, a stop or the restart budget kept from finishing.

use super::{RunState, WorkerLost};
use crate::protocol::{FailedTry, Leak, PhaseRecord, ReplayEntry, TestDone, When};
use crate::report::events::{Observe, TestRetrying};
use crate::report::{domain_of, Stopped, TestResult};
use crate::run::crash;
use crate::run::timeouts;

impl RunState {
    /// A finished try on `worker`: retried while the test has tries left,
    /// else its result (and, when it failed after other tests there, a
    /// candidate for `--rerun-isolated`).
    pub(super) fn record_try(&mut self, worker: usize, done: TestDone) {
        let failed = done.phases.iter().any(counts_as_failed);
        let sequence = self.sequences.entry(worker).or_default();
        let ran_before = failed.then(|| sequence.clone());
        sequence.push(done.index);
        if self.retried(worker, &done) {
            self.ensure_asking_worker();
            return;
        }
        if let Some(before) = ran_before {
            self.isolation.failed_after(done.index, worker, before);
        }
        self.record(worker, done);
    }

    /// A test's final try: counted toward `--maxfail`, observed by the
    /// History, kept for the replay, and reported.
    pub(super) fn record(&mut self, worker: usize, done: TestDone) {
        let TestDone { index, phases, warnings, junit, max_rss_kb, item: base } = done;
        let failed_tries = std::mem::take(&mut self.failed_tries[index]);
        self.count_failures(&phases);
        let item = &self.inventory.items[index];
        let (nodeid, shown) = (item.id.clone(), item.shown.clone());
        let crash_phase = phases.iter().find(|p| p.when == When::Crash);
        let crash = crash_phase.and_then(|p| p.crash.clone());
        let crash_text = crash_phase.and_then(|p| p.longrepr.clone()).filter(|text| Some(text) != crash.as_ref());
        self.observe(Observe {
            nodeid: nodeid.clone(),
            duration: crash.is_none().then(|| phases.iter().map(|p| p.duration).sum()),
            outcome: final_outcome(&phases),
            peak_rss_kb: max_rss_kb,
            flaky: !failed_tries.is_empty() && !wants_retry(&phases),
        });
        if crash.is_none() && self.last_ran.is_none_or(|(last, _)| index > last) {
            self.last_ran = Some((index, worker));
        }
        let tries = failed_tries.len() + 1;
        self.entries[index] = Some(ReplayEntry {
            index,
            phases: phases.iter().filter(|p| p.when != When::Crash).cloned().collect(),
            crash,
            crash_text,
            junit,
            failed_tries: failed_tries.iter().map(|t| FailedTry::from_phases(t)).collect(),
            leaks: Vec::new(),
            item: base,
        });
        self.report(TestResult { index, nodeid: shown, id: nodeid, worker, phases, warnings, tries });
    }

    /// Failures count toward `--maxfail` across all workers; reaching it
    /// stops the run.
    fn count_failures(&mut self, phases: &[PhaseRecord]) {
        self.testsfailed += phases.iter().filter(|p| counts_as_failed(p)).count();
        let maxfail = self.inventory.maxfail;
        if maxfail > 0 && self.testsfailed >= maxfail {
            self.stop(Stopped::plain(format!("stopping after {} failures", self.testsfailed)), None);
        }
    }

    /// `--retries`: puts a failed try back in the queue if it has tries
    /// left; true when it did (the try is then not recorded as a result).
    pub(super) fn retried(&mut self, worker: usize, done: &TestDone) -> bool {
        let retries = self.settings.retries as usize;
        let tries = &mut self.failed_tries[done.index];
        if tries.len() >= retries || !wants_retry(&done.phases) || !self.queue.retry(done.index) {
            return false;
        }
        tries.push(done.phases.clone());
        let attempt = tries.len();
        let nodeid = self.inventory.items[done.index].shown.clone();
        let failed = done.phases.iter().find(|p| p.outcome == "failed").cloned();
        self.retrying(TestRetrying { nodeid, worker, attempt, of: retries + 1, failed });
        true
    }

    /// The test a lost worker was running fails as crashed (or timed out),
    /// unless it has tries left.
    pub(super) fn record_crash(&mut self, index: usize, lost: &WorkerLost, timed_out: Option<f64>) {
        let nodeid = self.inventory.items[index].shown.clone();
        let message = lost_message(lost.worker, &lost.cause, &nodeid, timed_out);
        let text = crash::failure_text(&message, lost.worker, lost.log.as_deref());
        let done = crashed(index, &nodeid, &message, &text);
        // A retried crash runs on a fresh worker: this one is gone.
        if !self.retried(lost.worker, &done) {
            self.record(lost.worker, done);
        }
    }

    /// Tests a stop caught between a failed try and the next one: their
    /// last failed try is their result (a test never goes unreported).
    pub(super) fn end_waiting_retries(&mut self, indices: &[usize]) {
        for &index in indices {
            let Some(phases) = self.failed_tries[index].pop() else { continue };
            self.record(0, TestDone { index, phases, warnings: Vec::new(), junit: None, max_rss_kb: None, item: None });
        }
    }

    /// Reports tests that will never start as not run, with the reason.
    pub(super) fn report_not_run(&mut self, indices: Vec<usize>, cause: &str) {
        for index in indices {
            if self.entries[index].is_some() {
                continue;
            }
            let nodeid = self.inventory.items[index].shown.clone();
            self.record(0, not_run(index, &nodeid, cause));
        }
    }

    /// Ends every test that can no longer run (workers cannot start).
    pub(super) fn abandon_pending(&mut self, cause: &str) {
        for index in self.queue.drain_unfinished() {
            let nodeid = self.inventory.items[index].shown.clone();
            self.record(0, crashed(index, &nodeid, cause, cause));
        }
    }

    /// A shared fixture's teardown failure becomes the last test's teardown
    /// phase: counted, printed, and replayed to junit as pytest has it.
    pub(super) fn record_shared_teardown(&mut self, phases: Vec<PhaseRecord>) {
        let Some((index, worker)) = self.last_ran.filter(|_| !phases.is_empty()) else { return };
        self.testsfailed += phases.iter().filter(|p| p.outcome == "failed").count();
        if let Some(entry) = self.entries[index].as_mut() {
            // pytest has one teardown report, the session's finalizers included.
            entry.phases.retain(|p| p.when != "teardown");
            entry.phases.extend(phases.iter().cloned());
        }
        let item = &self.inventory.items[index];
        let (nodeid, id) = (item.shown.clone(), item.id.clone());
        let warnings = Vec::new();
        self.report(TestResult { index, nodeid, id, worker, phases, warnings, tries: 1 });
    }

    /// A worker's leaked processes: a LEAK line in the summary, and a junit
    /// property on the test that started them.
    pub(super) fn record_leaks(&mut self, worker: usize, leaks: Vec<Leak>) {
        let total = self.entries.len();
        for leak in leaks.into_iter().filter(|l| l.index < total) {
            let nodeid = &self.inventory.items[leak.index].shown;
            let line = format!("pid {} ({}) was still running after the test; killed", leak.pid, leak.cmdline);
            self.notes.push(format!("LEAK {nodeid} [gw{worker}]: {line}"));
            if let Some(entry) = self.entries[leak.index].as_mut() {
                entry.leaks.push(line);
            }
        }
    }
}

/// The failure message of a test whose worker was lost under it.
fn lost_message(worker: usize, cause: &str, nodeid: &str, timed_out: Option<f64>) -> String {
    match timed_out {
        Some(secs) => {
            format!("{}: rpytest stopped worker 'gw{worker}' while running '{nodeid}'", timeouts::describe(secs))
        }
        None => format!("worker 'gw{worker}' crashed while running '{nodeid}': {cause}"),
    }
}

/// The record of a test whose worker died under it: `message` is the one
/// line cause, `text` the whole failure (with the worker's fault log).
fn crashed(index: usize, nodeid: &str, message: &str, text: &str) -> TestDone {
    let phases = vec![crash_phase(nodeid, message, text)];
    TestDone { index, phases, warnings: Vec::new(), junit: None, max_rss_kb: None, item: None }
}

/// The record of a test that never started and never will.
fn not_run(index: usize, nodeid: &str, cause: &str) -> TestDone {
    let mut phase = crash_phase(nodeid, cause, cause);
    (phase.category, phase.letter, phase.word) = ("not run".into(), "N".into(), "NOT RUN".into());
    TestDone { index, phases: vec![phase], warnings: Vec::new(), junit: None, max_rss_kb: None, item: None }
}

/// The failing phase that stands for a test whose worker died under it.
fn crash_phase(nodeid: &str, message: &str, text: &str) -> PhaseRecord {
    PhaseRecord {
        when: When::Crash,
        outcome: "failed".into(),
        category: "failed".into(),
        letter: "F".into(),
        word: "FAILED".into(),
        duration: 0.0,
        full: None,
        longrepr: Some(text.to_string()),
        crash: Some(message.to_string()),
        crash_line: Some(format!("{nodeid}: {message}")),
        head_line: Some(domain_of(nodeid)),
        ..PhaseRecord::default()
    }
}

/// A phase that failed as pytest counts failures (not an xfail).
fn counts_as_failed(phase: &PhaseRecord) -> bool {
    phase.outcome == "failed" && phase.wasxfail.is_none()
}

/// A try that failed as pytest counts failures, and that
/// pytest-rerunfailures did not already rerun (its `rerun` reports).
fn wants_retry(phases: &[PhaseRecord]) -> bool {
    phases.iter().any(counts_as_failed) && !phases.iter().any(|p| p.outcome == "rerun")
}

/// The test's outcome as the History keeps it: its first phase that did
/// not pass, else its call.
pub(super) fn final_outcome(phases: &[PhaseRecord]) -> String {
    phases
        .iter()
        .find(|p| p.outcome != "passed")
        .or_else(|| phases.iter().find(|p| p.when == "call"))
        .map_or("passed", |p| if p.category.is_empty() { p.outcome.as_str() } else { p.category.as_str() })
        .to_string()
}
