//! The Supervisor performs what the lifecycle decided, in order: processes
//! started and signalled, timers, the zygote's connection, the Scheduler,
//! the Reporter and the History.

use actix::prelude::*;

use super::Supervisor;
use crate::engine::messages::*;
use crate::history::{unix_now, LastRun};
use crate::protocol::{ReplayEntry, WorkerExit};
use crate::run::crash::fault_log_tail;
use crate::supervise::launch::{spawn_watched, WorkerSpawn};
use crate::supervise::lifecycle::{Action, Summary};
use crate::supervise::{kill_zygote, proctree, signal, signal_worker};

impl Supervisor {
    pub(super) fn perform(&mut self, actions: Vec<Action>, ctx: &mut Context<Self>) {
        for action in actions {
            match action {
                Action::Say(line) => self.events.diagnostic(line),
                Action::Signal { pid, signal: sig } => signal(pid, sig),
                Action::SignalTree { pid, signal } => signal_worker(pid, signal),
                Action::KillDescendants { pid } => proctree::kill_all(&proctree::descendants(pid as i32)),
                Action::KillZygote { pid } => kill_zygote(pid, self.plan.interactive),
                Action::Arm { after, timer } => {
                    ctx.run_later(after, move |act, ctx| act.apply(ctx, |life, now| life.on_timer(timer, now)));
                }
                Action::Repeat { every, tick } => {
                    ctx.run_interval(every, move |act, ctx| act.apply(ctx, |life, now| life.on_tick(tick, now)));
                }
                Action::StartZygote => self.start_zygote(ctx),
                // The daemon's child: its exit is seen through a pidfd, its
                // status only by the daemon.
                Action::WatchWarmZygote { pid } => {
                    let addr = ctx.address();
                    actix::spawn(async move {
                        crate::daemon::zygote_exited(pid).await;
                        addr.do_send(WarmZygoteEnded);
                    });
                }
                Action::AskDaemonExitStatus => {
                    let (Some(handover), addr) = (self.warm_zygote.clone(), ctx.address()) else { continue };
                    actix::spawn(async move {
                        let asked = tokio::task::spawn_blocking(move || crate::daemon::client::exit_status(&handover));
                        let (code, signal) = asked.await.unwrap_or_default();
                        addr.do_send(ZygoteExited { code, signal });
                    });
                }
                Action::ZygoteLink(link) => self.zygote = Some(link),
                Action::ToZygote(message) => drop(self.zygote.as_ref().map(|zygote| zygote.send(message))),
                Action::ForgetZygote => self.zygote = None,
                // After the Reporter's drain: the progress it buffers for a
                // pipe reaches stdout before what the session's end prints.
                Action::EndSession(messages) => {
                    let Some(zygote) = self.zygote.clone() else { continue };
                    self.after_drain(move || messages.into_iter().for_each(|message| drop(zygote.send(message))));
                }
                Action::PlanRun(inventory) => self.plan_run(*inventory, ctx),
                Action::SpawnWorker(spawn) => self.spawn_worker(spawn, ctx),
                Action::RetireWorker { worker } => self.scheduler.retire.do_send(RetireWorker { worker }),
                Action::WorkerLost { worker, cause, process, timed_out } => {
                    let log = fault_log_tail(&self.launch.socket, worker, process);
                    self.scheduler.lost.do_send(WorkerLost { worker, cause, log, timed_out });
                }
                Action::FaultLog { worker, process } => {
                    if let Some(log) = fault_log_tail(&self.launch.socket, worker, process) {
                        self.events.diagnostic(format!("rpytest: worker gw{worker} wrote to its fault log:\n{log}"));
                    }
                }
                Action::ZygoteLost { cause } => self.scheduler.zygote_lost.do_send(ZygoteLost { cause }),
                Action::InterruptRun => self.scheduler.interrupted.do_send(RunInterrupted),
                Action::TornDown(phases) => self.scheduler.torn_down.do_send(SharedFixturesTornDown { phases }),
                Action::PluginSummary(text) => self.reporter.plugin_summary.do_send(PluginSummary { text }),
                Action::WriteJunit(entries) => self.write_junit(&entries),
                Action::Summarize(summary) => self.summarize(summary, ctx),
                // Once the Reporter has written all it was sent, diagnostics included.
                Action::Finish(code) => {
                    let Some(done) = self.done.take() else { continue };
                    self.after_drain(move || done.send(code).unwrap_or_default());
                }
            }
        }
    }

    fn after_drain(&self, then: impl FnOnce() + 'static) {
        let drained = self.reporter.drain.send(Drain);
        actix::spawn(async move {
            let _ = drained.await;
            then();
        });
    }

    fn start_zygote(&mut self, ctx: &mut Context<Self>) {
        let addr = ctx.address();
        let on_exit = move |_, code, signal| addr.do_send(ZygoteExited { code, signal });
        let started = spawn_watched(self.launch.zygote(), on_exit).map_err(|e| e.to_string());
        self.apply(ctx, |life, now| life.on_zygote_spawned(started, now));
    }

    fn spawn_worker(&mut self, spawn: WorkerSpawn, ctx: &mut Context<Self>) {
        let inventory = self.inventory.clone().expect("workers start after collection");
        let (addr, worker) = (ctx.address(), spawn.worker);
        let on_exit =
            move |pid, exit_code, signal| addr.do_send(WorkerExitSeen(WorkerExit { worker, pid, exit_code, signal }));
        match self.launch.spawn_worker(&spawn, &inventory, self.life.zygote_pid(), on_exit) {
            Ok(pid) => self.apply(ctx, |life, now| life.on_worker_spawned(worker, pid, now)),
            Err(message) => {
                self.events.diagnostic(message);
                ctx.notify(WorkerExitSeen(WorkerExit { worker, pid: 0, exit_code: None, signal: None }));
            }
        }
    }

    /// The junit file pytest could not write.
    fn write_junit(&mut self, entries: &[ReplayEntry]) {
        let Some(inventory) = self.inventory.clone() else { return };
        match crate::report::junit::write_for(&inventory, entries, self.plan.started.elapsed().as_secs_f64()) {
            Ok(written) => self.junit_written |= written,
            Err(line) => self.events.diagnostic(line),
        }
    }

    /// The History saves and the Reporter writes the closing summary; its
    /// answer (`--max-warnings` exceeded) goes back to the lifecycle.
    fn summarize(&mut self, summary: Summary, ctx: &mut Context<Self>) {
        let Summary { code, stopped, mut notes, warnings, session_finished } = summary;
        let (reporter, history) = (self.reporter.clone(), self.history.clone());
        // pytest's junitxml writes its file when the session ends in the
        // zygote; without one, `write_junit` does.
        let junit_written = session_finished || self.junit_written;
        let tests = self.inventory.as_ref().map_or(0, |i| i.items.len());
        let wall = self.plan.started.elapsed().as_secs_f64();
        let run = LastRun { finished_at: unix_now(), tests, workers: self.worker_count, wall };
        async move {
            if let Some(history) = history {
                notes.extend(history.flush.send(Flush { run: Some(run) }).await.ok().flatten());
            }
            reporter.summarize.send(Summarize { stopped, notes, junit_written, warnings }).await.unwrap_or(false)
        }
        .into_actor(self)
        .map(move |too_many, act, ctx| act.apply(ctx, |life, now| life.on_summarized(code, too_many, now)))
        .spawn(ctx);
    }
}
