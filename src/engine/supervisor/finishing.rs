//! The Supervisor's end of a run: the zygote's exit (`session_end.rs` has
//! pytest ending the session there), the summary, the exit code once the
//! zygote is gone, Ctrl-C during collection, and stopping processes
//! (timeouts, a second Ctrl-C).

use std::time::Duration;

use actix::prelude::*;

use super::Supervisor;
use crate::config::WorkerStart;
use crate::engine::messages::{Drain, Flush, Summarize, WorkerSilent};
use crate::history::{unix_now, LastRun};
use crate::report::Stopped;
use crate::run::timeouts;
use crate::supervise::ending::{self, ZygoteEnd, ZygoteEndFacts};
use crate::supervise::{kill_zygote, signal, signal_worker};

/// How long the zygote may take to exit after `shutdown`.
const ZYGOTE_EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long a forked worker may take to connect; a spawned one collects
/// the suite first, so it gets longer. `RPYTEST_WORKER_CONNECT_TIMEOUT`
/// (seconds) sets both.
const FORKED_CONNECT_LIMIT: Duration = Duration::from_secs(30);
const SPAWNED_CONNECT_LIMIT: Duration = Duration::from_secs(300);

pub fn connect_limit(start: WorkerStart) -> Duration {
    let from_env = std::env::var("RPYTEST_WORKER_CONNECT_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok());
    match (from_env, start) {
        (Some(secs), _) if secs > 0.0 => Duration::from_secs_f64(secs),
        (_, WorkerStart::Fork) => FORKED_CONNECT_LIMIT,
        (_, WorkerStart::Spawn) => SPAWNED_CONNECT_LIMIT,
    }
}

/// Where the end of the run stands.
#[derive(Default)]
pub struct EndState {
    pub session_ended: Option<i32>,
    /// The zygote is ending pytest's session with the run's reports.
    pub finishing: bool,
    pub exitstatus: Option<i32>,
    /// Why the run stopped early, kept for the summary after the session ends.
    pub stopped: Option<Stopped>,
    /// The exit code, once only the zygote's own exit is awaited.
    pub exit_after_zygote: Option<i32>,
    /// Ctrl-C was pressed once: the run is tearing down.
    pub interrupted: bool,
    /// pytest ended the session in the zygote (its sessionfinish ran).
    pub session_finished: bool,
    /// Lines for the summary (LEAK notes), from `RunComplete`.
    pub notes: Vec<String>,
    /// What pytest warned of while it ended the session (`session_ended`).
    pub warnings: Vec<crate::protocol::WarningRecord>,
}

impl Supervisor {
    /// The zygote's process ended: what that means depends on where the run stood.
    pub(super) fn on_zygote_exited(&mut self, code: Option<i32>, signal: Option<i32>, ctx: &mut Context<Self>) {
        self.zygote_pid = None;
        let facts = ZygoteEndFacts {
            exit_after_zygote: self.end.exit_after_zygote.take(),
            finishing: self.end.finishing,
            run_over: self.done.is_none() || (self.end.exitstatus.is_some() && self.zygote.is_none()),
            collected: self.inventory.is_some(),
            said_hello: self.zygote.is_some() || self.warm_zygote.is_some(),
            session_ended: self.end.session_ended,
        };
        match ending::zygote_ended(&facts, code, signal, &self.plan.python) {
            ZygoteEnd::Finish(code) => self.finish(code),
            ZygoteEnd::Ignore => {}
            ZygoteEnd::SessionFinished { code: exit, note } => {
                let killed = self.end.session_ended.is_none() && signal.is_some();
                let how = self.zygote_end(code, signal);
                let note = match killed {
                    true => Some(format!("rpytest: error: the zygote was {how} while pytest was ending the session")),
                    false => note,
                };
                note.iter().for_each(|line| self.say(line.clone()));
                self.end.finishing = false;
                self.zygote = None;
                // Killed, pytest never wrote the junit file: it is written here.
                self.end.session_finished = !killed;
                if let Some(entries) = self.watch.replay.take().filter(|_| killed) {
                    self.write_junit(&entries);
                }
                let lost = killed.then(|| Stopped::plain(format!("the zygote was {how}")));
                let stopped = self.end.stopped.take().or(lost);
                self.summarize(exit, stopped, ctx);
            }
            ZygoteEnd::Failed { message, code } => {
                self.say(message);
                self.finish(code);
            }
            ZygoteEnd::DiedDuringRun => {
                let how = self.zygote_end(code, signal);
                self.zygote_lost(how, ctx);
            }
        }
    }

    pub(super) fn summarize(&mut self, code: i32, stopped: Option<Stopped>, ctx: &mut Context<Self>) {
        if let Some(zygote) = self.zygote.take() {
            let _ = zygote.send(crate::protocol::ToPython::Shutdown);
        }
        let reporter = self.reporter.clone();
        let history = self.history.clone();
        // pytest's junitxml writes its file when the session ends in the
        // zygote; without one, `zygote_lost.rs` does.
        let junit_written = self.end.session_finished || self.watch.junit_written;
        let run = LastRun {
            finished_at: unix_now(),
            tests: self.inventory.as_ref().map_or(0, |i| i.items.len()),
            workers: self.worker_count,
            wall: self.plan.started.elapsed().as_secs_f64(),
        };
        let mut notes = std::mem::take(&mut self.end.notes);
        let warnings = std::mem::take(&mut self.end.warnings);
        async move {
            if let Some(history) = history {
                notes.extend(history.flush.send(Flush { run: Some(run) }).await.ok().flatten());
            }
            reporter.summarize.send(Summarize { stopped, notes, junit_written, warnings }).await.unwrap_or(false)
        }
        .into_actor(self)
        // pytest's ExitCode.MAX_WARNINGS_ERROR: all passed, too many warnings.
        .map(move |too_many_warnings, act, ctx| {
            act.finish_when_zygote_gone(if too_many_warnings && code == 0 { 6 } else { code }, ctx)
        })
        .spawn(ctx);
    }

    /// The zygote runs the session's exit handlers after `shutdown` (pytest
    /// removes its basetemp lock there); give it a moment before we exit.
    fn finish_when_zygote_gone(&mut self, code: i32, ctx: &mut Context<Self>) {
        if self.zygote_pid.is_none() {
            return self.finish(code);
        }
        self.end.exit_after_zygote = Some(code);
        ctx.run_later(ZYGOTE_EXIT_GRACE, move |act, _| act.finish(code));
    }

    /// Ends the run with `code`, once the Reporter has written everything
    /// sent to it before (diagnostics included).
    pub(super) fn finish(&mut self, code: i32) {
        let Some(done) = self.done.take() else { return };
        crate::trace::event(|| format!("done, exit code {code}"));
        let drained = self.reporter.drain.send(Drain);
        actix::spawn(async move {
            let _ = drained.await;
            let _ = done.send(code);
        });
    }

    /// A line for stderr, through the Reporter: above the live status, in order.
    pub(super) fn say(&self, line: impl Into<String>) {
        self.events.diagnostic(line);
    }

    /// Interrupted while pytest collects: pytest handles the interrupt
    /// itself, printing what plain pytest prints (the KeyboardInterrupt
    /// banner, "no tests ran"); stopped if it has not exited in time.
    pub(super) fn interrupt_collection(&mut self, ctx: &mut Context<Self>) {
        let Some(pid) = self.zygote_pid else { return self.finish(2) };
        signal(pid, libc::SIGINT);
        self.end.exit_after_zygote = Some(2);
        ctx.run_later(ZYGOTE_EXIT_GRACE, |act, _| {
            act.kill_zygote();
            act.finish(2);
        });
    }

    pub(super) fn kill_zygote(&self) {
        if let Some(pid) = self.zygote_pid {
            kill_zygote(pid, self.plan.interactive);
        }
    }

    pub(super) fn kill_everything(&mut self) {
        self.kill_zygote();
        for (_, pid) in self.slots.processes() {
            signal_worker(pid, libc::SIGKILL);
        }
    }

    /// Stops a worker whose test passed its limit: SIGUSR1 for the stack
    /// dump, then SIGTERM, then (after the grace period) SIGKILL of its
    /// group and of every process under it, detached ones included.
    pub(super) fn stop_timed_out(&mut self, worker: usize, secs: f64, ctx: &mut Context<Self>) {
        let Some(pid) = self.slots.time_out(worker, secs) else { return };
        self.say(format!("rpytest: {} on worker gw{worker} (pid {pid}): stopping it", timeouts::describe(secs)));
        signal(pid, libc::SIGUSR1);
        ctx.run_later(timeouts::DUMP_WAIT, move |_, ctx| {
            // What the test started dies now (detached ones would otherwise
            // be orphaned); the worker gets SIGTERM and a grace period.
            crate::supervise::proctree::kill_all(&crate::supervise::proctree::descendants(pid as i32));
            signal_worker(pid, libc::SIGTERM);
            ctx.run_later(timeouts::TERM_GRACE, move |_, _| signal_worker(pid, libc::SIGKILL));
        });
    }

    /// A worker silent where a reply was due (`supervise::silence`) is
    /// named, with what rpytest waited for, and treated as crashed: its
    /// stacks go to its fault log (SIGUSR1), then it and everything under
    /// it are killed. Its slot ends as a crash with that cause.
    pub(super) fn stop_silent(&mut self, msg: WorkerSilent, ctx: &mut Context<Self>) {
        let WorkerSilent { worker, pid, silent } = msg;
        let why = format!("it sent nothing for {}s while rpytest waited for {}", silent.secs, silent.waited_for);
        let Some(pid) = self.slots.silenced(worker, pid, format!("{why}; rpytest stopped it")) else { return };
        self.say(format!("rpytest: error: worker gw{worker} (pid {pid}): {why}; treating it as crashed"));
        signal(pid, libc::SIGUSR1);
        ctx.run_later(timeouts::DUMP_WAIT, move |_, _| signal_worker(pid, libc::SIGKILL));
    }

    /// The start-up watchdog: a worker that has not said hello in time
    /// (a lock inherited through fork, an import that hangs) is named and
    /// stopped, which ends its slot like a crash before its first test.
    pub(super) fn check_connected(&mut self, worker: usize, generation: u64, limit: Duration, ctx: &mut Context<Self>) {
        let Some(process) = self.slots.not_connected(worker, generation) else { return };
        let secs = limit.as_secs_f64();
        if let Some(pid) = process {
            self.say(format!(
                "rpytest: error: worker gw{worker} (pid {pid}) did not connect within {secs}s; stopping it"
            ));
            return signal(pid, libc::SIGKILL);
        }
        self.say(format!(
            "rpytest: error: the zygote (pid {}) did not start worker gw{worker} within {secs}s; stopping the run",
            self.zygote_pid.unwrap_or(0)
        ));
        if self.zygote_pid.is_some() {
            // Its exit ends the run with every test accounted for (`zygote_lost.rs`).
            self.watch.ended_by_us = Some(format!("killed by rpytest: it did not start worker gw{worker} in {secs}s"));
            return self.kill_zygote();
        }
        self.end.finishing = false;
        self.kill_everything();
        self.zygote = None;
        self.summarize(3, Some(Stopped::plain("the zygote stopped responding")), ctx);
    }

    pub(super) fn stop_at_once(&mut self, ctx: &mut Context<Self>) {
        self.end.finishing = false;
        self.kill_everything();
        self.zygote = None;
        self.summarize(2, Some(Stopped::plain(crate::supervise::signals::banner())), ctx);
    }
}
