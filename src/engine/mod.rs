//! The engine: one actix system hosting the actors for one run.
//!
//! It prepares what the actors share (the worker package on disk, a private
//! socket directory), starts the Reporter, Scheduler and Supervisor, accepts
//! connections, and returns the exit code the Supervisor delivers.
//!
//! The engine's actors. Each is a thin shell over a plain struct that holds
//! the logic, so the logic is tested without an actix system: the
//! Scheduler over `RunState`, the Supervisor over `supervise`, the Reporter
//! and the History over the run's two event sinks
//! (`report::terminal::TerminalReporter`, `history::recorder::Recorder`).
//!
//! Events flow one way: connections -> Supervisor (process lifecycle) and
//! Scheduler (run state); only the Scheduler emits test events to the
//! Reporter and History, which keeps actix's per-sender ordering intact.

pub mod connection;
pub mod events;
pub mod history;
pub mod messages;
pub mod reporter;
pub mod scheduler;
pub mod supervisor;

use std::io::IsTerminal;
use std::sync::Arc;

use actix::prelude::*;
use tokio::net::UnixListener;
use tokio::sync::oneshot;

use crate::engine::connection::{accept_loop, Peers};
use crate::engine::history::History;
use crate::engine::messages::{
    EventBus, HistoryLink, HistoryStarter, ReporterLink, RunEvent, SchedulerLink, SupervisorLink,
};
use crate::engine::reporter::Reporter;
use crate::engine::scheduler::Scheduler;
use crate::engine::supervisor::Supervisor;
use crate::errors::EngineError;
use crate::exit_code::ExitCode;
use crate::plan::RunPlan;
use crate::python::embed;
use crate::report::terminal::TerminalReporter;
use crate::supervise::proctree;
use crate::supervise::socket_dir;

pub fn run(plan: RunPlan) -> Result<ExitCode, EngineError> {
    let pyworker_dir = embed::install()?;
    // Orphans of the run (a crashed worker's children, a test's detached
    // helper) become ours, not init's, and are ended below.
    proctree::become_subreaper();
    let socket_dir = socket_dir::create().map_err(EngineError::Socket)?;
    let socket = socket_dir.path().join(socket_dir::SOCKET_NAME);
    // Bound before a warm zygote is asked to connect to it.
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(EngineError::Socket)?;
    listener.set_nonblocking(true).map_err(EngineError::Socket)?;
    let warm_zygote = plan.daemon.as_ref().and_then(|daemon| daemon.take_warm_zygote(&socket));
    let plan = Arc::new(plan);
    let system = System::new();
    let run_plan = plan.clone();
    let code = system.block_on(async move {
        let plan = run_plan;
        let listener = UnixListener::from_std(listener).map_err(EngineError::Socket)?;
        let (done_tx, done_rx) = oneshot::channel();
        let terminal = std::io::stdout().is_terminal();
        // The live status line: on a terminal, not in CI, not over a debugger.
        let live = !plan.interactive && terminal && std::env::var_os("CI").is_none();
        let streams: [Box<dyn std::io::Write + Send>; 2] = [Box::new(std::io::stdout()), Box::new(std::io::stderr())];
        let terminal_sink = TerminalReporter::new(plan.color, live, streams, terminal || plan.interactive);
        let reporter = reporter_link(Reporter::new(terminal_sink, plan.started).start());
        let scheduler = Scheduler::new(reporter.clone(), plan.retries, live, plan.rerun_isolated).start();
        let peers = (scheduler_link(&scheduler), reporter.clone(), history_starter(reporter.events.clone()));
        let supervisor = Supervisor::new(plan, pyworker_dir, socket, peers, done_tx, warm_zygote).start();
        let diagnostics = EventBus::new(vec![reporter.events.clone()]);
        actix::spawn(accept_loop(listener, Peers { supervisor, scheduler, diagnostics }));
        // No code delivered: the Supervisor is gone without ending the run.
        Ok::<ExitCode, EngineError>(done_rx.await.unwrap_or(ExitCode::InternalError))
    })?;
    drop(socket_dir);
    let orphans = proctree::end_orphans();
    crate::trace::event(|| format!("ended {orphans} leftover process(es) of the run"));
    if let Some(daemon) = &plan.daemon {
        daemon.prewarm();
    }
    Ok(code)
}

/// The actors are wired here, the one place that names them all: each
/// gets its peers as recipients of the messages it sends them.
fn reporter_link(reporter: Addr<Reporter>) -> ReporterLink {
    ReporterLink {
        events: reporter.clone().recipient(),
        status: reporter.clone().recipient(),
        plugin_summary: reporter.clone().recipient(),
        summarize: reporter.clone().recipient(),
        drain: reporter.recipient(),
    }
}

/// Where the Scheduler sends what it asks of the Supervisor.
fn supervisor_link(supervisor: Addr<Supervisor>) -> SupervisorLink {
    SupervisorLink {
        restart: supervisor.clone().recipient(),
        stop_timed_out: supervisor.clone().recipient(),
        teardown: supervisor.clone().recipient(),
        complete: supervisor.recipient(),
    }
}

fn scheduler_link(scheduler: &Addr<Scheduler>) -> SchedulerLink {
    SchedulerLink {
        start: scheduler.clone().recipient(),
        torn_down: scheduler.clone().recipient(),
        lost: scheduler.clone().recipient(),
        zygote_lost: scheduler.clone().recipient(),
        retire: scheduler.clone().recipient(),
        interrupted: scheduler.clone().recipient(),
    }
}

/// The History subscribes to the run's events; its own warnings go to the
/// Reporter's stderr as events too.
fn history_starter(reporter_events: Recipient<RunEvent>) -> HistoryStarter {
    Box::new(move |store, durations_file| {
        let diagnostics = EventBus::new(vec![reporter_events.clone()]);
        let history = History::new(store, durations_file, diagnostics).start();
        HistoryLink { events: history.clone().recipient(), flush: history.recipient() }
    })
}
