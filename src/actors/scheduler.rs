//! Scheduler actor: owns the run's state and is the only source of test
//! events for the Reporter and History.
//!
//! Accepts `StartRun` (inventory and durations known), `WorkerJoined`,
//! `WorkRequest` (a worker wants more), `TestFinished`, `WorkerFinished` and
//! `WorkerLost` (from the Supervisor, once a worker's death is certain).
//! The queue logic lives in `RunQueue`; this shell routes messages, turns a
//! lost worker's running test into a crash report, and tells the Supervisor
//! to replace workers and when the run is complete.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use super::history::{History, Observe};
use super::reporter::{Reporter, TestReported};
use super::supervisor::{RestartWorker, RunComplete, Supervisor};
use crate::protocol::{Inventory, PhaseRecord, SinkEntry, TestDone, ToPython};
use crate::report::{domain_of, TestResult};
use crate::run_queue::RunQueue;

/// A worker that dies this many times without running a test means the
/// workers cannot start at all; the run stops instead of looping.
const MAX_STARTUP_FAILURES: usize = 3;

pub struct Scheduler {
    reporter: Addr<Reporter>,
    run: Option<Run>,
}

struct Run {
    inventory: Arc<Inventory>,
    queue: RunQueue,
    /// The queue's clock: it plans from how long running tests have run.
    started: Instant,
    links: HashMap<usize, UnboundedSender<ToPython>>,
    finished_workers: HashSet<usize>,
    entries: Vec<Option<SinkEntry>>,
    testsfailed: usize,
    startup_failures: usize,
    supervisor: Addr<Supervisor>,
    history: Addr<History>,
    completed: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct StartRun {
    pub inventory: Arc<Inventory>,
    /// The ordered queue, built from the inventory, history and `--dist`.
    pub queue: RunQueue,
    pub supervisor: Addr<Supervisor>,
    pub history: Addr<History>,
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

/// A worker is gone for good without finishing; `cause` says how it ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerLost {
    pub worker: usize,
    pub cause: String,
}

impl Scheduler {
    pub fn new(reporter: Addr<Reporter>) -> Self {
        Scheduler { reporter, run: None }
    }

    fn record(&mut self, worker: usize, done: TestDone) {
        let Some(run) = self.run.as_mut() else { return };
        let TestDone { index, phases, warnings, max_rss_kb } = done;
        let item = &run.inventory.items[index];
        let (nodeid, shown) = (item.id.clone(), item.shown.clone());
        run.testsfailed += phases.iter().filter(|p| p.outcome == "failed" && p.wasxfail.is_none()).count();
        let crash = phases.iter().find(|p| p.when == "crash").and_then(|p| p.longrepr.clone());
        let duration = crash.is_none().then(|| phases.iter().map(|p| p.duration).sum());
        let outcome = final_outcome(&phases);
        run.history.do_send(Observe { nodeid: nodeid.clone(), duration, outcome, peak_rss_kb: max_rss_kb });
        let wire_phases = phases.iter().filter(|p| p.when != "crash").cloned().collect();
        run.entries[index] = Some(SinkEntry { index, phases: wire_phases, crash });
        self.reporter.do_send(TestReported(TestResult { index, nodeid: shown, worker, phases, warnings }));
    }

    fn maybe_complete(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let live = run.links.keys().any(|w| !run.finished_workers.contains(w));
        if run.completed || !run.queue.is_finished() || live {
            return;
        }
        run.completed = true;
        let entries = run.entries.iter_mut().filter_map(Option::take).collect();
        let failed = run.testsfailed + run.inventory.collect_failed;
        let exitstatus = if failed > 0 { 1 } else { 0 };
        run.supervisor.do_send(RunComplete { entries, exitstatus });
    }

    /// Ends every test that can no longer run (workers cannot start).
    fn abandon_pending(&mut self, cause: &str) {
        let Some(run) = self.run.as_mut() else { return };
        for index in run.queue.drain_unfinished() {
            let nodeid = self.run.as_ref().unwrap().inventory.items[index].shown.clone();
            self.record(0, crashed(index, crash_phase(&nodeid, cause)));
        }
    }
}

fn crashed(index: usize, phase: PhaseRecord) -> TestDone {
    TestDone { index, phases: vec![phase], warnings: Vec::new(), max_rss_kb: None }
}

/// The failing phase that stands for a test whose worker died under it.
fn crash_phase(nodeid: &str, message: &str) -> PhaseRecord {
    PhaseRecord {
        when: "crash".into(),
        outcome: "failed".into(),
        category: "failed".into(),
        letter: "F".into(),
        word: "FAILED".into(),
        duration: 0.0,
        full: None,
        sections: Vec::new(),
        wasxfail: None,
        longrepr: Some(message.to_string()),
        crash: Some(message.to_string()),
        crash_line: Some(format!("{nodeid}: {message}")),
        head_line: Some(domain_of(nodeid)),
        skip: None,
    }
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

    fn handle(&mut self, msg: StartRun, _: &mut Context<Self>) {
        let total = msg.inventory.items.len();
        self.run = Some(Run {
            queue: msg.queue,
            started: Instant::now(),
            inventory: msg.inventory,
            links: HashMap::new(),
            finished_workers: HashSet::new(),
            entries: vec![None; total],
            testsfailed: 0,
            startup_failures: 0,
            supervisor: msg.supervisor,
            history: msg.history,
            completed: false,
        });
    }
}

impl Handler<WorkerJoined> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerJoined, _: &mut Context<Self>) {
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
        run.links.insert(msg.worker, msg.link);
    }
}

impl Handler<WorkRequest> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkRequest, _: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        let Some(link) = run.links.get(&msg.worker) else { return };
        run.queue.tick(run.started.elapsed().as_secs_f64());
        let batch = run.queue.next_batch(msg.worker);
        let _ = link.send(if batch.is_empty() { ToPython::NoMore } else { ToPython::Run { indices: batch } });
    }
}

impl Handler<TestFinished> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: TestFinished, _: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        run.queue.tick(run.started.elapsed().as_secs_f64());
        if msg.done.index >= run.queue.total() || !run.queue.complete(msg.worker, msg.done.index) {
            eprintln!("rpytest: warning: ignoring a stray report for test #{} from gw{}", msg.done.index, msg.worker);
            return;
        }
        run.startup_failures = 0;
        self.record(msg.worker, msg.done);
        self.maybe_complete();
    }
}

impl Handler<WorkerFinished> for Scheduler {
    type Result = ();

    fn handle(&mut self, msg: WorkerFinished, _: &mut Context<Self>) {
        if let Some(run) = self.run.as_mut() {
            run.finished_workers.insert(msg.worker);
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
        let lost = run.queue.worker_lost(msg.worker);
        match lost.in_flight {
            Some(index) => {
                let nodeid = run.inventory.items[index].shown.clone();
                let message = format!("worker 'gw{}' crashed while running '{nodeid}': {}", msg.worker, msg.cause);
                self.record(msg.worker, crashed(index, crash_phase(&nodeid, &message)));
            }
            None => run.startup_failures += 1,
        }
        let run = self.run.as_mut().unwrap();
        if run.startup_failures >= MAX_STARTUP_FAILURES {
            let cause = format!("not run: workers keep dying before running a test (last: {})", msg.cause);
            eprintln!("rpytest: error: {cause}");
            self.abandon_pending(&cause);
        } else if run.queue.has_pending() {
            run.supervisor.do_send(RestartWorker { worker: msg.worker });
        }
        self.maybe_complete();
    }
}
