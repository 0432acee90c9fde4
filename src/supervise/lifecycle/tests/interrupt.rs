//! Ctrl-C under the fake clock: once, twice, during collection, while
//! pytest ends the session, and a teardown that overruns.

use super::*;

const CTRL_C: &str = "KeyboardInterrupt";

fn interrupt(sim: &mut Sim) -> Vec<String> {
    sim.on(|life, now| life.on_interrupt(CTRL_C, now))
}

#[test]
fn ctrl_c_once_interrupts_the_tests_and_lets_the_run_end_the_normal_way() {
    let mut sim = Sim::running(1);
    let shown = interrupt(&mut sim);
    assert_eq!(said(&shown), ["\nrpytest: interrupted; tearing down (Ctrl-C again to stop at once)"]);
    assert_eq!(deeds(&shown), ["signal 200 SIGINT", "interrupt run", "arm InterruptGrace in 10s"]);
    // The Scheduler completes the run: pytest ends the session as usual.
    assert_eq!(sim.complete(ExitCode::Interrupted), ["end session", "arm SessionFinishNotice in 30s"]);
    sim.on(|life, now| life.on_session_ended(ExitCode::Interrupted, Vec::new(), now));
    sim.on(|life, now| life.on_zygote_exited(Some(2), None, now));
    assert_eq!(sim.on(|life, now| life.on_summarized(ExitCode::Interrupted, false, now)), ["finish Interrupted"]);
    assert!(sim.advance(Duration::from_secs(10)).is_empty(), "the teardown ended in time");
}

#[test]
fn ctrl_c_once_and_a_teardown_past_its_grace_stops_everything() {
    let mut sim = Sim::running(1);
    interrupt(&mut sim);
    assert!(sim.advance(Duration::from_secs(9)).is_empty());
    let shown = sim.advance(Duration::from_secs(1));
    assert_eq!(said(&shown), ["rpytest: teardown after Ctrl-C did not end within 10s; stopping everything"]);
    assert_eq!(
        deeds(&shown),
        [
            "kill zygote 100",
            "signal tree 200 SIGKILL",
            "forget zygote",
            "summarize Interrupted stopped=Some(\"KeyboardInterrupt\") session_finished=false"
        ]
    );
}

#[test]
fn ctrl_c_twice_stops_everything_at_once() {
    let mut sim = Sim::running(1);
    interrupt(&mut sim);
    let shown = interrupt(&mut sim);
    assert_eq!(
        shown,
        [
            "kill zygote 100",
            "signal tree 200 SIGKILL",
            "forget zygote",
            "summarize Interrupted stopped=Some(\"KeyboardInterrupt\") session_finished=false"
        ]
    );
    // The zygote's death that follows is the interrupt's, not a loss.
    sim.on(|life, now| life.on_summarized(ExitCode::Interrupted, false, now));
    assert_eq!(sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now)), ["finish Interrupted"]);
}

#[test]
fn sigterm_twice_names_sigterm_in_the_summary() {
    let mut sim = Sim::running(1);
    sim.on(|life, now| life.on_interrupt("SIGTERM", now));
    let shown = sim.on(|life, now| life.on_interrupt("SIGTERM", now));
    assert!(shown.last().unwrap().contains("stopped=Some(\"SIGTERM\")"), "{shown:?}");
}

#[test]
fn ctrl_c_during_collection_lets_pytest_report_it() {
    let mut sim = Sim::connected();
    assert_eq!(interrupt(&mut sim), ["signal 100 SIGINT", "arm CollectionInterruptGrace in 2s"]);
    assert_eq!(sim.life.phase(), Phase::AwaitingZygoteExit(ExitCode::Interrupted));
    assert_eq!(sim.on(|life, now| life.on_zygote_exited(Some(2), None, now)), ["finish Interrupted"]);
    assert!(sim.advance(Duration::from_secs(2)).is_empty(), "finished once");
}

#[test]
fn ctrl_c_during_collection_and_a_zygote_that_does_not_exit_is_killed() {
    let mut sim = Sim::connected();
    interrupt(&mut sim);
    assert_eq!(sim.advance(Duration::from_secs(2)), ["kill zygote 100", "finish Interrupted"]);
    assert!(sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now)).is_empty());
}

#[test]
fn ctrl_c_without_a_zygote_process_ends_the_run() {
    let mut sim = Sim::connected();
    sim.on(|life, now| life.on_zygote_exited(Some(1), None, now));
    let mut sim2 = Sim::connected();
    sim2.life.zygote.pid = None;
    assert_eq!(interrupt(&mut sim2), ["finish Interrupted"]);
    assert!(interrupt(&mut sim).is_empty(), "the run already ended");
}

#[test]
fn ctrl_c_while_pytest_ends_the_session_leaves_the_workers_be() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    let shown = interrupt(&mut sim);
    assert_eq!(deeds(&shown), ["arm InterruptGrace in 10s"]);
}
