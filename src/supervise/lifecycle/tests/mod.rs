//! The lifecycle driven by a fake clock: `Sim` hands it events at a time
//! it controls, keeps the timers it arms, and fires them as the clock is
//! moved on, in the order they fall due. Actions are shown as short lines
//! so that each path reads as what the actor would do.

mod interrupt;
mod workers;
mod zygote;

use std::time::{Duration, Instant};

use super::*;
use crate::run::crash::signal_name;

pub(super) const ZYGOTE: u32 = 100;
pub(super) const COLLECT_NOTICE: Duration = Duration::from_secs(60);
pub(super) const STOPPED_LIMIT: Duration = Duration::from_secs(10);

/// The pid of worker `worker`'s first process.
pub(super) fn pid(worker: usize) -> u32 {
    200 + worker as u32
}

pub(super) fn settings() -> Settings {
    Settings {
        python: "/usr/bin/python3".into(),
        interactive: false,
        warm: None,
        collect_notice: COLLECT_NOTICE,
        stopped_limit: STOPPED_LIMIT,
        shard: None,
        max_memory: None,
    }
}

pub(super) struct Sim {
    pub life: Lifecycle,
    pub now: Instant,
    timers: Vec<(Instant, Timer)>,
}

impl Sim {
    /// The zygote is started, and has not said hello.
    pub fn new() -> Sim {
        let mut sim = Sim::with(settings());
        assert_eq!(
            sim.on(Lifecycle::on_start),
            ["start zygote", "every 250ms ZygoteWatch", "arm StillCollecting in 60s"]
        );
        sim.on(|life, now| life.on_zygote_spawned(Ok(ZYGOTE), now));
        sim
    }

    pub fn with(settings: Settings) -> Sim {
        Sim { life: Lifecycle::new(settings), now: Instant::now(), timers: Vec::new() }
    }

    /// The zygote said hello and collects.
    pub fn connected() -> Sim {
        let mut sim = Sim::new();
        let (link, _) = tokio::sync::mpsc::unbounded_channel();
        assert_eq!(sim.on(|life, now| life.on_zygote_connected(link, now)), ["zygote link"]);
        sim
    }

    /// Collected; `workers` forked workers said hello.
    pub fn running(workers: usize) -> Sim {
        let mut sim = Sim::connected();
        sim.collect(WorkerStart::Fork, workers, false);
        for worker in 0..workers {
            sim.on(|life, now| life.on_worker_forked(worker, pid(worker), now));
            sim.on(|life, now| life.on_worker_connected(worker, pid(worker), now));
        }
        sim
    }

    pub fn collect(&mut self, start: WorkerStart, workers: usize, junit: bool) -> Vec<String> {
        self.on(|life, _| life.on_collected(start, workers, workers, junit))
    }

    /// Every test done, the zygote connected: pytest ends the session.
    pub fn complete(&mut self, exit: ExitCode) -> Vec<String> {
        self.on(|life, now| life.on_run_complete(Vec::new(), exit, None, Vec::new(), now))
    }

    /// An event at the current time; the timers it arms are kept.
    pub fn on(&mut self, event: impl FnOnce(&mut Lifecycle, Instant) -> Vec<Action>) -> Vec<String> {
        let actions = event(&mut self.life, self.now);
        self.record(actions)
    }

    /// Moves the clock on by `by`, firing each timer due by then.
    pub fn advance(&mut self, by: Duration) -> Vec<String> {
        let until = self.now + by;
        let mut shown = Vec::new();
        while let Some(next) =
            (0..self.timers.len()).filter(|&i| self.timers[i].0 <= until).min_by_key(|&i| self.timers[i].0)
        {
            let (at, timer) = self.timers.remove(next);
            self.now = at;
            let actions = self.life.on_timer(timer, at);
            shown.extend(self.record(actions));
        }
        self.now = until;
        shown
    }

    fn record(&mut self, actions: Vec<Action>) -> Vec<String> {
        for action in &actions {
            if let Action::Arm { after, timer } = action {
                self.timers.push((self.now + *after, timer.clone()));
            }
        }
        actions.iter().map(show).collect()
    }
}

/// An action as a short line.
pub(super) fn show(action: &Action) -> String {
    match action {
        Action::Say(line) => format!("say: {line}"),
        Action::Signal { pid, signal } => format!("signal {pid} {}", signal_name(*signal)),
        Action::SignalTree { pid, signal } => format!("signal tree {pid} {}", signal_name(*signal)),
        Action::KillDescendants { pid } => format!("kill under {pid}"),
        Action::KillZygote { pid } => format!("kill zygote {pid}"),
        Action::Arm { after, timer } => format!("arm {} in {after:?}", timer_name(timer)),
        Action::Repeat { every, tick } => format!("every {every:?} {tick:?}"),
        Action::StartZygote => "start zygote".into(),
        Action::WatchWarmZygote { pid } => format!("watch warm zygote {pid}"),
        Action::AskDaemonExitStatus => "ask the daemon".into(),
        Action::ToZygote(message) => format!("to zygote {}", zygote_message(message)),
        Action::ZygoteLink(_) => "zygote link".into(),
        Action::ForgetZygote => "forget zygote".into(),
        Action::EndSession(_) => "end session".into(),
        Action::PlanRun(_) => "plan run".into(),
        Action::SpawnWorker(spawn) => {
            format!("spawn gw{} input={} keep={:?}", spawn.worker, spawn.input.is_some(), spawn.shard_keep)
        }
        Action::RetireWorker { worker } => format!("retire gw{worker}"),
        Action::WorkerLost { worker, cause, timed_out, .. } => {
            format!("lost gw{worker} ({cause}) timed_out={timed_out:?}")
        }
        Action::FaultLog { worker, .. } => format!("fault log gw{worker}"),
        Action::ZygoteLost { cause } => format!("zygote lost ({cause})"),
        Action::InterruptRun => "interrupt run".into(),
        Action::TornDown(phases) => format!("shared teardown done ({} phases)", phases.len()),
        Action::PluginSummary(text) => format!("plugin summary {text:?}"),
        Action::WriteJunit(_) => "write junit".into(),
        Action::Summarize(summary) => format!(
            "summarize {:?} stopped={:?} session_finished={}",
            summary.code,
            summary.stopped.as_ref().map(|stopped| stopped.banner.as_str()),
            summary.session_finished
        ),
        Action::Finish(code) => format!("finish {code:?}"),
    }
}

fn timer_name(timer: &Timer) -> String {
    let debug = format!("{timer:?}");
    debug.split([' ', '(']).next().unwrap_or_default().to_string()
}

fn zygote_message(message: &ToPython) -> String {
    match message {
        ToPython::NodeDown { worker, error, .. } => format!("node_down gw{worker} error={error:?}"),
        other => format!("{other:?}"),
    }
}

/// The lines that are not said on stderr.
pub(super) fn deeds(shown: &[String]) -> Vec<&str> {
    shown.iter().map(String::as_str).filter(|line| !line.starts_with("say: ")).collect()
}

/// The lines said on stderr.
pub(super) fn said(shown: &[String]) -> Vec<&str> {
    shown.iter().filter_map(|line| line.strip_prefix("say: ")).collect()
}

#[test]
fn a_long_collection_is_remarked_on_and_a_collected_run_is_not() {
    let mut sim = Sim::connected();
    let shown = sim.advance(COLLECT_NOTICE);
    assert!(said(&shown)[0].starts_with("rpytest: still waiting for the zygote (pid 100) to report its collection"));
    let mut sim = Sim::running(1);
    assert!(said(&sim.advance(COLLECT_NOTICE)).is_empty());
}

#[test]
fn a_zygote_that_cannot_start_ends_the_run() {
    let mut sim = Sim::new();
    let shown = sim.on(|life, now| life.on_zygote_spawned(Err("No such file or directory".into()), now));
    assert_eq!(said(&shown), ["rpytest: error: cannot start /usr/bin/python3: No such file or directory"]);
    assert_eq!(deeds(&shown), ["finish InternalError"]);
    assert_eq!(sim.life.phase(), Phase::Done);
}

#[test]
fn a_completed_run_ends_the_session_in_the_zygote_and_exits_with_its_status() {
    let mut sim = Sim::running(1);
    assert_eq!(sim.complete(ExitCode::TestsFailed), ["end session", "arm SessionFinishNotice in 30s"]);
    assert_eq!(sim.life.phase(), Phase::EndingSession);
    sim.on(|life, now| life.on_session_ended(ExitCode::TestsFailed, Vec::new(), now));
    let shown = sim.on(|life, now| life.on_zygote_exited(Some(1), None, now));
    assert_eq!(shown, ["forget zygote", "summarize TestsFailed stopped=None session_finished=true"]);
    let shown = sim.on(|life, now| life.on_summarized(ExitCode::TestsFailed, false, now));
    assert_eq!(shown, ["finish TestsFailed"]);
}

#[test]
fn too_many_warnings_turn_a_pass_into_max_warnings_error_once_the_zygote_is_gone() {
    let mut sim = Sim::running(1);
    sim.complete(ExitCode::Ok);
    sim.on(|life, now| life.on_session_ended(ExitCode::Ok, Vec::new(), now));
    sim.on(|life, now| life.on_zygote_exited(Some(0), None, now));
    assert_eq!(sim.on(|life, now| life.on_summarized(ExitCode::Ok, true, now)), ["finish MaxWarningsError"]);
}

#[test]
fn without_a_zygote_the_summary_follows_the_run_and_the_junit_file_is_written_here() {
    let mut sim = Sim::running(1);
    sim.on(|life, now| life.on_zygote_exited(None, Some(libc::SIGKILL), now));
    let shown = sim.complete(ExitCode::InternalError);
    assert_eq!(shown, ["write junit", "summarize InternalError stopped=None session_finished=false"]);
}
