//! The run's event seam on the actors' side: the plain `RunEvent`s
//! (`report::events`) and the terminal's inputs (`report::terminal`) as
//! actix messages (with `PluginSummary` and `Drain`, the rest of what the
//! Reporter accepts), and the `EventBus` that hands every event to every
//! subscribing actor, whose sink takes what it needs. The Scheduler emits
//! what `RunState` decides, the Supervisor the start of the run and its
//! diagnostics, the History and the connections their diagnostics.

use actix::prelude::*;

/// The run's events (`report::events`: plain data, decided by the run
/// state) and the terminal's own inputs (`report::terminal`) are messages
/// as they are.
pub use crate::report::events::{Begin, RunEvent};
pub use crate::report::terminal::{Status, Summarize};

impl Message for RunEvent {
    type Result = ();
}

impl Message for Status {
    type Result = ();
}

/// Answers whether `--max-warnings` was exceeded (pytest then exits 6).
impl Message for Summarize {
    type Result = bool;
}

/// What plugins' `pytest_terminal_summary` hooks wrote, for the summary.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PluginSummary {
    pub text: String,
}

/// Answered once everything sent to the Reporter before it is written:
/// the run's exit waits for it, so no diagnostic is lost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// The run's subscribers; `emit` sends each event to all of them.
#[derive(Clone, Default)]
pub struct EventBus {
    subscribers: Vec<Recipient<RunEvent>>,
}

impl EventBus {
    pub fn new(subscribers: Vec<Recipient<RunEvent>>) -> Self {
        EventBus { subscribers }
    }

    pub fn subscribe(&mut self, subscriber: Recipient<RunEvent>) {
        self.subscribers.push(subscriber);
    }

    pub fn emit(&self, event: RunEvent) {
        self.subscribers.iter().for_each(|subscriber| subscriber.do_send(event.clone()));
    }

    pub fn diagnostic(&self, line: impl Into<String>) {
        self.emit(RunEvent::diagnostic(line));
    }
}
