//! Reporter actor: the terminal sink (`report::terminal::TerminalReporter`,
//! which owns stdout and stderr and holds all the logic) as a mailbox, so
//! every actor's events and diagnostics reach the terminal in the order
//! sent.
//!
//! Accepts `RunEvent` (the run's events, see `report::events`), `Status`
//! (what is running, from the Scheduler), `PluginSummary` (plugins'
//! terminal summaries), `Summarize` (print pytest's closing sections and
//! counts line) and `Drain` (answered once all of that is written). Its
//! clock redraws the live status and lets out a partial line every
//! `STATUS_EVERY`.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{Drain, PluginSummary, RunEvent, Status, Summarize};
use crate::report::events::EventSink;
use crate::report::terminal::TerminalReporter;

pub struct Reporter {
    terminal: TerminalReporter,
    /// The run's clock, for the closing line's duration.
    started: Instant,
}

/// How often the live status redraws (elapsed times move on their own).
const STATUS_EVERY: Duration = Duration::from_millis(250);

impl Reporter {
    pub fn new(terminal: TerminalReporter, started: Instant) -> Self {
        Reporter { terminal, started }
    }
}

impl Actor for Reporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(STATUS_EVERY, |act, _| act.terminal.tick());
    }
}

impl Handler<Drain> for Reporter {
    type Result = ();

    fn handle(&mut self, _: Drain, _: &mut Context<Self>) {
        self.terminal.drain();
    }
}

impl Handler<RunEvent> for Reporter {
    type Result = ();

    fn handle(&mut self, event: RunEvent, _: &mut Context<Self>) {
        self.terminal.event(event);
    }
}

impl Handler<Status> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Status, _: &mut Context<Self>) {
        self.terminal.status(msg);
    }
}

impl Handler<PluginSummary> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: PluginSummary, _: &mut Context<Self>) {
        self.terminal.plugin_summary(&msg.text);
    }
}

impl Handler<Summarize> for Reporter {
    type Result = bool;

    fn handle(&mut self, msg: Summarize, _: &mut Context<Self>) -> bool {
        let sigint = crate::supervise::signals::received() == Some(libc::SIGINT);
        self.terminal.summarize(msg, self.started.elapsed().as_secs_f64(), sigint)
    }
}
