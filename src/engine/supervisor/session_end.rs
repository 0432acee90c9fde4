//! The Supervisor hands the end of the run to pytest: the zygote gets the
//! run's reports (`finish`) once stdout holds every progress line, ends the
//! session as pytest does, and says `session_ended`; each wait is announced
//! or bounded, and so is the wait for the zygote's collection.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use super::Supervisor;
use crate::engine::messages::Drain;
use crate::protocol::ToPython;

/// When to say that the end of the session is still running.
const SESSION_FINISH_NOTICE: Duration = Duration::from_secs(30);
/// How long the zygote may take to exit once pytest has ended its session.
const ZYGOTE_EXIT_AFTER_SESSION: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Sends the zygote `messages` (the run's reports, then `finish`) after
    /// the Reporter's `Drain`: the progress it buffers for a pipe reaches
    /// stdout before anything the session's end prints there.
    pub(super) fn end_session_in_zygote(
        &mut self,
        zygote: UnboundedSender<ToPython>,
        messages: Vec<ToPython>,
        ctx: &mut Context<Self>,
    ) {
        let drained = self.reporter.drain.send(Drain);
        async move {
            let _ = drained.await;
            messages.into_iter().for_each(|message| drop(zygote.send(message)));
        }
        .into_actor(self)
        .spawn(ctx);
        self.end.finishing = true;
        ctx.run_later(SESSION_FINISH_NOTICE, |act, _| {
            if act.end.finishing && act.end.session_ended.is_none() {
                act.say(format!(
                    "rpytest: still waiting for pytest to end the session in the zygote (pid {}) \
                     after {}s: a pytest_sessionfinish or pytest_unconfigure hook is running",
                    act.zygote_pid.unwrap_or(0),
                    SESSION_FINISH_NOTICE.as_secs()
                ));
            }
        });
    }

    /// Said once when the zygote has not reported its collection within
    /// the silence limit: pytest may legitimately collect for minutes, so
    /// the run goes on, but the user learns where it stands (a conftest or
    /// test module hanging at import is the usual cause).
    pub(super) fn still_collecting(&self) {
        if self.inventory.is_some() || self.done.is_none() || self.end.exit_after_zygote.is_some() {
            return;
        }
        let Some(pid) = self.zygote_pid else { return };
        let secs = crate::supervise::silence::limit().as_secs_f64();
        self.say(format!(
            "rpytest: still waiting for the zygote (pid {pid}) to report its collection after {secs}s: \
             pytest is collecting, or a conftest or test module hangs at import"
        ));
    }

    /// pytest returned from the session the zygote finished; the process
    /// exits next (its exit handlers run), within a time limit.
    pub(super) fn on_session_ended(&mut self, exit_code: i32, ctx: &mut Context<Self>) {
        self.end.session_ended = Some(exit_code);
        if !self.end.finishing {
            return;
        }
        crate::trace::event(|| format!("pytest ended the session, exit status {exit_code}"));
        ctx.run_later(ZYGOTE_EXIT_AFTER_SESSION, move |act, _| {
            if let Some(pid) = act.zygote_pid.filter(|_| act.end.finishing) {
                act.say(format!(
                    "rpytest: warning: pytest ended the session (exit status {exit_code}) but the zygote \
                     (pid {pid}) has not exited after {}s (a non-daemon thread still running?); stopping it",
                    ZYGOTE_EXIT_AFTER_SESSION.as_secs()
                ));
                act.kill_zygote();
            }
        });
    }
}
