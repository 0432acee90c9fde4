//! The zygote under the fake clock: its death in each phase, a stopped
//! zygote, and a session end that overruns.

use super::*;
use crate::supervise::lifecycle::zygote_exit::EXIT_NO_PYTEST;

fn died(sim: &mut Sim, code: Option<i32>, signal: Option<i32>) -> Vec<String> {
    sim.on(|life, now| life.on_zygote_exited(code, signal, now))
}

#[test]
fn dead_before_hello_it_is_not_an_interpreter_that_runs_pytest() {
    let mut sim = Sim::new();
    let shown = died(&mut sim, Some(1), None);
    assert!(said(&shown)[0].starts_with("rpytest: error: "), "{shown:?}");
    assert_eq!(deeds(&shown), ["finish UsageError"]);
    let mut sim = Sim::new();
    let shown = died(&mut sim, Some(EXIT_NO_PYTEST), None);
    assert!(said(&shown)[0].contains("pytest"), "{shown:?}");
    assert_eq!(deeds(&shown), ["finish UsageError"]);
}

#[test]
fn dead_while_collecting_the_run_ends_with_its_code() {
    let mut sim = Sim::connected();
    let shown = died(&mut sim, Some(7), None);
    assert_eq!(
        said(&shown),
        ["rpytest: error: the Python zygote (/usr/bin/python3) exited with code 7 before collecting"]
    );
    assert_eq!(deeds(&shown), ["finish Other(7)"]);
    assert!(sim.advance(COLLECT_NOTICE).is_empty(), "nothing waits any more");
}

#[test]
fn dead_while_workers_run_every_test_ends_and_so_does_the_run() {
    let mut sim = Sim::running(1);
    let shown = died(&mut sim, None, Some(libc::SIGKILL));
    let cause = "the zygote was killed by signal 9 (SIGKILL)";
    assert_eq!(said(&shown), ["rpytest: error: the zygote died during the run (killed by signal 9 (SIGKILL))"]);
    assert_eq!(
        deeds(&shown),
        [
            "forget zygote".to_string(),
            "signal tree 200 SIGKILL".to_string(),
            format!("zygote lost ({cause})"),
            format!("lost gw0 ({cause}) timed_out=None"),
            "arm LostRunLimit in 10s".to_string(),
        ]
    );
    // The Scheduler ends every test: the summary follows, and the run ends.
    let shown = sim.complete(ExitCode::InternalError);
    assert_eq!(shown, ["write junit", "summarize InternalError stopped=None session_finished=false"]);
    assert_eq!(sim.on(|life, now| life.on_summarized(ExitCode::InternalError, false, now)), ["finish InternalError"]);
    assert!(sim.advance(Duration::from_secs(10)).is_empty(), "the outcomes came in time");
}

#[test]
fn dead_while_workers_run_and_the_outcomes_never_come_the_run_ends_anyway() {
    let mut sim = Sim::running(1);
    died(&mut sim, None, Some(libc::SIGKILL));
    let shown = sim.advance(Duration::from_secs(10));
    assert_eq!(said(&shown), ["rpytest: error: the run's last outcomes did not come after the zygote died"]);
    let banner = "the zygote was killed by signal 9 (SIGKILL)";
    assert_eq!(deeds(&shown), [format!("summarize InternalError stopped=Some({banner:?}) session_finished=false")]);
}

#[test]
fn killed_while_ending_the_session_the_junit_file_is_written_here_and_the_cause_named() {
    let mut sim = Sim::connected();
    sim.collect(WorkerStart::Fork, 0, true);
    sim.complete(ExitCode::Ok);
    let shown = died(&mut sim, None, Some(libc::SIGKILL));
    let how = "killed by signal 9 (SIGKILL)";
    assert_eq!(said(&shown), [format!("rpytest: error: the zygote was {how} while pytest was ending the session")]);
    assert_eq!(
        deeds(&shown),
        [
            "forget zygote".to_string(),
            "write junit".to_string(),
            format!("summarize InternalError stopped=Some(\"the zygote was {how}\") session_finished=false"),
        ]
    );
}

#[test]
fn exited_while_ending_the_session_its_own_code_is_the_runs() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    let shown = died(&mut sim, Some(7), None);
    assert_eq!(said(&shown), ["rpytest: the zygote exited with code 7 while pytest was ending the session"]);
    assert_eq!(deeds(&shown), ["forget zygote", "summarize Other(7) stopped=None session_finished=true"]);
}

#[test]
fn exited_after_the_summary_the_run_ends_at_once_or_after_a_grace() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    sim.on(|life, now| life.on_session_ended(ExitCode::Ok, Vec::new(), now));
    // A second Ctrl-C stopped the session's end: the zygote is still there.
    sim.on(|life, now| life.on_interrupt("KeyboardInterrupt", now));
    sim.on(|life, now| life.on_interrupt("KeyboardInterrupt", now));
    let shown = sim.on(|life, now| life.on_summarized(ExitCode::Interrupted, false, now));
    assert_eq!(shown, ["arm ZygoteExitGrace in 2s"]);
    assert_eq!(sim.life.phase(), Phase::AwaitingZygoteExit(ExitCode::Interrupted));
    assert_eq!(died(&mut sim, None, Some(libc::SIGKILL)), ["finish Interrupted"]);
    assert!(sim.advance(Duration::from_secs(2)).is_empty(), "finished once");
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    sim.on(|life, now| life.on_interrupt("KeyboardInterrupt", now));
    sim.on(|life, now| life.on_interrupt("KeyboardInterrupt", now));
    sim.on(|life, now| life.on_summarized(ExitCode::Interrupted, false, now));
    assert_eq!(sim.advance(Duration::from_secs(2)), ["finish Interrupted"]);
}

#[test]
fn exited_after_the_run_ended_nothing_happens() {
    let mut sim = Sim::new();
    sim.on(|life, now| life.on_zygote_spawned(Err("no".into()), now));
    assert!(died(&mut sim, Some(0), None).is_empty());
}

#[test]
fn a_stopped_zygote_is_killed_after_the_limit_and_its_death_named_so() {
    let mut sim = Sim::running(1);
    let watch = |sim: &mut Sim, stopped: bool| sim.on(|life, now| life.on_zygote_watch(|_| stopped, now));
    assert!(watch(&mut sim, true).is_empty());
    sim.advance(STOPPED_LIMIT / 2);
    assert!(watch(&mut sim, false).is_empty(), "it resumed: the count starts again");
    assert!(watch(&mut sim, true).is_empty());
    sim.advance(STOPPED_LIMIT - Duration::from_millis(1));
    assert!(watch(&mut sim, true).is_empty());
    sim.advance(Duration::from_millis(1));
    let shown = watch(&mut sim, true);
    assert_eq!(said(&shown), ["rpytest: error: the zygote (pid 100) is stopped and answers nothing; stopping it"]);
    assert_eq!(deeds(&shown), ["kill zygote 100"]);
    assert!(watch(&mut sim, true).is_empty(), "stopped once");
    let shown = died(&mut sim, None, Some(libc::SIGKILL));
    assert!(said(&shown)[0].ends_with("(killed by rpytest after it stayed stopped (SIGSTOP) for 10s)"), "{shown:?}");
}

#[test]
fn a_session_end_that_overruns_is_announced_then_bounded() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    let shown = sim.advance(Duration::from_secs(30));
    assert!(said(&shown)[0].starts_with("rpytest: still waiting for pytest to end the session in the zygote (pid 100)"));
    let shown = sim.on(|life, now| life.on_session_ended(ExitCode::Ok, Vec::new(), now));
    assert_eq!(shown, ["arm ZygoteExitAfterSession in 10s"]);
    assert!(sim.advance(Duration::from_secs(9)).is_empty());
    let shown = sim.advance(Duration::from_secs(1));
    assert!(said(&shown)[0].starts_with("rpytest: warning: pytest ended the session (exit status 0) but the zygote"));
    assert_eq!(deeds(&shown), ["kill zygote 100"]);
    // Killed after pytest ended the session: its status stands, junit too.
    let shown = died(&mut sim, None, Some(libc::SIGKILL));
    assert_eq!(shown, ["forget zygote", "summarize Ok stopped=None session_finished=true"]);
}

#[test]
fn a_session_that_ends_in_time_is_not_remarked_on() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    sim.on(|life, now| life.on_session_ended(ExitCode::Ok, Vec::new(), now));
    died(&mut sim, Some(0), None);
    sim.on(|life, now| life.on_summarized(ExitCode::Ok, false, now));
    assert!(sim.advance(Duration::from_secs(60)).is_empty());
}

#[test]
fn a_broken_connection_stops_the_zygote() {
    let mut sim = Sim::running(1);
    let shown = sim.on(|life, now| life.on_zygote_broken("bad frame".into(), now));
    assert_eq!(said(&shown), ["rpytest: error: bad message from the zygote (bad frame); stopping it"]);
    assert_eq!(deeds(&shown), ["kill zygote 100"]);
}

#[test]
fn a_warm_zygote_is_adopted_and_its_own_exit_status_asked_of_the_daemon() {
    let mut sim = Sim::with(Settings { warm: Some(ZYGOTE), ..settings() });
    let shown = sim.on(Lifecycle::on_start);
    assert_eq!(shown, ["watch warm zygote 100", "every 250ms ZygoteWatch", "arm StillCollecting in 60s"]);
    let (link, _) = tokio::sync::mpsc::unbounded_channel();
    sim.on(|life, now| life.on_zygote_connected(link, now));
    sim.collect(WorkerStart::Fork, 0, false);
    sim.complete(ExitCode::Ok);
    // Ended without reporting the session's status: only the daemon knows.
    assert_eq!(sim.on(|life, now| life.on_warm_zygote_ended(now)), ["ask the daemon"]);
    let shown = died(&mut sim, Some(3), None);
    assert_eq!(deeds(&shown), ["forget zygote", "summarize InternalError stopped=None session_finished=true"]);
}

#[test]
fn a_warm_zygote_that_reported_the_sessions_status_needs_no_daemon() {
    let mut sim = Sim::with(Settings { warm: Some(ZYGOTE), ..settings() });
    sim.on(Lifecycle::on_start);
    let (link, _) = tokio::sync::mpsc::unbounded_channel();
    sim.on(|life, now| life.on_zygote_connected(link, now));
    sim.collect(WorkerStart::Fork, 0, false);
    sim.complete(ExitCode::Ok);
    sim.on(|life, now| life.on_session_ended(ExitCode::TestsFailed, Vec::new(), now));
    let shown = sim.on(|life, now| life.on_warm_zygote_ended(now));
    assert_eq!(shown, ["forget zygote", "summarize TestsFailed stopped=None session_finished=true"]);
}

#[test]
fn a_warm_zygote_dead_before_collecting_had_said_hello_at_the_daemon() {
    let mut sim = Sim::with(Settings { warm: Some(ZYGOTE), ..settings() });
    sim.on(Lifecycle::on_start);
    let shown = died(&mut sim, Some(1), None);
    assert!(said(&shown)[0].ends_with("exited with code 1 before collecting"), "{shown:?}");
}
