//! The run's decisions, apart from actix so that they can be unit tested:
//! which worker gets which tests, what a finished, interrupted or crashed
//! test is recorded as, `--maxfail` and the other stops, the exit code,
//! lost workers and the restart budget, `--retries`, `--rerun-isolated`,
//! and when the run is complete.
//!
//! The Scheduler actor hands every event to `RunState` (`on_*`, with the
//! seconds since the run started where the queue plans by them) and
//! performs the `Effect`s it gets back, in order. Nothing here sends a
//! message, reads a clock or sleeps.
//!
//! Stops (-x/--maxfail, an interrupt, a spent restart budget) end dispatch
//! on every worker at once: queued tests never start, where pytest-xdist
//! lets workers run what they prefetched. A lost worker's running test
//! becomes a crash record; lost workers spend the `--max-worker-restart`
//! budget, and once it is spent the tests that will not start are NOT RUN.
//!
//! `--retries N`: a test that fails (or crashes its worker) goes back to
//! the front of the queue up to N times, and only its last try counts.
//! One that passes on a later try is FLAKY: it passes, and its failed tries
//! travel with it to the reporter, the history and junit. A test that
//! pytest-rerunfailures already reran is final: the two never stack.

mod completion;
mod dispatch;
mod effects;
mod events;
mod isolation;
mod records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

pub use effects::{Effect, LiveStatus};
pub use events::*;
use isolation::Isolation;

use crate::exit_code::ExitCode;
use crate::protocol::{Inventory, PhaseRecord, ReplayEntry, TestDone, ToPython};
use crate::report::events::TestSlow;
use crate::report::Stopped;
use crate::run::crash::RestartBudget;
use crate::run::timeouts::Watchdog;
use crate::schedule::run_queue::RunQueue;

/// A worker that dies this many times without running a test means the
/// workers cannot start at all; the run stops instead of looping.
pub const MAX_STARTUP_FAILURES: usize = 3;

/// The banner of a Ctrl-C, until the interrupted test says where it landed.
const CTRL_C_BANNER: &str = "KeyboardInterrupt";

/// The command line's say in the run's decisions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `--retries`: reruns of a failed test before it counts as failed.
    pub retries: u32,
    /// `--rerun-isolated`: failed tests run again alone at the end.
    pub rerun_isolated: bool,
}

/// The shared session fixtures' one teardown, in the zygote, once every
/// worker is done and before the run completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SharedTeardown {
    Pending,
    Requested,
    Done,
}

pub struct RunState {
    settings: Settings,
    inventory: Arc<Inventory>,
    queue: RunQueue,
    /// Workers whose connection is live: they said hello, and are neither
    /// lost nor being stopped.
    connected: BTreeSet<usize>,
    finished_workers: HashSet<usize>,
    /// Workers told there is no more work: they will not ask again.
    told_no_more: HashSet<usize>,
    /// Workers whose `ready` waits for the others' fair share.
    waiting: BTreeSet<usize>,
    /// Workers retired for memory (`RetireWorker`), until they finish.
    retired: HashSet<usize>,
    /// Workers being stopped for a timeout, and the limit their test
    /// passed: nothing they say any more counts (the test is the timeout's).
    timed_out: HashMap<usize, f64>,
    /// What each worker slot's current process has run, in order.
    sequences: HashMap<usize, Vec<usize>>,
    /// Per test: the phases of each failed try that was retried.
    failed_tries: Vec<Vec<Vec<PhaseRecord>>>,
    entries: Vec<Option<ReplayEntry>>,
    testsfailed: usize,
    startup_failures: usize,
    /// `--max-worker-restart`: lost workers replaced so far, and the most.
    restarts: RestartBudget,
    /// Set when the restart budget is spent: tests that can no longer run
    /// are reported with it as not run.
    not_run: Option<String>,
    watchdog: Watchdog,
    /// Lines for the summary (LEAK, `--rerun-isolated`).
    notes: Vec<String>,
    /// Set by the first stop; later ones change nothing.
    stopped: Option<Stopped>,
    /// The exit code a `pytest.exit()` or an interrupt decided.
    exit_override: Option<ExitCode>,
    /// The last test in collection order that ran, and its worker: pytest
    /// reports a session fixture's teardown error on the last test.
    last_ran: Option<(usize, usize)>,
    shared_teardown: SharedTeardown,
    isolation: Isolation,
    completed: bool,
    /// What the event being handled has decided so far.
    effects: Vec<Effect>,
}

impl RunState {
    pub fn new(
        inventory: Arc<Inventory>,
        queue: RunQueue,
        watchdog: Watchdog,
        restarts: RestartBudget,
        settings: Settings,
    ) -> Self {
        let total = inventory.items.len();
        let shared_teardown =
            if inventory.shared_fixtures.is_empty() { SharedTeardown::Done } else { SharedTeardown::Pending };
        RunState {
            settings,
            inventory,
            queue,
            connected: BTreeSet::new(),
            finished_workers: HashSet::new(),
            told_no_more: HashSet::new(),
            waiting: BTreeSet::new(),
            retired: HashSet::new(),
            timed_out: HashMap::new(),
            sequences: HashMap::new(),
            failed_tries: vec![Vec::new(); total],
            entries: vec![None; total],
            testsfailed: 0,
            startup_failures: 0,
            restarts,
            not_run: None,
            watchdog,
            notes: Vec::new(),
            stopped: None,
            exit_override: None,
            last_ran: None,
            shared_teardown,
            isolation: Isolation::default(),
            completed: false,
            effects: Vec::new(),
        }
    }

    /// A worker said hello; `collected` is its inventory's hash when it
    /// collected for itself. Err: the message to print, and it is shut down.
    pub fn on_worker_joined(&mut self, worker: usize, collected: Option<&str>) -> Result<(), String> {
        if collected.is_some_and(|seen| seen != self.inventory.inventory) {
            return Err(format!(
                "rpytest: error: worker gw{worker} collected a different set of tests than the zygote \
                 (is collection non-deterministic?); it is stopped"
            ));
        }
        self.finished_workers.remove(&worker);
        self.told_no_more.remove(&worker);
        self.sequences.insert(worker, Vec::new());
        self.connected.insert(worker);
        Ok(())
    }

    pub fn on_work_request(&mut self, event: WorkRequest, now: f64) -> Vec<Effect> {
        if !self.being_stopped(event.worker) {
            self.dispatch(event.worker, now);
        }
        self.take_effects()
    }

    pub fn on_test_finished(&mut self, event: TestFinished, now: f64) -> Vec<Effect> {
        let TestFinished { worker, done } = event;
        if self.being_stopped(worker) {
            return self.take_effects();
        }
        self.queue.tick(now);
        if !self.completes_held_test(worker, done.index) {
            let stray = format!("rpytest: warning: ignoring a stray report for test #{} from gw{worker}", done.index);
            self.say(stray);
            return self.take_effects();
        }
        self.startup_failures = 0;
        if self.isolation.is_rerun(worker) {
            // A rerun alone: a diagnosis, not a second result.
            self.isolated_result(worker, &done.phases);
        } else {
            self.record_try(worker, done);
            self.emit(Effect::StatusChanged);
            // A worker that asked while it held enough is answered now.
            self.answer_waiting(now);
        }
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_worker_finished(&mut self, event: WorkerFinished, now: f64) -> Vec<Effect> {
        let worker = event.worker;
        crate::trace::event(|| format!("worker gw{worker} finished"));
        if self.being_stopped(worker) {
            return self.take_effects();
        }
        self.finished_workers.insert(worker);
        if self.retired.remove(&worker) {
            // Its unstarted tests stay in its slot, for a fresh process
            // (order-safe, and without the memory the old one held).
            if !self.queue.worker_retired(worker).is_empty() {
                self.emit(Effect::RestartWorker { worker });
            }
        } else {
            let released = self.queue.release(worker);
            self.end_waiting_retries(&released);
            if let Some(cause) = self.not_run.clone() {
                self.report_not_run(released, &cause);
            }
            self.offer_fresh_steal(worker, now);
        }
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_test_interrupted(&mut self, event: TestInterrupted) -> Vec<Effect> {
        let TestInterrupted { worker, interruption: i } = event;
        if self.being_stopped(worker) {
            return self.take_effects();
        }
        if !self.completes_held_test(worker, i.index) {
            self.say(format!("rpytest: warning: ignoring a stray interruption from gw{worker}"));
            return self.take_effects();
        }
        if !i.phases.is_empty() {
            let done = TestDone {
                index: i.index,
                phases: i.phases,
                warnings: i.warnings,
                junit: None,
                max_rss_kb: None,
                item: None,
            };
            self.record(worker, done);
        }
        // pytest: Exit.returncode when given, else "interrupted"; the banner
        // goes after the counts line, and the summary sections only print,
        // for the codes pytest summarizes.
        let exit = i.returncode.map_or(ExitCode::Interrupted, ExitCode::from_code);
        let after_counts = exit != ExitCode::Interrupted;
        let stopped = Stopped { banner: i.message, detail: i.detail, after_counts, sections: exit.prints_summary() };
        // Ctrl-C stopped the run before this worker said where it landed.
        if self.stopped.as_ref().is_some_and(|s| s.banner == CTRL_C_BANNER && s.detail.is_empty()) {
            self.stopped = None;
        }
        self.stop(stopped, Some(exit));
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_run_interrupted(&mut self, _: RunInterrupted) -> Vec<Effect> {
        self.stop(Stopped::plain(CTRL_C_BANNER), Some(ExitCode::Interrupted));
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_stop_requested(&mut self, event: StopRequested) -> Vec<Effect> {
        if event.interrupted {
            self.stop(Stopped::plain(format!("Interrupted: {}", event.reason)), Some(ExitCode::Interrupted));
        } else {
            self.stop(Stopped::plain(event.reason), None);
        }
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_shared_fixtures_torn_down(&mut self, event: SharedFixturesTornDown) -> Vec<Effect> {
        self.record_shared_teardown(event.phases);
        self.shared_teardown = SharedTeardown::Done;
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_worker_lost(&mut self, event: WorkerLost) -> Vec<Effect> {
        let worker = event.worker;
        self.forget_worker(worker);
        if let Some(test) = self.isolation.rerun_lost(worker) {
            // A rerun alone crashed: say so; the test's result stands.
            self.queue.worker_lost(worker);
            let nodeid = &self.inventory.items[test].shown;
            self.notes.push(format!("{nodeid}: its worker was lost running it alone ({})", event.cause));
            self.maybe_complete();
            return self.take_effects();
        }
        let lost = self.queue.worker_lost(worker);
        let not_run = self.not_run.clone();
        let timed_out = event.timed_out.or(self.timed_out.remove(&worker));
        self.watchdog.forget(worker);
        // Told there was no more work and holding none, it was ending its
        // session (a `pytest_sessionfinish` that exits, say): neither a
        // start-up failure nor a slot with work to replace.
        let ending = lost.in_flight.is_none() && self.told_no_more.contains(&worker);
        match lost.in_flight {
            Some(index) => self.record_crash(index, &event, timed_out),
            None if ending => {}
            None => self.startup_failures += 1,
        }
        if let Some(cause) = not_run {
            // Stopping after the restart budget: what it held never starts.
            self.report_not_run(lost.dropped, &cause);
        } else if !ending {
            self.replace_lost(worker, &event.cause);
        }
        self.maybe_complete();
        self.take_effects()
    }

    /// Exit code 3, pytest's INTERNAL_ERROR: pytest's session itself was
    /// lost, so the run cannot vouch for what it would have done (its
    /// `sessionfinish` hooks, plugins' reports), whatever the tests did.
    pub fn on_zygote_lost(&mut self, event: ZygoteLost) -> Vec<Effect> {
        let cause = format!("not run: {}", event.cause);
        self.end_unstarted(event.cause, cause, Some(ExitCode::InternalError));
        self.maybe_complete();
        self.take_effects()
    }

    pub fn on_retire_worker(&mut self, event: RetireWorker) -> Vec<Effect> {
        let worker = event.worker;
        let running = self.connected.contains(&worker) && !self.finished_workers.contains(&worker);
        if self.stopped.is_none() && running {
            self.emit(Effect::ToWorker { worker, message: ToPython::Stop });
            self.retired.insert(worker);
        }
        self.take_effects()
    }

    pub fn on_tests_leaked(&mut self, event: TestsLeaked) -> Vec<Effect> {
        self.record_leaks(event.worker, event.leaks);
        self.take_effects()
    }

    /// The watchdog's round: every running test past its limit has its
    /// worker stopped; one past `--slow-timeout` is said to be slow.
    pub fn on_watch(&mut self, now: f64) -> Vec<Effect> {
        self.queue.tick(now);
        for expiry in self.watchdog.expired(&self.queue.running(), now) {
            let (worker, secs) = (expiry.worker, expiry.secs);
            let nodeid = &self.inventory.items[expiry.test].shown;
            crate::trace::event(|| format!("{nodeid} on gw{worker} passed {secs}s"));
            self.timed_out.insert(worker, secs);
            self.connected.remove(&worker);
            self.emit(Effect::DropLink { worker });
            self.emit(Effect::StopTimedOut { worker, secs });
        }
        for slow in self.watchdog.newly_slow(&self.queue.running(), now) {
            let nodeid = self.inventory.items[slow.test].shown.clone();
            self.slow(TestSlow { nodeid, worker: slow.worker, secs: slow.secs });
        }
        self.take_effects()
    }

    /// The fair start's retry (`Effect::RetryWaitingLater`).
    pub fn on_fair_start_retry(&mut self, now: f64) -> Vec<Effect> {
        self.answer_waiting(now);
        self.take_effects()
    }

    /// The live status line's facts: who runs what since when, and the
    /// work left by the history.
    pub fn status(&self) -> LiveStatus {
        let items = &self.inventory.items;
        let running = self.queue.running().into_iter().map(|(w, t, since)| (w, items[t].shown.clone(), since));
        let workers = self.connected.len().max(1);
        LiveStatus { running: running.collect(), expected_left: self.queue.expected_left(), workers }
    }
}
