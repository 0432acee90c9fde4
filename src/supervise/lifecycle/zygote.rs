//! The lifecycle's zygote: started or adopted, connected, stopped
//! (SIGSTOP, so that it answers nothing: ended after a limit), and ended.
//! Its process ending means what `zygote_exit` says for where the run
//! stands. Lost while workers run (killed by a test or the OOM killer),
//! the run cannot go on, yet every collected test gets one outcome: the
//! workers are stopped, their tests in flight fail as lost with it, the
//! others are reported as not run, and the exit code is pytest's
//! INTERNAL_ERROR (`RunState::on_zygote_lost` says why). At the end,
//! pytest ends the session there: each wait is announced or bounded.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::zygote_exit::{self, ZygoteExitFacts, ZygoteExitVerdict};
use super::{Action, Lifecycle, Phase, Tick, Timer};
use crate::exit_code::ExitCode;
use crate::protocol::{FromPython, ToPython, WarningRecord};
use crate::report::Stopped;
use crate::run::crash::describe_exit;
use crate::supervise::run_start::shard_plan;

/// When to say that the end of the session is still running.
pub(super) const SESSION_FINISH_NOTICE: Duration = Duration::from_secs(30);
/// How long the zygote may take to exit once pytest has ended its session.
pub(super) const ZYGOTE_EXIT_AFTER_SESSION: Duration = Duration::from_secs(10);
/// How long a run that lost its zygote waits for its last tests' outcomes.
pub(super) const LOST_RUN_LIMIT: Duration = Duration::from_secs(10);
/// How long the zygote may stay stopped before the run ends it.
/// `RPYTEST_ZYGOTE_STOPPED_TIMEOUT` (seconds) sets it.
const STOPPED_LIMIT: Duration = Duration::from_secs(10);

pub(super) fn stopped_limit() -> Duration {
    let from_env = std::env::var("RPYTEST_ZYGOTE_STOPPED_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok());
    from_env.filter(|secs| *secs > 0.0 && secs.is_finite()).map_or(STOPPED_LIMIT, Duration::from_secs_f64)
}

impl Lifecycle {
    /// The run begins: the zygote starts, or the warm one the daemon
    /// handed over is adopted (its exit is watched through a pidfd).
    pub fn on_start(&mut self, _now: Instant) -> Vec<Action> {
        match self.settings.warm {
            Some(pid) => {
                crate::trace::event(|| format!("adopting warm zygote {pid}"));
                self.zygote.pid = Some(pid);
                self.emit(Action::WatchWarmZygote { pid });
            }
            None => {
                crate::trace::event(|| "starting the zygote".into());
                self.emit(Action::StartZygote);
            }
        }
        self.emit(Action::Repeat { every: super::ZYGOTE_WATCH_EVERY, tick: Tick::ZygoteWatch });
        // Collection may take as long as it takes, but not in silence.
        if !self.settings.interactive {
            self.arm(self.settings.collect_notice, Timer::StillCollecting);
        }
        self.take()
    }

    /// The zygote's process started as this pid, or could not start.
    pub fn on_zygote_spawned(&mut self, spawned: Result<u32, String>, _now: Instant) -> Vec<Action> {
        match spawned {
            Ok(pid) => self.zygote.pid = Some(pid),
            Err(error) => {
                self.say(format!("rpytest: error: cannot start {}: {error}", self.settings.python.display()));
                self.finish(ExitCode::InternalError);
            }
        }
        self.take()
    }

    /// The warm zygote ended. pytest reported the session's exit status,
    /// or the process ended without one (`os._exit` in
    /// `pytest_sessionfinish`): then its own exit code is the run's, and
    /// only the daemon, its parent, has it.
    pub fn on_warm_zygote_ended(&mut self, now: Instant) -> Vec<Action> {
        if self.session_ended.is_some() {
            return self.on_zygote_exited(None, None, now);
        }
        self.emit(Action::AskDaemonExitStatus);
        self.take()
    }

    /// The zygote said hello: messages go to it through `link`.
    pub fn on_zygote_connected(&mut self, link: UnboundedSender<ToPython>, _now: Instant) -> Vec<Action> {
        crate::trace::event(|| "zygote said hello".into());
        self.zygote.connected = true;
        self.emit(Action::ZygoteLink(link));
        self.take()
    }

    /// A message from the zygote.
    pub fn on_zygote_message(&mut self, message: FromPython, now: Instant) -> Vec<Action> {
        match message {
            FromPython::ShardRequest { ids } => self.shard_request(&ids),
            FromPython::Collected(inventory) if self.phase == Phase::Collecting => {
                crate::trace::event(|| format!("collected {} tests", inventory.items.len()));
                self.emit(Action::PlanRun(inventory));
            }
            // Interrupted during collection: pytest reports it.
            FromPython::Collected(_) => {}
            FromPython::WorkerForked { worker, pid } => return self.on_worker_forked(worker, pid, now),
            FromPython::NodeConfigured { worker, path } => return self.on_node_configured(worker, path.into(), now),
            FromPython::WorkerExited(exit) => return self.on_worker_exit(exit, now),
            FromPython::SessionEnded { exit_code, warnings } => {
                return self.on_session_ended(ExitCode::from_code(exit_code), warnings, now)
            }
            FromPython::TerminalSummary { text } => self.emit(Action::PluginSummary(text)),
            FromPython::SharedTeardownDone { phases } => {
                crate::trace::event(|| "shared session fixtures torn down".into());
                self.emit(Action::TornDown(phases));
            }
            FromPython::InternalError { message } => self.say(format!("rpytest: zygote: {message}")),
            other => self.say(format!("rpytest: the zygote sent an unexpected {other:?}; ignored")),
        }
        self.take()
    }

    /// The zygote collected with sharding on: it keeps this shard's tests.
    fn shard_request(&mut self, ids: &[String]) {
        let (keep, line) = shard_plan(self.settings.shard.as_ref(), ids);
        self.shard_keep = Some(keep.clone());
        self.tell_zygote(ToPython::ShardPlan { keep, line });
    }

    /// Its connection failed (a malformed frame, an I/O error): without it
    /// the run cannot go on, so it is stopped, and its exit ends the run.
    pub fn on_zygote_broken(&mut self, error: String, _now: Instant) -> Vec<Action> {
        self.say(format!("rpytest: error: bad message from the zygote ({error}); stopping it"));
        self.kill_zygote();
        self.take()
    }

    /// The zygote's state, looked at now and then: `is_stopped` tells
    /// whether a process is stopped. One stopped past the limit is killed;
    /// its exit then ends the run as a death would, named for what happened.
    pub fn on_zygote_watch(&mut self, is_stopped: impl FnOnce(u32) -> bool, now: Instant) -> Vec<Action> {
        let Some(pid) = self.zygote.pid.filter(|_| self.zygote.ended_by_us.is_none()) else { return self.take() };
        if !is_stopped(pid) {
            self.zygote.stopped_since = None;
            return self.take();
        }
        let limit = self.settings.stopped_limit;
        if now.duration_since(*self.zygote.stopped_since.get_or_insert(now)) < limit {
            return self.take();
        }
        let how = format!("killed by rpytest after it stayed stopped (SIGSTOP) for {}s", limit.as_secs_f64());
        self.say(format!("rpytest: error: the zygote (pid {pid}) is stopped and answers nothing; stopping it"));
        self.zygote.ended_by_us = Some(how);
        self.kill_zygote();
        self.take()
    }

    /// pytest returned from the session the zygote finished; the process
    /// exits next (its exit handlers run), within a time limit.
    pub fn on_session_ended(&mut self, code: ExitCode, warnings: Vec<WarningRecord>, _now: Instant) -> Vec<Action> {
        self.closing.warnings = warnings;
        self.session_ended = Some(code);
        if self.phase == Phase::EndingSession {
            crate::trace::event(|| format!("pytest ended the session, exit status {}", code.code()));
            self.arm(ZYGOTE_EXIT_AFTER_SESSION, Timer::ZygoteExitAfterSession(code));
        }
        self.take()
    }

    /// The zygote's process ended (`code` or `signal`): what that means
    /// depends on where the run stood.
    pub fn on_zygote_exited(&mut self, code: Option<i32>, signal: Option<i32>, now: Instant) -> Vec<Action> {
        self.zygote.pid = None;
        let facts = ZygoteExitFacts {
            exit_after_zygote: match self.phase {
                Phase::AwaitingZygoteExit(code) => Some(code),
                _ => None,
            },
            finishing: self.phase == Phase::EndingSession,
            run_over: self.phase == Phase::Done || (self.completed && !self.zygote.connected),
            collected: self.collected,
            said_hello: self.zygote.connected || self.settings.warm.is_some(),
            session_ended: self.session_ended,
        };
        match zygote_exit::verdict(&facts, code, signal, &self.settings.python) {
            ZygoteExitVerdict::Finish(code) => self.finish(code),
            ZygoteExitVerdict::Ignore => {}
            ZygoteExitVerdict::SessionFinished { code: exit, note } => self.session_finished(exit, note, code, signal),
            ZygoteExitVerdict::Failed { message, code } => {
                self.say(message);
                self.finish(code);
            }
            ZygoteExitVerdict::DiedDuringRun => {
                let how = self.zygote_end(code, signal);
                self.zygote_lost(how, now);
            }
        }
        self.take()
    }

    /// The zygote is gone after ending the session, or while it did
    /// (killed: pytest never wrote the junit file, so it is written here).
    fn session_finished(&mut self, exit: ExitCode, note: Option<String>, code: Option<i32>, signal: Option<i32>) {
        let killed = self.session_ended.is_none() && signal.is_some();
        let how = self.zygote_end(code, signal);
        let note = match killed {
            true => Some(format!("rpytest: error: the zygote was {how} while pytest was ending the session")),
            false => note,
        };
        note.into_iter().for_each(|line| self.say(line));
        self.forget_zygote();
        self.closing.session_finished = !killed;
        if let Some(entries) = self.closing.replay.take().filter(|_| killed) {
            self.emit(Action::WriteJunit(entries));
        }
        let lost = killed.then(|| Stopped::plain(format!("the zygote was {how}")));
        let stopped = self.closing.stopped.take().or(lost);
        self.summarize(exit, stopped);
    }

    /// How the zygote ended: as rpytest ended it, else as its exit says.
    fn zygote_end(&mut self, code: Option<i32>, signal: Option<i32>) -> String {
        self.zygote.ended_by_us.take().unwrap_or_else(|| describe_exit(code, signal))
    }

    /// The zygote died while workers ran (`how` it ended): stop the
    /// workers, end every test, and summarize once the Scheduler has.
    fn zygote_lost(&mut self, how: String, now: Instant) {
        self.say(format!("rpytest: error: the zygote died during the run ({how})"));
        let cause = match how.starts_with("killed") {
            true => format!("the zygote was {how}"),
            false => format!("the zygote {how}"),
        };
        self.forget_zygote();
        self.kill_everything();
        self.emit(Action::ZygoteLost { cause: cause.clone() });
        for verdict in self.slots.abandon_all(&cause) {
            self.on_verdict(verdict, now);
        }
        self.arm(LOST_RUN_LIMIT, Timer::LostRunLimit { cause });
    }

    pub(super) fn lost_run_limit(&mut self, cause: String) {
        if !self.completed && self.phase != Phase::Done {
            self.say("rpytest: error: the run's last outcomes did not come after the zygote died");
            self.summarize(ExitCode::InternalError, Some(Stopped::plain(cause)));
        }
    }

    /// Said once when the zygote has not reported its collection within
    /// the silence limit: pytest may legitimately collect for minutes, so
    /// the run goes on, but the user learns where it stands (a conftest or
    /// test module hanging at import is the usual cause).
    pub(super) fn still_collecting(&mut self) {
        let Some(pid) = self.zygote.pid.filter(|_| self.phase == Phase::Collecting) else { return };
        let secs = self.settings.collect_notice.as_secs_f64();
        self.say(format!(
            "rpytest: still waiting for the zygote (pid {pid}) to report its collection after {secs}s: \
             pytest is collecting, or a conftest or test module hangs at import"
        ));
    }

    pub(super) fn session_finish_notice(&mut self) {
        if self.phase == Phase::EndingSession && self.session_ended.is_none() {
            self.say(format!(
                "rpytest: still waiting for pytest to end the session in the zygote (pid {}) \
                 after {}s: a pytest_sessionfinish or pytest_unconfigure hook is running",
                self.zygote.pid.unwrap_or(0),
                SESSION_FINISH_NOTICE.as_secs()
            ));
        }
    }

    /// pytest ended the session, but the zygote has not exited in time (a
    /// non-daemon thread): it is stopped, and its exit ends the run.
    pub(super) fn session_end_overrun(&mut self, code: ExitCode) {
        let Some(pid) = self.zygote.pid.filter(|_| self.phase == Phase::EndingSession) else { return };
        self.say(format!(
            "rpytest: warning: pytest ended the session (exit status {}) but the zygote \
             (pid {pid}) has not exited after {}s (a non-daemon thread still running?); stopping it",
            code.code(),
            ZYGOTE_EXIT_AFTER_SESSION.as_secs()
        ));
        self.kill_zygote();
    }
}
