//! The history sink: what the run's events teach the history, and the
//! saves of the history file and of the committed durations file
//! (`--store-durations`). Plain, so it is tested by feeding it events; the
//! History actor (`engine/history.rs`) only routes messages here, ticks its
//! save clock, and sends the warnings these saves return to the terminal.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{HistoryStore, LastRun};
use crate::history::durations_file;
use crate::report::events::{EventSink, Observe, RunEvent};

pub struct Recorder {
    store: HistoryStore,
    /// Learnt since the last save.
    dirty: bool,
    /// `--store-durations`: where to merge this run's durations.
    durations_file: Option<PathBuf>,
    this_run: HashMap<String, f64>,
}

/// What the end of the run saved: a note for the summary, warnings for stderr.
#[derive(Debug, Default, PartialEq)]
pub struct Saved {
    pub note: Option<String>,
    pub warnings: Vec<String>,
}

impl Recorder {
    pub fn new(store: HistoryStore, durations_file: Option<PathBuf>) -> Self {
        Recorder { store, dirty: false, durations_file, this_run: HashMap::new() }
    }

    /// Saves the history if it learnt something since the last save (a
    /// killed run keeps most of what it learnt); a warning if it could not.
    pub fn save_if_dirty(&mut self) -> Option<String> {
        if self.dirty {
            self.save_history()
        } else {
            None
        }
    }

    /// The end of the run: `run` describes it; everything is saved.
    pub fn flush(&mut self, run: Option<LastRun>) -> Saved {
        if let Some(run) = run {
            self.store.set_last_run(run);
        }
        let mut saved = Saved { warnings: self.save_history().into_iter().collect(), note: None };
        if let Some(path) = &self.durations_file {
            match durations_file::merge_and_save(path, &self.this_run) {
                Ok(_) => saved.note = Some(format!("Stored test durations in {}", path.display())),
                Err(e) => saved
                    .warnings
                    .push(format!("rpytest: warning: could not write the durations file {}: {e}", path.display())),
            }
        }
        saved
    }

    fn save_history(&mut self) -> Option<String> {
        self.dirty = false;
        let error = self.store.save().err()?;
        Some(format!("rpytest: warning: could not save test history to {}: {error}", self.store.path().display()))
    }

    fn observe(&mut self, msg: &Observe) {
        self.store.record(&msg.nodeid, msg.duration, &msg.outcome, msg.peak_rss_kb);
        if msg.flaky {
            self.store.count_flaky(&msg.nodeid);
        }
        if let (Some(_), Some(duration)) = (&self.durations_file, msg.duration) {
            self.this_run.insert(msg.nodeid.clone(), duration);
        }
        self.dirty = true;
    }
}

/// Of the run's events, the history takes what a finished test taught.
impl EventSink for Recorder {
    fn event(&mut self, event: RunEvent) {
        if let RunEvent::Observed(observed) = event {
            self.observe(&observed);
        }
    }
}
