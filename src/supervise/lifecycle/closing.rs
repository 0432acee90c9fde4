//! The end of the run: every test done, pytest ends the session in the
//! zygote (or, without one, the summary follows at once), the closing
//! summary, and the exit code, delivered once the zygote is gone or has
//! had its grace.

use std::time::Instant;

use super::{zygote, Action, Lifecycle, Phase, Summary, Timer, ZYGOTE_EXIT_GRACE};
use crate::exit_code::ExitCode;
use crate::protocol::{ReplayEntry, ToPython};
use crate::report::Stopped;

impl Lifecycle {
    /// Every test is done: pytest ends the session in the zygote with the
    /// run's reports, or, without a zygote, the summary follows at once.
    pub fn on_run_complete(
        &mut self,
        entries: Vec<ReplayEntry>,
        exit: ExitCode,
        stopped: Option<Stopped>,
        notes: Vec<String>,
        _now: Instant,
    ) -> Vec<Action> {
        crate::trace::event(|| "every test finished".into());
        self.completed = true;
        self.closing.notes = notes;
        if !self.zygote.connected {
            self.emit(Action::WriteJunit(entries));
            self.summarize(exit, stopped);
            return self.take();
        }
        self.closing.stopped = stopped;
        if self.junit {
            self.closing.replay = Some(entries.clone());
        }
        self.emit(Action::EndSession(crate::protocol::finish_messages(entries, exit.code())));
        self.enter(Phase::EndingSession);
        self.arm(zygote::SESSION_FINISH_NOTICE, Timer::SessionFinishNotice);
        self.take()
    }

    /// The summary is written; `too_many_warnings`: `--max-warnings` was
    /// exceeded. The run ends once the zygote is gone, or after a grace.
    pub fn on_summarized(&mut self, code: ExitCode, too_many_warnings: bool, _now: Instant) -> Vec<Action> {
        // pytest's MAX_WARNINGS_ERROR: all passed, with too many warnings.
        let code = match too_many_warnings && code == ExitCode::Ok {
            true => ExitCode::MaxWarningsError,
            false => code,
        };
        if self.zygote.pid.is_none() {
            self.finish(code);
        } else {
            self.enter(Phase::AwaitingZygoteExit(code));
            self.arm(ZYGOTE_EXIT_GRACE, Timer::ZygoteExitGrace(code));
        }
        self.take()
    }

    /// The summary, once: the zygote is told to shut down (its session is
    /// over), and the Reporter and History write theirs.
    pub(super) fn summarize(&mut self, code: ExitCode, stopped: Option<Stopped>) {
        if self.zygote.connected {
            self.emit(Action::ToZygote(ToPython::Shutdown));
            self.forget_zygote();
        }
        self.enter(Phase::Summarizing);
        let summary = Summary {
            code,
            stopped,
            notes: std::mem::take(&mut self.closing.notes),
            warnings: std::mem::take(&mut self.closing.warnings),
            session_finished: self.closing.session_finished,
        };
        self.emit(Action::Summarize(summary));
    }

    /// Ends the run with `code`, the first time only.
    pub(super) fn finish(&mut self, code: ExitCode) {
        if self.phase == Phase::Done {
            return;
        }
        crate::trace::event(|| format!("done, exit code {}", code.code()));
        self.phase = Phase::Done;
        self.emit(Action::Finish(code));
    }
}
