//! History actor: the history sink (`history::recorder::Recorder`, the only
//! writer of the history file and of the committed durations file) as a
//! mailbox.
//!
//! Accepts `RunEvent` (it subscribes to the run's events; the recorder
//! takes `Observed`) and `Flush` (write the files; sent at the end of the
//! run, answered with a note for the terminal). While a run goes on it
//! also saves the history every few seconds, so a run that is killed keeps
//! most of what it learnt. A file it cannot write is said on the
//! terminal's stderr, as a diagnostic event. Readers use the store's
//! `HistoryView`.

use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{EventBus, Flush, RunEvent};
use crate::history::recorder::Recorder;
use crate::history::HistoryStore;
use crate::report::events::EventSink;

/// How often a running test run saves what it has learnt so far.
const SAVE_EVERY: Duration = Duration::from_secs(5);

pub struct History {
    recorder: Recorder,
    /// Where a file that cannot be written is said (the Reporter's stderr).
    diagnostics: EventBus,
}

impl History {
    pub fn new(store: HistoryStore, durations_file: Option<PathBuf>, diagnostics: EventBus) -> Self {
        History { recorder: Recorder::new(store, durations_file), diagnostics }
    }
}

impl Actor for History {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SAVE_EVERY, |act, _| {
            if let Some(warning) = act.recorder.save_if_dirty() {
                act.diagnostics.diagnostic(warning);
            }
        });
    }
}

impl Handler<RunEvent> for History {
    type Result = ();

    fn handle(&mut self, event: RunEvent, _: &mut Context<Self>) {
        self.recorder.event(event);
    }
}

impl Handler<Flush> for History {
    type Result = Option<String>;

    fn handle(&mut self, msg: Flush, _: &mut Context<Self>) -> Option<String> {
        let saved = self.recorder.flush(msg.run);
        saved.warnings.into_iter().for_each(|warning| self.diagnostics.diagnostic(warning));
        saved.note
    }
}
