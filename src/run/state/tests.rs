//! The run's decisions, driven event by event as the Scheduler drives them:
//! workers join and ask, tests finish, workers are lost; the effects say
//! what the run did.

use serde_json::{json, Value};

use super::records::final_outcome;
use super::*;
use crate::protocol::Interruption;
use crate::report::events::{RunEvent, TestRetrying};
use crate::report::TestResult;
use crate::run::timeouts::TimeoutSources;
use crate::schedule::run_queue::Order;

/// An inventory of `tests` tests, `t.py::t0` on; `extra` overrides fields
/// (`maxfail`, `shared_fixtures`, ...).
fn inventory(tests: usize, extra: Value) -> Arc<Inventory> {
    Arc::new(crate::protocol::testing::inventory(tests, extra))
}

/// A run without history (the shared pool, collection order) and without
/// time limits; xdist's restart budget.
fn start(tests: usize, workers: usize, extra: Value, settings: Settings) -> RunState {
    start_with(inventory(tests, extra), workers, Watchdog::default(), RestartBudget::new(None, workers), settings)
}

fn start_with(
    inventory: Arc<Inventory>,
    workers: usize,
    watchdog: Watchdog,
    restarts: RestartBudget,
    settings: Settings,
) -> RunState {
    let tests = inventory.items.len();
    let queue = RunQueue::new(vec![None; tests], (0..tests).map(|i| vec![i]).collect(), workers, Order::Collection);
    RunState::new(inventory, queue, watchdog, restarts, settings)
}

/// Worker `worker` says hello and asks for work: the tests it was sent.
fn join(state: &mut RunState, worker: usize) -> Vec<usize> {
    state.on_worker_joined(worker, None).unwrap();
    ask(state, worker)
}

fn ask(state: &mut RunState, worker: usize) -> Vec<usize> {
    sent_tests(&state.on_work_request(WorkRequest { worker }, 0.0), worker)
}

fn finish(state: &mut RunState, worker: usize, index: usize, outcome: &str) -> Vec<Effect> {
    state.on_test_finished(TestFinished { worker, done: done(index, outcome) }, 0.0)
}

fn done(index: usize, outcome: &str) -> TestDone {
    let call =
        PhaseRecord { when: "call".into(), outcome: outcome.into(), category: outcome.into(), ..Default::default() };
    TestDone { index, phases: vec![call], warnings: Vec::new(), junit: None, max_rss_kb: None, item: None }
}

fn lost(worker: usize) -> WorkerLost {
    WorkerLost { worker, cause: "killed by signal 9 (SIGKILL)".into(), log: None, timed_out: None }
}

fn sent_tests(effects: &[Effect], to: usize) -> Vec<usize> {
    let sent = effects.iter().filter_map(|e| match e {
        Effect::ToWorker { worker, message: ToPython::Run { indices } } if *worker == to => Some(indices.clone()),
        _ => None,
    });
    sent.flatten().collect()
}

/// Workers told to start nothing more.
fn told_to_stop(effects: &[Effect]) -> Vec<usize> {
    let stops = effects.iter().filter_map(|e| match e {
        Effect::ToWorker { worker, message: ToPython::Stop } => Some(*worker),
        _ => None,
    });
    stops.collect()
}

/// (test, outcome) of each result reported.
fn reported(effects: &[Effect]) -> Vec<(usize, String)> {
    let results = effects.iter().filter_map(|e| match e {
        Effect::Event(RunEvent::TestFinished(result)) => Some((result.index, final_outcome(&result.phases))),
        _ => None,
    });
    results.collect()
}

fn results(effects: &[Effect]) -> Vec<&TestResult> {
    effects
        .iter()
        .filter_map(|e| if let Effect::Event(RunEvent::TestFinished(result)) = e { Some(&**result) } else { None })
        .collect()
}

fn restarted(effects: &[Effect]) -> Vec<usize> {
    effects.iter().filter_map(|e| if let Effect::RestartWorker { worker } = e { Some(*worker) } else { None }).collect()
}

/// The exit code and the stop's banner, once the run is complete.
fn completion(effects: &[Effect]) -> Option<(ExitCode, Option<String>)> {
    effects.iter().find_map(|e| match e {
        Effect::RunComplete { exit, stopped, .. } => Some((*exit, stopped.as_ref().map(|s| s.banner.clone()))),
        _ => None,
    })
}

fn finished(state: &mut RunState, worker: usize) -> Vec<Effect> {
    state.on_worker_finished(WorkerFinished { worker }, 0.0)
}

/// `worker` passes the last test it holds, is told there is no more work
/// and ends: the effects of its end.
fn pass_last(state: &mut RunState, worker: usize, index: usize) -> Vec<Effect> {
    finish(state, worker, index, "passed");
    assert!(ask(state, worker).is_empty());
    finished(state, worker)
}

#[test]
fn maxfail_counts_failures_across_workers_and_stops_every_worker() {
    let mut state = start(4, 2, json!({"maxfail": 2}), Settings::default());
    assert_eq!((join(&mut state, 0), join(&mut state, 1)), (vec![0], vec![1]));
    let first = finish(&mut state, 0, 0, "failed");
    assert_eq!(reported(&first), [(0, "failed".to_string())]);
    assert!(told_to_stop(&first).is_empty(), "one failure of two stops nothing");
    let second = finish(&mut state, 1, 1, "failed");
    assert_eq!(told_to_stop(&second), [0, 1]);
    // Stopped: the tests left never start, and no one is told to run them.
    assert_eq!(ask(&mut state, 0), Vec::<usize>::new());
    assert_eq!(completion(&finished(&mut state, 0)), None, "gw1 still runs");
    let end = finished(&mut state, 1);
    let expected = (ExitCode::TestsFailed, Some("stopping after 2 failures".to_string()));
    assert_eq!(completion(&end), Some(expected));
    assert!(reported(&end).is_empty());
}

#[test]
fn a_stop_pytest_asks_for_as_shouldstop_is_an_interruption() {
    let mut state = start(2, 1, json!({}), Settings::default());
    join(&mut state, 0);
    finish(&mut state, 0, 0, "passed");
    let stop = state.on_stop_requested(StopRequested { reason: "enough".into(), interrupted: true });
    assert_eq!(told_to_stop(&stop), [0]);
    let end = finished(&mut state, 0);
    assert_eq!(completion(&end), Some((ExitCode::Interrupted, Some("Interrupted: enough".to_string()))));
}

#[test]
fn a_worker_lost_after_a_stop_crashes_its_running_test_once_and_drops_the_rest() {
    let mut state = start(4, 2, json!({"maxfail": 1}), Settings::default());
    assert_eq!((join(&mut state, 0), join(&mut state, 1)), (vec![0], vec![1]));
    assert_eq!(ask(&mut state, 0), [2], "gw0 now holds 0 (running) and 2");
    assert_eq!(told_to_stop(&finish(&mut state, 1, 1, "failed")), [0, 1]);
    assert!(completion(&finished(&mut state, 1)).is_none());
    let gone = state.on_worker_lost(lost(0));
    assert_eq!(reported(&gone), [(0, "failed".to_string())], "test 2 never started: not reported");
    assert!(restarted(&gone).is_empty(), "nothing is left to run");
    let crash = results(&gone)[0].phases[0].crash.clone().unwrap();
    assert_eq!(crash, "worker 'gw0' crashed while running 't.py::t0': killed by signal 9 (SIGKILL)");
    assert_eq!(completion(&gone), Some((ExitCode::TestsFailed, Some("stopping after 1 failures".to_string()))));
    // The Supervisor's word on the same worker again changes nothing.
    assert!(reported(&state.on_worker_lost(lost(0))).is_empty());
}

#[test]
fn workers_that_keep_dying_before_running_a_test_end_the_run() {
    let mut state = start(2, 1, json!({}), Settings::default());
    for _ in 1..MAX_STARTUP_FAILURES {
        let gone = state.on_worker_lost(lost(0));
        assert_eq!(restarted(&gone), [0]);
        assert!(reported(&gone).is_empty());
    }
    let last = state.on_worker_lost(lost(0));
    assert!(restarted(&last).is_empty());
    let cause = "not run: workers keep dying before running a test (last: killed by signal 9 (SIGKILL))";
    let error = format!("rpytest: error: {cause}");
    assert!(last.iter().any(|e| matches!(e, Effect::Event(RunEvent::Diagnostic(line)) if **line == *error)));
    assert_eq!(reported(&last), [(0, "failed".to_string()), (1, "failed".to_string())]);
    assert_eq!(results(&last)[1].phases[0].crash.as_deref(), Some(cause));
    assert_eq!(completion(&last), Some((ExitCode::TestsFailed, None)));
}

#[test]
fn a_test_run_resets_the_start_up_failures() {
    let mut state = start(3, 1, json!({}), Settings::default());
    state.on_worker_lost(lost(0));
    state.on_worker_lost(lost(0));
    assert_eq!(join(&mut state, 0), [0]);
    finish(&mut state, 0, 0, "passed");
    state.on_worker_lost(lost(0));
    assert_eq!(restarted(&state.on_worker_lost(lost(0))), [0], "two deaths since a test ran");
}

/// A worker that dies in its session's end (a conftest's
/// `pytest_sessionfinish` calling `os._exit`) after it was told there is no
/// more work is neither replaced nor a start-up failure, even while another
/// worker still has tests planned that it could not take (collection order):
/// replacements that died the same way used to end the run with "workers
/// keep dying before running a test".
#[test]
fn a_worker_lost_while_ending_its_session_is_not_replaced() {
    // Planned from history: gw0 runs tests 0 and 2, gw1 runs 1 and 3.
    let queue = RunQueue::new(vec![Some(1.0); 4], (0..4).map(|i| vec![i]).collect(), 2, Order::Collection);
    let restarts = RestartBudget::new(None, 2);
    let mut state = RunState::new(inventory(4, json!({})), queue, Watchdog::default(), restarts, Settings::default());
    assert_eq!((join(&mut state, 0), join(&mut state, 1)), (vec![0], vec![1]));
    finish(&mut state, 1, 1, "passed");
    assert_eq!(ask(&mut state, 1), [3]);
    finish(&mut state, 1, 3, "passed");
    // Test 2 comes before what gw1 ran: it stays gw0's.
    let answer = state.on_work_request(WorkRequest { worker: 1 }, 0.0);
    assert!(matches!(answer.as_slice(), [Effect::ToWorker { worker: 1, message: ToPython::NoMore }, ..]), "{answer:?}");
    let gone = state.on_worker_lost(lost(1));
    assert!(restarted(&gone).is_empty() && reported(&gone).is_empty(), "{gone:?}");
    assert!(!gone.iter().any(|e| matches!(e, Effect::Event(RunEvent::Diagnostic(_)))), "{gone:?}");
    finish(&mut state, 0, 0, "passed");
    assert_eq!(ask(&mut state, 0), [2]);
    assert_eq!(completion(&pass_last(&mut state, 0, 2)), Some((ExitCode::Ok, None)));
}

#[test]
fn a_lost_workers_running_test_becomes_a_failed_crash_record_and_the_slot_restarts() {
    let mut state = start(2, 1, json!({}), Settings::default());
    assert_eq!(join(&mut state, 0), [0]);
    let event = WorkerLost { log: Some("Fatal Python error".into()), ..lost(0) };
    let gone = state.on_worker_lost(event);
    assert_eq!(reported(&gone), [(0, "failed".to_string())]);
    let phase = &results(&gone)[0].phases[0];
    assert_eq!((phase.when.as_str(), phase.word.as_str()), ("crash", "FAILED"));
    assert!(phase.longrepr.as_deref().unwrap().ends_with("(faulthandler, last lines):\nFatal Python error"));
    let observed = gone.iter().find_map(|e| match e {
        Effect::Event(RunEvent::Observed(seen)) => Some((seen.duration, seen.outcome.clone())),
        _ => None,
    });
    assert_eq!(observed, Some((None, "failed".to_string())), "a crash has no duration");
    assert_eq!(restarted(&gone), [0]);
    // Its replacement runs the rest; the crash decides the exit code.
    assert_eq!(join(&mut state, 0), [1]);
    assert_eq!(completion(&pass_last(&mut state, 0, 1)), Some((ExitCode::TestsFailed, None)));
}

#[test]
fn a_test_past_its_limit_stops_its_worker_and_fails_as_a_timeout() {
    let watchdog = Watchdog::new(TimeoutSources { rpytest: Some(1.0), ..Default::default() }, [None, None]);
    let mut state = start_with(inventory(2, json!({})), 1, watchdog, RestartBudget::new(None, 1), Settings::default());
    assert_eq!(join(&mut state, 0), [0]);
    assert!(state.on_watch(0.5).is_empty());
    let watch = state.on_watch(1.5);
    let Some(Effect::StopTimedOut { worker: 0, secs }) = watch.get(1) else { panic!("{watch:?}") };
    assert!(matches!(watch[0], Effect::DropLink { worker: 0 }) && *secs == 1.0);
    assert!(finish(&mut state, 0, 0, "passed").is_empty(), "what it says now is void");
    let gone = state.on_worker_lost(lost(0));
    let crash = results(&gone)[0].phases[0].crash.clone().unwrap();
    assert_eq!(crash, "Timeout (>1.0s): rpytest stopped worker 'gw0' while running 't.py::t0'");
    assert_eq!(restarted(&gone), [0]);
}

#[test]
fn a_failed_try_is_retried_and_passing_later_makes_it_flaky() {
    let mut state = start(2, 1, json!({}), Settings { retries: 1, ..Settings::default() });
    assert_eq!(join(&mut state, 0), [0]);
    let first = finish(&mut state, 0, 0, "failed");
    assert!(reported(&first).is_empty(), "a try with tries left is not a result");
    let Effect::Event(RunEvent::Retrying(retrying)) = &first[0] else { panic!("{first:?}") };
    assert!(matches!(**retrying, TestRetrying { worker: 0, attempt: 1, of: 2, failed: Some(_), .. }));
    assert_eq!(ask(&mut state, 0), [0], "the retry goes first");
    let second = finish(&mut state, 0, 0, "passed");
    let result = results(&second)[0];
    assert_eq!((result.index, result.tries, result.flaky()), (0, 2, true));
    assert!(second.iter().any(|e| matches!(e, Effect::Event(RunEvent::Observed(seen)) if seen.flaky)));
    assert_eq!(ask(&mut state, 0), [1]);
    assert_eq!(completion(&pass_last(&mut state, 0, 1)), Some((ExitCode::Ok, None)));
}

#[test]
fn a_test_that_fails_every_try_fails_once_with_its_tries() {
    let mut state = start(1, 1, json!({"maxfail": 1}), Settings { retries: 1, ..Settings::default() });
    join(&mut state, 0);
    assert!(told_to_stop(&finish(&mut state, 0, 0, "failed")).is_empty(), "a retried try is not counted");
    ask(&mut state, 0);
    let last = finish(&mut state, 0, 0, "failed");
    assert_eq!(told_to_stop(&last), [0]);
    let result = results(&last)[0];
    assert_eq!((result.tries, result.flaky()), (2, false));
}

#[test]
fn a_stop_between_tries_reports_the_last_failed_try() {
    let mut state = start(2, 2, json!({"maxfail": 1}), Settings { retries: 1, ..Settings::default() });
    assert_eq!((join(&mut state, 0), join(&mut state, 1)), (vec![0], vec![1]));
    finish(&mut state, 0, 0, "failed");
    let stop = state.on_stop_requested(StopRequested { reason: "stop".into(), interrupted: false });
    assert_eq!(reported(&stop), [(0, "failed".to_string())]);
}

#[test]
fn the_run_completes_after_the_last_worker_and_the_shared_teardown() {
    let mut state = start(2, 2, json!({"shared_fixtures": ["db"]}), Settings::default());
    assert_eq!((join(&mut state, 0), join(&mut state, 1)), (vec![0], vec![1]));
    finish(&mut state, 0, 0, "passed");
    finish(&mut state, 1, 1, "passed");
    ask(&mut state, 0);
    ask(&mut state, 1);
    let first = finished(&mut state, 0);
    assert!(!first.iter().any(|e| matches!(e, Effect::TeardownShared { .. } | Effect::RunComplete { .. })));
    let last = finished(&mut state, 1);
    assert!(matches!(last[..], [Effect::TeardownShared { last_ran: Some(1) }]));
    // The teardown failed: the last test's teardown phase, and the exit code.
    let error = PhaseRecord { when: "teardown".into(), outcome: "failed".into(), ..Default::default() };
    let torn_down = state.on_shared_fixtures_torn_down(SharedFixturesTornDown { phases: vec![error] });
    assert_eq!(results(&torn_down)[0].index, 1);
    assert_eq!(completion(&torn_down), Some((ExitCode::TestsFailed, None)));
}

#[test]
fn without_shared_fixtures_the_last_worker_completes_the_run() {
    let mut state = start(1, 1, json!({}), Settings::default());
    join(&mut state, 0);
    assert!(completion(&finish(&mut state, 0, 0, "passed")).is_none(), "gw0 has not finished");
    ask(&mut state, 0);
    assert_eq!(completion(&finished(&mut state, 0)), Some((ExitCode::Ok, None)));
}

#[test]
fn pytest_exit_chooses_the_exit_code_over_ctrl_c() {
    let mut state = start(2, 1, json!({}), Settings::default());
    join(&mut state, 0);
    assert_eq!(told_to_stop(&state.on_run_interrupted(RunInterrupted)), [0]);
    let interruption = Interruption {
        index: 0,
        phases: Vec::new(),
        warnings: Vec::new(),
        message: "Exit: bye".into(),
        detail: Vec::new(),
        returncode: Some(3),
    };
    state.on_test_interrupted(TestInterrupted { worker: 0, interruption });
    assert_eq!(completion(&finished(&mut state, 0)), Some((ExitCode::InternalError, Some("Exit: bye".to_string()))));
}

#[test]
fn a_spent_restart_budget_reports_the_tests_left_not_run() {
    let (inventory, budget) = (inventory(3, json!({})), RestartBudget::new(Some(0), 1));
    let mut state = start_with(inventory, 1, Watchdog::default(), budget, Settings::default());
    assert_eq!(join(&mut state, 0), [0]);
    let gone = state.on_worker_lost(lost(0));
    let outcomes = reported(&gone);
    assert_eq!(outcomes, [(0, "failed".into()), (1, "not run".into()), (2, "not run".into())]);
    let banner = "worker gw0 crashed and worker restarting disabled".to_string();
    assert_eq!(completion(&gone), Some((ExitCode::TestsFailed, Some(banner))));
}

#[test]
fn a_worker_that_collected_other_tests_is_refused() {
    let mut state = start(1, 1, json!({}), Settings::default());
    assert!(state.on_worker_joined(0, Some("other")).is_err());
    assert!(ask(&mut state, 0).is_empty(), "a refused worker is sent nothing");
}

#[test]
fn a_lost_zygote_ends_every_test_once_with_exit_code_3() {
    let mut state = start(4, 1, json!({}), Settings::default());
    assert_eq!(join(&mut state, 0), [0]);
    let cause = "the zygote was killed by signal 9 (SIGKILL)";
    let lost_zygote = state.on_zygote_lost(ZygoteLost { cause: cause.into() });
    assert_eq!(reported(&lost_zygote), [(1, "not run".into()), (2, "not run".into()), (3, "not run".into())]);
    assert_eq!(results(&lost_zygote)[0].phases[0].crash.as_deref(), Some(&*format!("not run: {cause}")));
    assert_eq!(completion(&lost_zygote), None, "the worker's test is still to end");
    let gone = state.on_worker_lost(WorkerLost { cause: cause.into(), ..lost(0) });
    assert!(restarted(&gone).is_empty(), "nothing starts without the zygote");
    assert_eq!(reported(&gone), [(0, "failed".into())]);
    assert_eq!(completion(&gone), Some((ExitCode::InternalError, Some(cause.to_string()))));
}
