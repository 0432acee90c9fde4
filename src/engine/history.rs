//! History actor: the only writer of the history file and of the committed
//! durations file (`--store-durations`).
//!
//! Accepts `RunEvent` (it subscribes to the run's events and takes
//! `Observed`: a finished test's duration, outcome and the worker's peak
//! memory) and `Flush` (write the files atomically; sent at the
//! end of the run, answered with a note for the terminal). While a run goes
//! on it also saves the history every few seconds, so a run that is killed
//! keeps most of what it learnt. Readers use the store's `HistoryView`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{EventBus, Flush, Observe, RunEvent};

use crate::history::HistoryStore;
use crate::schedule::durations_file;

/// How often a running test run saves what it has learnt so far.
const SAVE_EVERY: Duration = Duration::from_secs(5);

pub struct History {
    store: HistoryStore,
    dirty: bool,
    /// `--store-durations`: where to merge this run's durations.
    durations_file: Option<PathBuf>,
    this_run: HashMap<String, f64>,
    /// Where a file that cannot be written is said (the Reporter's stderr).
    diagnostics: EventBus,
}

impl History {
    pub fn new(store: HistoryStore, durations_file: Option<PathBuf>, diagnostics: EventBus) -> Self {
        History { store, dirty: false, durations_file, this_run: HashMap::new(), diagnostics }
    }

    fn save_history(&mut self) {
        if let Err(e) = self.store.save() {
            self.diagnostics.diagnostic(format!(
                "rpytest: warning: could not save test history to {}: {e}",
                self.store.path().display()
            ));
        }
        self.dirty = false;
    }

    fn save_durations(&self) -> Option<String> {
        let path = self.durations_file.as_ref()?;
        match durations_file::merge_and_save(path, &self.this_run) {
            Ok(_) => Some(format!("Stored test durations in {}", path.display())),
            Err(e) => {
                self.diagnostics.diagnostic(format!(
                    "rpytest: warning: could not write the durations file {}: {e}",
                    path.display()
                ));
                None
            }
        }
    }
}

impl Actor for History {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SAVE_EVERY, |act, _| {
            if act.dirty {
                act.save_history();
            }
        });
    }
}

impl Handler<RunEvent> for History {
    type Result = ();

    /// Of the run's events, the History takes what a finished test taught.
    fn handle(&mut self, event: RunEvent, _: &mut Context<Self>) {
        if let RunEvent::Observed(observed) = event {
            self.observe(std::sync::Arc::unwrap_or_clone(observed));
        }
    }
}

impl History {
    fn observe(&mut self, msg: Observe) {
        self.store.record(&msg.nodeid, msg.duration, &msg.outcome, msg.peak_rss_kb);
        if msg.flaky {
            self.store.count_flaky(&msg.nodeid);
        }
        if let (Some(_), Some(duration)) = (&self.durations_file, msg.duration) {
            self.this_run.insert(msg.nodeid, duration);
        }
        self.dirty = true;
    }
}

impl Handler<Flush> for History {
    type Result = Option<String>;

    fn handle(&mut self, msg: Flush, _: &mut Context<Self>) -> Option<String> {
        if let Some(run) = msg.run {
            self.store.set_last_run(run);
        }
        self.save_history();
        self.save_durations()
    }
}
