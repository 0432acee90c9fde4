//! Workers under the fake clock: a timeout's escalation, a silent worker,
//! the connect watchdog, and how a worker's two-part ending is settled.

use super::*;
use crate::protocol::{FromPython, WorkerExit};
use crate::run::timeouts::{DUMP_WAIT, TERM_GRACE};
use crate::supervise::silence::Silent;

const CONNECT_LIMIT: Duration = Duration::from_secs(30);

fn exit(worker: usize, pid: u32, signal: i32) -> WorkerExit {
    WorkerExit { worker, pid, exit_code: None, signal: Some(signal) }
}

#[test]
fn a_timed_out_worker_gets_sigusr1_then_sigterm_then_sigkill() {
    let mut sim = Sim::running(1);
    let shown = sim.on(|life, now| life.on_stop_timed_out(0, 5.0, now));
    assert!(said(&shown)[0].ends_with("on worker gw0 (pid 200): stopping it"), "{shown:?}");
    assert_eq!(deeds(&shown), ["signal 200 SIGUSR1", "arm TimeoutTerm in 300ms"]);
    assert!(sim.on(|life, now| life.on_stop_timed_out(0, 5.0, now)).is_empty(), "stopped once");
    assert!(sim.advance(DUMP_WAIT / 2).is_empty(), "the stack dump has its time");
    let shown = sim.advance(DUMP_WAIT / 2);
    assert_eq!(shown, ["kill under 200", "signal tree 200 SIGTERM", "arm KillWorker in 2s"]);
    assert!(sim.advance(TERM_GRACE - Duration::from_millis(1)).is_empty(), "SIGTERM has its grace");
    assert_eq!(sim.advance(Duration::from_millis(1)), ["signal tree 200 SIGKILL"]);
    sim.on(|life, now| life.on_worker_disconnected(0, pid(0), false, now));
    let shown = sim.on(|life, now| life.on_worker_exit(exit(0, pid(0), libc::SIGKILL), now));
    assert_eq!(
        shown,
        [
            "to zygote node_down gw0 error=Some(\"worker gw0 killed by signal 9 (SIGKILL)\")",
            "lost gw0 (killed by signal 9 (SIGKILL)) timed_out=Some(5.0)"
        ]
    );
}

#[test]
fn a_timed_out_worker_that_already_ended_is_not_signalled() {
    let mut sim = Sim::running(1);
    sim.on(|life, now| life.on_worker_exit(exit(0, pid(0), libc::SIGSEGV), now));
    assert!(sim.on(|life, now| life.on_stop_timed_out(0, 5.0, now)).is_empty());
}

#[test]
fn a_silent_worker_dumps_its_stacks_then_is_killed_and_lost_to_its_silence() {
    let mut sim = Sim::running(1);
    let silent = Silent { waited_for: "its hello", secs: 60.0 };
    let shown = sim.on(|life, now| life.on_worker_silent(0, pid(0), silent, now));
    assert_eq!(
        said(&shown),
        ["rpytest: error: worker gw0 (pid 200): it sent nothing for 60s while rpytest waited for its hello; \
          treating it as crashed"]
    );
    assert_eq!(deeds(&shown), ["signal 200 SIGUSR1", "arm KillWorker in 300ms"]);
    assert_eq!(sim.advance(DUMP_WAIT), ["signal tree 200 SIGKILL"]);
    sim.on(|life, now| life.on_worker_exit(exit(0, pid(0), libc::SIGKILL), now));
    let shown = sim.on(|life, now| life.on_worker_disconnected(0, pid(0), false, now));
    assert!(shown[1].starts_with("lost gw0 (it sent nothing for 60s"), "{shown:?}");
}

#[test]
fn the_connect_watchdog_kills_a_forked_worker_that_never_said_hello() {
    let mut sim = Sim::connected();
    assert_eq!(
        sim.collect(WorkerStart::Fork, 1, false),
        ["arm Connect in 30s", "to zygote Fork { worker: 0, count: 1 }"]
    );
    sim.on(|life, now| life.on_worker_forked(0, pid(0), now));
    assert!(sim.advance(CONNECT_LIMIT - Duration::from_millis(1)).is_empty());
    let shown = sim.advance(Duration::from_millis(1));
    assert_eq!(said(&shown), ["rpytest: error: worker gw0 (pid 200) did not connect within 30s; stopping it"]);
    assert_eq!(deeds(&shown), ["signal 200 SIGKILL"]);
}

#[test]
fn the_connect_watchdog_leaves_a_worker_that_said_hello_alone() {
    let mut sim = Sim::running(2);
    assert!(sim.advance(CONNECT_LIMIT * 2).is_empty());
}

#[test]
fn the_connect_watchdog_ends_a_zygote_that_never_forked_and_the_run_with_it() {
    let mut sim = Sim::connected();
    sim.collect(WorkerStart::Fork, 1, false);
    let shown = sim.advance(CONNECT_LIMIT);
    assert!(said(&shown)[0].starts_with("rpytest: error: the zygote (pid 100) did not start worker gw0 within 30s"));
    assert_eq!(deeds(&shown), ["kill zygote 100"]);
    let shown = sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now));
    let how = "killed by rpytest: it did not start worker gw0 in 30s";
    assert_eq!(said(&shown), [format!("rpytest: error: the zygote died during the run ({how})")]);
    assert_eq!(
        deeds(&shown),
        [
            "forget zygote".to_string(),
            format!("zygote lost (the zygote was {how})"),
            format!("lost gw0 (the zygote was {how}) timed_out=None"),
            "arm LostRunLimit in 10s".to_string(),
        ]
    );
}

#[test]
fn a_crash_is_certain_once_both_halves_are_known_or_the_grace_is_over() {
    let mut sim = Sim::running(2);
    assert_eq!(sim.on(|life, now| life.on_worker_disconnected(0, pid(0), false, now)), ["arm SlotGrace in 2s"]);
    let shown = sim.on(|life, now| life.on_worker_exit(exit(0, pid(0), libc::SIGSEGV), now));
    assert_eq!(shown[1], "lost gw0 (killed by signal 11 (SIGSEGV)) timed_out=None");
    sim.on(|life, now| life.on_worker_disconnected(1, pid(1), false, now));
    assert!(sim.advance(Duration::from_secs(1)).is_empty());
    let shown = sim.advance(Duration::from_secs(1));
    assert_eq!(shown[1], "lost gw1 (its connection closed unexpectedly) timed_out=None");
    assert!(sim.advance(Duration::from_secs(10)).is_empty(), "gw0's grace finds nothing left");
}

#[test]
fn a_finished_worker_ends_and_a_restart_asked_meanwhile_starts_then() {
    let mut sim = Sim::running(1);
    let shown = sim.on(|life, now| life.on_worker_output(0, pid(0), None, now));
    assert_eq!(shown, ["to zygote node_down gw0 error=None"]);
    assert!(sim.on(|life, now| life.on_restart_worker(0, now)).is_empty(), "the old process has not ended");
    sim.on(|life, now| life.on_worker_disconnected(0, pid(0), true, now));
    let ended = WorkerExit { worker: 0, pid: pid(0), exit_code: Some(0), signal: None };
    let shown = sim.on(|life, now| life.on_worker_exit(ended, now));
    assert_eq!(shown, ["fault log gw0", "arm Connect in 30s", "to zygote Fork { worker: 0, count: 1 }"]);
}

#[test]
fn a_spawned_worker_starts_once_the_zygote_configured_it() {
    let mut sim = Sim::connected();
    let shown = sim.collect(WorkerStart::Spawn, 1, false);
    // A spawned worker collects the suite first: it gets longer.
    assert_eq!(shown, ["arm Connect in 300s", "to zygote ConfigureNode { worker: 0, count: 1 }"]);
    let shown = sim.on(|life, now| life.on_node_configured(0, "/tmp/node0".into(), now));
    assert_eq!(shown, ["spawn gw0 input=true keep=None"]);
    sim.on(|life, now| life.on_worker_spawned(0, pid(0), now));
    assert!(sim.on(|life, now| life.on_node_configured(0, "/tmp/node0".into(), now)).is_empty(), "once");
}

#[test]
fn shared_fixtures_are_torn_down_in_the_zygote_or_reported_done_without_one() {
    let mut sim = Sim::running(1);
    let shown = sim.on(|life, now| life.on_teardown_shared(Some(3), now));
    assert_eq!(shown, ["to zygote TeardownShared { index: Some(3) }"]);
    sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now));
    assert_eq!(sim.on(|life, now| life.on_teardown_shared(None, now)), ["shared teardown done (0 phases)"]);
}

#[test]
fn the_shard_decision_goes_to_the_zygote_and_its_selection_to_spawned_workers() {
    let mut sim = Sim::connected();
    let ids = vec!["test_a.py::test_a".to_string(), "test_b.py::test_b".to_string()];
    let shown = sim.on(|life, now| life.on_zygote_message(FromPython::ShardRequest { ids }, now));
    // Not sharding: every test is kept (the zygote waits for an answer).
    assert_eq!(shown, [r#"to zygote ShardPlan { keep: [0, 1], line: "" }"#]);
    sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now));
    let mut sim = Sim::new();
    let ids = vec!["test_a.py::test_a".to_string()];
    sim.on(|life, now| life.on_zygote_message(FromPython::ShardRequest { ids }, now));
    assert_eq!(sim.collect(WorkerStart::Spawn, 1, false)[1], "spawn gw0 input=false keep=Some([0])");
}

#[test]
fn what_the_zygote_says_for_others_is_passed_on() {
    let mut sim = Sim::running(1);
    let summary = FromPython::TerminalSummary { text: "plugin".into() };
    assert_eq!(sim.on(|life, now| life.on_zygote_message(summary, now)), [r#"plugin summary "plugin""#]);
    let torn_down = FromPython::SharedTeardownDone { phases: Vec::new() };
    assert_eq!(sim.on(|life, now| life.on_zygote_message(torn_down, now)), ["shared teardown done (0 phases)"]);
    let error = FromPython::InternalError { message: "boom".into() };
    assert_eq!(sim.on(|life, now| life.on_zygote_message(error, now)), ["say: rpytest: zygote: boom"]);
}
