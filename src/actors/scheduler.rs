//! Scheduler actor: owns the run's state and is the only source of test
//! events for the Reporter and History.
//!
//! Accepts `StartRun` (inventory and durations known), `WorkerJoined`,
//! `WorkRequest` (a worker wants more), `TestFinished`, `TestInterrupted`
//! (KeyboardInterrupt or `pytest.exit()` in a test), `StopRequested` (a
//! worker's session set shouldfail/shouldstop), `WorkerFinished` and
//! `WorkerLost` (from the Supervisor, once a worker's death is certain),
//! `TestsLeaked` (processes a worker's tests left running) and
//! `SharedFixturesTornDown` (the zygote tore down the shared session fixtures).
//! With time limits it runs the `Watchdog` every 100 ms and asks the
//! Supervisor to stop a worker whose test passed its limit (`StopTimedOut`);
//! from then on that worker's messages are void, and its loss fails the test
//! as `Timeout (>Ns)`. Lost workers spend the `--max-worker-restart` budget;
//! once it is spent, the tests that will not start are reported NOT RUN.
//! The queue logic lives in `RunQueue`; this shell routes messages, turns a
//! lost worker's running test into a crash report, stops dispatch on every
//! worker at once for -x/--maxfail and interrupts, and tells the Supervisor
//! to replace workers, when to tear down shared session fixtures (after the
//! last worker, before the run completes), and when the run is complete.
//!
//! `--retries N`: a test that fails (or crashes its worker) goes back to
//! the front of the queue up to N times, and only its last try counts.
//! One that passes on a later try is FLAKY: it passes, and its failed tries
//! travel with it to the reporter, the history and junit. A test that
//! pytest-rerunfailures already reran is final: the two never stack.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use super::history::{History, Observe};
use super::reporter::{Reporter, Status, TestReported, TestRetrying, TestSlow};
use super::supervisor::StopTimedOut;
use super::supervisor::{RestartWorker, RunComplete, Supervisor, TeardownShared};
use crate::crash;
use crate::protocol::{FailedTry, Interruption, Inventory, Leak, PhaseRecord, ReplayEntry, TestDone, ToPython};
use crate::report::{domain_of, Stopped, TestResult};
use crate::run_queue::{Answer, RunQueue};
use crate::timeouts::{self, Watchdog};

/// A worker that dies this many times without running a test means the
/// workers cannot start at all; the run stops instead of looping.
const MAX_STARTUP_FAILURES: usize = 3;
/// How often the watchdog looks at the running tests' clocks (limits and
/// `--slow-timeout`).
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// How often a worker told to wait for the others' fair share (see
/// `RunQueue::must_wait`) is reconsidered, besides after every dispatch.
const FAIR_START_RETRY: Duration = Duration::from_millis(100);

pub struct Scheduler {
    reporter: Addr<Reporter>,
    /// `--retries`: reruns of a failed test before it counts as failed.
    retries: u32,
    /// Feed the reporter's live status line (a terminal, not CI).
    live: bool,
    /// `--rerun-isolated`: failed tests run again alone at the end.
    rerun_isolated: bool,
    run: Option<Run>,
}

/// `--rerun-isolated`: failed tests rerun alone on fresh workers once the
/// run is otherwise over; more than this many are not rerun.
const MAX_ISOLATED_RERUNS: usize = 20;

/// A test that failed after other tests on its worker.
#[derive(Debug, Clone)]
struct FailedAfter {
    test: usize,
    worker: usize,
    /// What that worker's process ran before it, in order.
    before: Vec<usize>,
}

struct Run {
    inventory: Arc<Inventory>,
    queue: RunQueue,
    /// The queue's clock: it plans from how long running tests have run.
    started: Instant,
    links: HashMap<usize, UnboundedSender<ToPython>>,
    finished_workers: HashSet<usize>,
    /// Workers told there is no more work: they will not ask again.
    told_no_more: HashSet<usize>,
    /// Per test: the phases of each failed try that was retried.
    failed_tries: Vec<Vec<Vec<PhaseRecord>>>,
    entries: Vec<Option<ReplayEntry>>,
    testsfailed: usize,
    startup_failures: usize,
    /// `--max-worker-restart`: lost workers replaced so far, and the most.
    restarts: crash::RestartBudget,
    /// Set when the restart budget is spent: tests that can no longer run
    /// are reported with it as not run.
    not_run: Option<String>,
    watchdog: Watchdog,
    /// Workers being stopped for a timeout, and the limit their test
    /// passed: nothing they say any more counts (the test is the timeout's).
    timed_out: HashMap<usize, f64>,
    /// LEAK lines for the summary.
    leak_notes: Vec<String>,
    supervisor: Addr<Supervisor>,
    history: Addr<History>,
    completed: bool,
    /// Set by the first stop; later ones change nothing.
    stopped: Option<Stopped>,
    /// The exit code a `pytest.exit()` or KeyboardInterrupt decided.
    exit_override: Option<i32>,
    /// The last test in collection order that ran, and its worker: pytest
    /// reports a session fixture's teardown error on the last test.
    last_ran: Option<(usize, usize)>,
    shared_teardown: SharedTeardown,
    /// Workers whose `ready` waits for the others' fair share.
    waiting: HashSet<usize>,
    /// Workers retired for memory (`RetireWorker`), until they finish.
    retired: HashSet<usize>,
    /// What each worker slot's current process has run, in order.
    sequences: HashMap<usize, Vec<usize>>,
    /// `--rerun-isolated`: failed tests to rerun, whether the reruns have
    /// started, and the slot each rerun runs on.
    failed_after: Vec<FailedAfter>,
    isolation_started: bool,
    isolating: HashMap<usize, FailedAfter>,
}

/// The shared session fixtures' one teardown, in the zygote, once every
/// worker is done and before the run completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SharedTeardown {
    Pending,
    Requested,
    Done,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StartRun {
    pub inventory: Arc<Inventory>,
    /// The ordered queue, built from the inventory, history and `--dist`.
    pub queue: RunQueue,
    pub supervisor: Addr<Supervisor>,
    pub history: Addr<History>,
    /// Per-test time limits (`--timeout`, marks, pytest-timeout).
    pub watchdog: Watchdog,
    /// Lost workers to replace before the run gives up.
    pub restarts: crash::RestartBudget,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerJoined {
    pub worker: usize,
    pub inventory: Option<String>,
    pub link: UnboundedSender<ToPython>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkRequest {
    pub worker: usize,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct TestFinished {
    pub worker: usize,
    pub done: TestDone,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerFinished {
    pub worker: usize,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct TestInterrupted {
    pub worker: usize,
    pub interruption: Interruption,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRequested {
    pub reason: String,
    /// pytest's `session.shouldstop`: an interruption (exit 2), not a failure budget.
    pub interrupted: bool,
}

/// Ctrl-C: the workers were sent SIGINT. The run stops as pytest's does on
/// KeyboardInterrupt (exit 2); the interrupted test's own report, when it
/// comes, says where the interrupt landed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunInterrupted;

const CTRL_C_BANNER: &str = "KeyboardInterrupt";

/// The zygote tore the shared session fixtures down; `phases` is a
/// teardown failure to report on the last test, as pytest does.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SharedFixturesTornDown {
    pub phases: Vec<PhaseRecord>,
}

/// The Supervisor's memory watch: `worker` runs no test after its current
/// one; once it has finished, a fresh process takes its unstarted tests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetireWorker {
    pub worker: usize,
}

/// A worker is gone for good without finishing; `cause` says how it ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerLost {
    pub worker: usize,
    pub cause: String,
    /// The tail of its fault log (faulthandler's stacks), if it wrote one.
    pub log: Option<String>,
    /// It was stopped for passing this time limit (seconds).
    pub timed_out: Option<f64>,
}

/// A worker's tests left these processes running; it has killed them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TestsLeaked {
    pub worker: usize,
    pub leaks: Vec<Leak>,
}

impl Scheduler {
    pub fn new(reporter: Addr<Reporter>, retries: u32, live: bool, rerun_isolated: bool) -> Self {
        Scheduler { reporter, retries, live, rerun_isolated, run: None }
    }

    /// `--rerun-isolated`, once every test has run and every worker ended:
    /// each failed test that ran after others goes alone to a new worker
    /// slot, a fresh fork. True when reruns were started (the run goes on).
    fn start_isolated_reruns(&mut self) -> bool {
        let rerun_isolated = self.rerun_isolated;
        let Some(run) = self.run.as_mut() else { return false };
        if !rerun_isolated || run.isolation_started || run.stopped.is_some() {
            return false;
        }
        run.isolation_started = true;
        let failed = std::mem::take(&mut run.failed_after);
        if failed.len() > MAX_ISOLATED_RERUNS {
            run.leak_notes.push(format!(
                "--rerun-isolated: {} tests failed after others; only the first {MAX_ISOLATED_RERUNS} were rerun alone",
                failed.len()
            ));
        }
        for failure in failed.into_iter().take(MAX_ISOLATED_RERUNS) {
            let slot = run.queue.isolate(failure.test);
            run.isolating.insert(slot, failure);
            run.supervisor.do_send(RestartWorker { worker: slot });
        }
        !run.isolating.is_empty()
    }

    /// The result of a failed test run alone: the note that says whether
    /// the failure depends on what ran before it.
    fn isolated_result(&mut self, failure: FailedAfter, phases: &[PhaseRecord]) {
        let Some(run) = self.run.as_mut() else { return };
        let items = &run.inventory.items;
        let nodeid = &items[failure.test].shown;
        let n = failure.before.len();
        let note = if final_outcome(phases) == "passed" {
            let name = |&t: &usize| items[t].shown.clone();
            let mut shown: Vec<String> = failure.before.iter().map(name).collect();
            if n > 8 {
                // The first ones and the last ones: a polluter is usually one of them.
                let last = shown.split_off(n - 4);
                shown.truncate(3);
                shown.push(format!("{} more", n - 7));
                shown.extend(last);
            }
            format!(
                "ORDER-DEPENDENT {nodeid}: failed on gw{} after {n} test(s) there ({}); passed alone on a fresh worker",
                failure.worker,
                shown.join(", ")
            )
        } else {
            format!("{nodeid}: failed alone on a fresh worker too (not an order dependency)")
        };
        run.leak_notes.push(note);
    }

    /// The live status line's facts: who runs what since when, and the
    /// work left by the history.
    fn send_status(&self) {
        let Some(run) = self.run.as_ref().filter(|_| self.live) else { return };
        let at = |since: f64| run.started + std::time::Duration::from_secs_f64(since.max(0.0));
        let items = &run.inventory.items;
        let running =
            run.queue.running().into_iter().map(|(w, t, since)| (w, items[t].shown.clone(), at(since))).collect();
        let workers = run.links.len().max(1);
        self.reporter.do_send(Status { running, expected_left: run.queue.expected_left(), workers });
    }

    /// `--retries`: puts a failed try back in the queue if it has tries
    /// left; true when it did (the try is then not recorded as a result).
    fn retried(&mut self, worker: usize, done: &TestDone) -> bool {
        let retries = self.retries as usize;
        let Some(run) = self.run.as_mut() else { return false };
        let tries = &mut run.failed_tries[done.index];
        if tries.len() >= retries || !wants_retry(&done.phases) || !run.queue.retry(done.index) {
            return false;
        }
        tries.push(done.phases.clone());
        let nodeid = run.inventory.items[done.index].shown.clone();
        let failed = done.phases.iter().find(|p| p.outcome == "failed").cloned();
        let attempt = tries.len();
        self.reporter.do_send(TestRetrying { nodeid, worker, attempt, of: retries + 1, failed });
        true
    }

    /// A retried test needs a worker that will still ask for work; when
    /// every live one has been told there is none, start a fresh one.
    fn ensure_asking_worker(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let asking = run.links.keys().any(|w| !run.finished_workers.contains(w) && !run.told_no_more.contains(w));
        if asking || !run.queue.has_pending() {
            return;
        }
        let worker = run.queue.add_worker();
        run.supervisor.do_send(RestartWorker { worker });
    }

    /// Answers a worker's `ready`: a batch, `no_more`, or later: after it
    /// finishes a test (it holds enough, see `RunQueue::answer`) or, while
    /// it must leave the rest to workers that have not had their fair
    /// share, after `FAIR_START_RETRY`.
    fn dispatch(&mut self, worker: usize, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        let Some(link) = run.links.get(&worker) else { return };
        run.queue.tick(run.started.elapsed().as_secs_f64());
        let message = match run.queue.answer(worker) {
            Answer::Later => {
                if run.waiting.insert(worker) && run.queue.must_wait(worker) {
                    ctx.run_later(FAIR_START_RETRY, |act, ctx| act.answer_waiting(ctx));
                }
                return;
            }
            Answer::Run(indices) => ToPython::Run { indices },
            Answer::NoMore => {
                run.told_no_more.insert(worker);
                ToPython::NoMore
            }
        };
        run.waiting.remove(&worker);
        let _ = link.send(message);
        self.send_status();
        self.answer_waiting(ctx);
    }

    /// A worker that has ended after it was told there was no more work:
    /// if a fresh worker would take enough of the slowest one's plan
    /// (`RunQueue::fresh_steal`), start one.
    fn offer_fresh_steal(&mut self, worker: usize) {
        let Some(run) = self.run.as_mut() else { return };
        if run.stopped.is_some() || !run.told_no_more.contains(&worker) {
            return;
        }
        run.queue.tick(run.started.elapsed().as_secs_f64());
        if let Some(slot) = run.queue.fresh_steal() {
            crate::trace::event(|| format!("gw{slot} starts fresh for work stolen from a slower worker"));
            run.supervisor.do_send(RestartWorker { worker: slot });
        }
    }

    fn answer_waiting(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        let waiting: Vec<usize> = run.waiting.drain().collect();
        for worker in waiting {
            self.dispatch(worker, ctx);
        }
    }

    fn record(&mut self, worker: usize, done: TestDone) {
        let Some(run) = self.run.as_mut() else { return };
        let TestDone { index, phases, warnings, junit, max_rss_kb } = done;
        let failed_tries = std::mem::take(&mut run.failed_tries[index]);
        let flaky = !failed_tries.is_empty() && !wants_retry(&phases);
        let item = &run.inventory.items[index];
        let (nodeid, shown) = (item.id.clone(), item.shown.clone());
        run.testsfailed += phases.iter().filter(|p| p.outcome == "failed" && p.wasxfail.is_none()).count();
        let maxfail = run.inventory.maxfail;
        if maxfail > 0 && run.testsfailed >= maxfail {
            let banner = format!("stopping after {} failures", run.testsfailed);
            self.stop(Stopped::plain(banner), None);
        }
        let Some(run) = self.run.as_mut() else { return };
        let crash_phase = phases.iter().find(|p| p.when == "crash");
        let crash = crash_phase.and_then(|p| p.crash.clone());
        let crash_text = crash_phase.and_then(|p| p.longrepr.clone()).filter(|text| Some(text) != crash.as_ref());
        let duration = crash.is_none().then(|| phases.iter().map(|p| p.duration).sum());
        let outcome = final_outcome(&phases);
        run.history.do_send(Observe { nodeid: nodeid.clone(), duration, outcome, peak_rss_kb: max_rss_kb, flaky });
        if crash.is_none() && run.last_ran.is_none_or(|(last, _)| index > last) {
            run.last_ran = Some((index, worker));
        }
        let wire_phases = phases.iter().filter(|p| p.when != "crash").cloned().collect();
        let tries = failed_tries.len() + 1;
        let failed_tries = failed_tries.iter().map(|t| FailedTry::from_phases(t)).collect();
        let leaks = Vec::new();
        run.entries[index] =
            Some(ReplayEntry { index, phases: wire_phases, crash, crash_text, junit, failed_tries, leaks });
        let result = TestResult { index, nodeid: shown, id: nodeid, worker, phases, warnings, tries };
        self.reporter.do_send(TestReported(result));
    }

    fn maybe_complete(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let live = run.links.keys().any(|w| !run.finished_workers.contains(w));
        if run.completed || !run.queue.is_finished() || live {
            return;
        }
        if self.start_isolated_reruns() {
            return;
        }
        let Some(run) = self.run.as_mut() else { return };
        if run.shared_teardown != SharedTeardown::Done {
            if run.shared_teardown == SharedTeardown::Pending {
                run.shared_teardown = SharedTeardown::Requested;
                let index = run.last_ran.map(|(index, _)| index);
                run.supervisor.do_send(TeardownShared { index });
            }
            return;
        }
        run.completed = true;
        let entries = run.entries.iter_mut().filter_map(Option::take).collect();
        let failed = run.testsfailed + run.inventory.collect_failed;
        let exitstatus = run.exit_override.unwrap_or(if failed > 0 { 1 } else { 0 });
        let notes = std::mem::take(&mut run.leak_notes);
        run.supervisor.do_send(RunComplete { entries, exitstatus, stopped: run.stopped.clone(), notes });
    }

    /// A shared fixture's teardown failure becomes the last test's teardown
    /// phase: counted, printed, and replayed to junit as pytest has it.
    fn record_shared_teardown(&mut self, phases: Vec<PhaseRecord>) {
        let Some(run) = self.run.as_mut() else { return };
        let Some((index, worker)) = run.last_ran.filter(|_| !phases.is_empty()) else { return };
        run.testsfailed += phases.iter().filter(|p| p.outcome == "failed").count();
        if let Some(entry) = run.entries[index].as_mut() {
            // pytest has one teardown report, the session's finalizers included.
            entry.phases.retain(|p| p.when != "teardown");
            entry.phases.extend(phases.iter().cloned());
        }
        let item = &run.inventory.items[index];
        let (nodeid, id) = (item.shown.clone(), item.id.clone());
        self.reporter.do_send(TestReported(TestResult {
            index,
            nodeid,
            id,
            worker,
            phases,
            warnings: Vec::new(),
            tries: 1,
        }));
    }

    /// Stops dispatch on every worker at once: queued tests never start.
    /// pytest-xdist, by contrast, lets workers run what they prefetched.
    fn stop(&mut self, stopped: Stopped, exit_override: Option<i32>) {
        let Some(run) = self.run.as_mut() else { return };
        if run.stopped.is_some() {
            return;
        }
        let waiting_retries: Vec<usize> =
            run.queue.pending_tests().into_iter().filter(|&i| !run.failed_tries[i].is_empty()).collect();
        run.queue.stop();
        run.stopped = Some(stopped);
        run.exit_override = exit_override;
        for link in run.links.values() {
            let _ = link.send(ToPython::Stop);
        }
        self.end_waiting_retries(waiting_retries);
    }

    /// Tests a stop caught between a failed try and the next one: their
    /// last failed try is their result (a test never goes unreported).
    fn end_waiting_retries(&mut self, indices: Vec<usize>) {
        for index in indices {
            let Some(run) = self.run.as_mut() else { return };
            let Some(phases) = run.failed_tries[index].pop() else { continue };
            self.record(0, TestDone { index, phases, warnings: Vec::new(), junit: None, max_rss_kb: None });
        }
    }

    /// Ends every test that can no longer run (workers cannot start).
    fn abandon_pending(&mut self, cause: &str) {
        let Some(run) = self.run.as_mut() else { return };
        for index in run.queue.drain_unfinished() {
            let nodeid = self.run.as_ref().unwrap().inventory.items[index].shown.clone();
            self.record(0, crashed(index, &nodeid, cause, cause));
        }
    }

    /// Reports tests that will never start as not run, with the reason.
    fn report_not_run(&mut self, indices: Vec<usize>, cause: &str) {
        for index in indices {
            let Some(run) = self.run.as_mut() else { return };
            if run.entries[index].is_some() {
                continue;
            }
            let nodeid = run.inventory.items[index].shown.clone();
            self.record(0, not_run(index, &nodeid, cause));
        }
    }

    /// `--max-worker-restart` is spent: nothing more starts, the tests left
    /// are reported as not run, and the banner says why (xdist's wording).
    fn give_up_restarting(&mut self, banner: String) {
        let Some(run) = self.run.as_mut() else { return };
        eprintln!("rpytest: {banner} (--max-worker-restart); the tests left are not run");
        let cause = format!("not run: {banner} (--max-worker-restart)");
        let pending = run.queue.pending_tests();
        run.not_run = Some(cause.clone());
        self.stop(Stopped::plain(banner), None);
        self.report_not_run(pending, &cause);
    }

    /// Whether `worker` is being stopped for a timeout: what it says is void.
    fn being_stopped(&self, worker: usize) -> bool {
        self.run.as_ref().is_some_and(|run| run.timed_out.contains_key(&worker))
    }

    /// The watchdog: every running test past its limit has its worker stopped.
    fn check_timeouts(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let now = run.started.elapsed().as_secs_f64();
        run.queue.tick(now);
        for expiry in run.watchdog.expired(&run.queue.running(), now) {
            let nodeid = &run.inventory.items[expiry.test].shown;
            crate::trace::event(|| format!("{nodeid} on gw{} passed {}s", expiry.worker, expiry.secs));
            run.timed_out.insert(expiry.worker, expiry.secs);
            run.links.remove(&expiry.worker);
            run.supervisor.do_send(StopTimedOut { worker: expiry.worker, secs: expiry.secs });
        }
        for slow in run.watchdog.newly_slow(&run.queue.running(), now) {
            let nodeid = run.inventory.items[slow.test].shown.clone();
            self.reporter.do_send(TestSlow { nodeid, worker: slow.worker, secs: slow.secs });
        }
    }

    /// The failure message of a test whose worker was lost under it.
    fn lost_message(&self, msg: &WorkerLost, nodeid: &str, timed_out: Option<f64>) -> String {
        match msg.timed_out.or(timed_out) {
            Some(secs) => {
                format!(
                    "{}: rpytest stopped worker 'gw{}' while running '{nodeid}'",
                    timeouts::describe(secs),
                    msg.worker
                )
            }
            None => format!("worker 'gw{}' crashed while running '{nodeid}': {}", msg.worker, msg.cause),
        }
    }

    /// A worker's leaked processes: a LEAK line in the summary, and a junit
    /// property on the test that started them.
    fn record_leaks(&mut self, worker: usize, leaks: Vec<Leak>) {
        let Some(run) = self.run.as_mut() else { return };
        let total = run.entries.len();
        for leak in leaks.into_iter().filter(|l| l.index < total) {
            let nodeid = &run.inventory.items[leak.index].shown;
            let line = format!("pid {} ({}) was still running after the test; killed", leak.pid, leak.cmdline);
            run.leak_notes.push(format!("LEAK {nodeid} [gw{worker}]: {line}"));
            if let Some(entry) = run.entries[leak.index].as_mut() {
                entry.leaks.push(line);
            }
        }
    }
}

/// The record of a test whose worker died under it: `message` is the one
/// line cause, `text` the whole failure (with the worker's fault log).
fn crashed(index: usize, nodeid: &str, message: &str, text: &str) -> TestDone {
    let phases = vec![crash_phase(nodeid, message, text)];
    TestDone { index, phases, warnings: Vec::new(), junit: None, max_rss_kb: None }
}

/// The record of a test that never started and never will.
fn not_run(index: usize, nodeid: &str, cause: &str) -> TestDone {
    let mut phase = crash_phase(nodeid, cause, cause);
    (phase.category, phase.letter, phase.word) = ("not run".into(), "N".into(), "NOT RUN".into());
    TestDone { index, phases: vec![phase], warnings: Vec::new(), junit: None, max_rss_kb: None }
}

/// The failing phase that stands for a test whose worker died under it.
fn crash_phase(nodeid: &str, message: &str, text: &str) -> PhaseRecord {
    PhaseRecord {
        when: "crash".into(),
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

/// A try that failed as pytest counts failures (not an xfail), and that
/// pytest-rerunfailures did not already rerun (its `rerun` reports).
fn wants_retry(phases: &[PhaseRecord]) -> bool {
    let failed = phases.iter().any(|p| p.outcome == "failed" && p.wasxfail.is_none());
    failed && !phases.iter().any(|p| p.outcome == "rerun")
}

fn final_outcome(phases: &[PhaseRecord]) -> String {
    phases
        .iter()
        .find(|p| p.outcome != "passed")
        .or_else(|| phases.iter().find(|p| p.when == "call"))
        .map_or("passed", |p| if p.category.is_empty() { p.outcome.as_str() } else { p.category.as_str() })
        .to_string()
}

impl Actor for Scheduler {
    type Context = Context<Self>;
}

impl Handler<StartRun> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: StartRun, ctx: &mut Context<Self>) {
        let total = msg.inventory.items.len();
        if msg.watchdog.active() {
            ctx.run_interval(WATCH_EVERY, |act, _| act.check_timeouts());
        }
        let shared_teardown =
            if msg.inventory.shared_fixtures.is_empty() { SharedTeardown::Done } else { SharedTeardown::Pending };
        self.run = Some(Run {
            queue: msg.queue,
            started: Instant::now(),
            inventory: msg.inventory,
            links: HashMap::new(),
            finished_workers: HashSet::new(),
            told_no_more: HashSet::new(),
            failed_tries: vec![Vec::new(); total],
            entries: vec![None; total],
            testsfailed: 0,
            startup_failures: 0,
            restarts: msg.restarts,
            not_run: None,
            watchdog: msg.watchdog,
            timed_out: HashMap::new(),
            leak_notes: Vec::new(),
            supervisor: msg.supervisor,
            history: msg.history,
            completed: false,
            stopped: None,
            exit_override: None,
            last_ran: None,
            shared_teardown,
            waiting: HashSet::new(),
            retired: HashSet::new(),
            sequences: HashMap::new(),
            failed_after: Vec::new(),
            isolation_started: false,
            isolating: HashMap::new(),
        });
    }
}

impl Handler<WorkerJoined> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerJoined, _: &mut Context<Self>) {
        crate::trace::event(|| format!("worker gw{} said hello", msg.worker));
        let Some(run) = self.run.as_mut() else { return };
        if let Some(seen) = &msg.inventory {
            if *seen != run.inventory.inventory {
                eprintln!(
                    "rpytest: error: worker gw{} collected a different set of tests than the zygote \
                     (is collection non-deterministic?); it is stopped",
                    msg.worker
                );
                let _ = msg.link.send(ToPython::Shutdown);
                return;
            }
        }
        run.finished_workers.remove(&msg.worker);
        run.told_no_more.remove(&msg.worker);
        run.sequences.insert(msg.worker, Vec::new());
        run.links.insert(msg.worker, msg.link);
    }
}

impl Handler<WorkRequest> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkRequest, ctx: &mut Context<Self>) {
        if self.being_stopped(msg.worker) {
            return;
        }
        self.dispatch(msg.worker, ctx);
    }
}

impl Handler<TestFinished> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: TestFinished, ctx: &mut Context<Self>) {
        if self.being_stopped(msg.worker) {
            return;
        }
        let Some(run) = self.run.as_mut() else { return };
        run.queue.tick(run.started.elapsed().as_secs_f64());
        if msg.done.index >= run.queue.total() || !run.queue.complete(msg.worker, msg.done.index) {
            eprintln!("rpytest: warning: ignoring a stray report for test #{} from gw{}", msg.done.index, msg.worker);
            return;
        }
        run.startup_failures = 0;
        if let Some(failure) = run.isolating.remove(&msg.worker) {
            // A rerun alone: a diagnosis, not a second result.
            self.isolated_result(failure, &msg.done.phases);
            self.maybe_complete();
            return;
        }
        let before = run.sequences.entry(msg.worker).or_default();
        let failed = msg.done.phases.iter().any(|p| p.outcome == "failed" && p.wasxfail.is_none());
        let failure = FailedAfter { test: msg.done.index, worker: msg.worker, before: before.clone() };
        before.push(msg.done.index);
        if self.retried(msg.worker, &msg.done) {
            self.ensure_asking_worker();
        } else {
            if let Some(run) = self.run.as_mut().filter(|_| failed && !failure.before.is_empty()) {
                run.failed_after.push(failure);
            }
            self.record(msg.worker, msg.done);
        }
        self.send_status();
        // A worker that asked while it held enough is answered now.
        self.answer_waiting(ctx);
        self.maybe_complete();
    }
}

impl Handler<WorkerFinished> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerFinished, _: &mut Context<Self>) {
        crate::trace::event(|| format!("worker gw{} finished", msg.worker));
        if self.being_stopped(msg.worker) {
            return;
        }
        if let Some(run) = self.run.as_mut() {
            run.finished_workers.insert(msg.worker);
            if run.retired.remove(&msg.worker) {
                // Its unstarted tests stay in its slot, for a fresh process
                // (order-safe, and without the memory the old one held).
                if !run.queue.worker_retired(msg.worker).is_empty() {
                    run.supervisor.do_send(RestartWorker { worker: msg.worker });
                }
                return self.maybe_complete();
            }
            let released = run.queue.release(msg.worker);
            let not_run = run.not_run.clone();
            let waiting_retries = released.iter().copied().filter(|&i| !run.failed_tries[i].is_empty()).collect();
            self.end_waiting_retries(waiting_retries);
            if let Some(cause) = not_run {
                self.report_not_run(released, &cause);
            }
        }
        self.offer_fresh_steal(msg.worker);
        self.maybe_complete();
    }
}

impl Handler<TestInterrupted> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: TestInterrupted, _: &mut Context<Self>) {
        if self.being_stopped(msg.worker) {
            return;
        }
        let Some(run) = self.run.as_mut() else { return };
        let i = msg.interruption;
        if i.index >= run.queue.total() || !run.queue.complete(msg.worker, i.index) {
            return eprintln!("rpytest: warning: ignoring a stray interruption from gw{}", msg.worker);
        }
        if !i.phases.is_empty() {
            let done =
                TestDone { index: i.index, phases: i.phases, warnings: i.warnings, junit: None, max_rss_kb: None };
            self.record(msg.worker, done);
        }
        // pytest: Exit.returncode when given, else "interrupted" (2); the
        // banner goes after the counts line, and the summary sections only
        // print, for the codes pytest summarizes.
        let exitstatus = i.returncode.unwrap_or(2);
        let stopped = Stopped {
            banner: i.message,
            detail: i.detail,
            after_counts: exitstatus != 2,
            sections: matches!(exitstatus, 0 | 1 | 2 | 4 | 5),
        };
        // Ctrl-C stopped the run before this worker said where it landed.
        if let Some(run) = self.run.as_mut() {
            if run.stopped.as_ref().is_some_and(|s| s.banner == CTRL_C_BANNER && s.detail.is_empty()) {
                run.stopped = None;
            }
        }
        self.stop(stopped, Some(exitstatus));
        self.maybe_complete();
    }
}

impl Handler<RunInterrupted> for Scheduler {
    type Result = ();

    fn handle(&mut self, _: RunInterrupted, _: &mut Context<Self>) {
        self.stop(Stopped::plain(CTRL_C_BANNER), Some(2));
        self.maybe_complete();
    }
}

impl Handler<StopRequested> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: StopRequested, _: &mut Context<Self>) {
        if msg.interrupted {
            self.stop(Stopped::plain(format!("Interrupted: {}", msg.reason)), Some(2));
        } else {
            self.stop(Stopped::plain(msg.reason), None);
        }
        self.maybe_complete();
    }
}

impl Handler<SharedFixturesTornDown> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: SharedFixturesTornDown, _: &mut Context<Self>) {
        self.record_shared_teardown(msg.phases);
        if let Some(run) = self.run.as_mut() {
            run.shared_teardown = SharedTeardown::Done;
        }
        self.maybe_complete();
    }
}

impl Handler<WorkerLost> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerLost, _: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        run.links.remove(&msg.worker);
        run.finished_workers.remove(&msg.worker);
        run.sequences.remove(&msg.worker);
        if let Some(failure) = run.isolating.remove(&msg.worker) {
            // A rerun alone crashed: say so; the test's result stands.
            run.queue.worker_lost(msg.worker);
            let nodeid = &run.inventory.items[failure.test].shown;
            run.leak_notes.push(format!("{nodeid}: its worker was lost running it alone ({})", msg.cause));
            return self.maybe_complete();
        }
        let lost = run.queue.worker_lost(msg.worker);
        let not_run = run.not_run.clone();
        let timed_out = run.timed_out.remove(&msg.worker);
        run.watchdog.forget(msg.worker);
        match lost.in_flight {
            Some(index) => {
                let nodeid = run.inventory.items[index].shown.clone();
                let message = self.lost_message(&msg, &nodeid, timed_out);
                let text = crash::failure_text(&message, msg.worker, msg.log.as_deref());
                let done = crashed(index, &nodeid, &message, &text);
                // A retried crash runs on a fresh worker: this one is gone.
                if !self.retried(msg.worker, &done) {
                    self.record(msg.worker, done);
                }
            }
            None => self.run.as_mut().unwrap().startup_failures += 1,
        }
        if let Some(cause) = not_run {
            // Stopping after the restart budget: what it held never starts.
            self.report_not_run(lost.dropped, &cause);
            return self.maybe_complete();
        }
        let run = self.run.as_mut().unwrap();
        let spent = run.restarts.spend(msg.worker).filter(|_| run.queue.has_pending());
        if run.startup_failures >= MAX_STARTUP_FAILURES {
            let cause = format!("not run: workers keep dying before running a test (last: {})", msg.cause);
            eprintln!("rpytest: error: {cause}");
            self.abandon_pending(&cause);
        } else if let Some(banner) = spent {
            self.give_up_restarting(banner);
        } else if run.queue.has_pending() {
            run.supervisor.do_send(RestartWorker { worker: msg.worker });
        }
        self.maybe_complete();
    }
}

impl Handler<RetireWorker> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: RetireWorker, _: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        if run.stopped.is_some() || run.finished_workers.contains(&msg.worker) {
            return;
        }
        if let Some(link) = run.links.get(&msg.worker) {
            let _ = link.send(ToPython::Stop);
            run.retired.insert(msg.worker);
        }
    }
}

impl Handler<TestsLeaked> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: TestsLeaked, _: &mut Context<Self>) {
        self.record_leaks(msg.worker, msg.leaks);
    }
}
