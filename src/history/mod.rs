//! The record of past runs: per test, its recent durations (setup + call +
//! teardown), last outcome and the peak memory of the worker that ran it;
//! and a line about the last run.
//!
//! Stored as JSON at `<rootdir>/.rpytest/history.json` (layout, loading
//! and pruning of tests that are gone: `file.rs`), written to a temp file
//! and renamed (`atomic_file.rs`), so a killed run never leaves it
//! half-written. Runs
//! that overlap in one rootdir merge instead of overwriting each other: a
//! save takes a lock on `.rpytest/` (`dir_lock.rs`), re-reads the file, and
//! applies only what this run recorded since its last save. A file
//! that cannot be read is reported and rebuilt, never trusted: a schedule
//! from garbage is worse than no schedule. Durations that are not finite
//! and non-negative are dropped on load for the same reason.
//!
//! The tests live in a `DashMap` behind an `Arc`: the History actor is the
//! only writer (it owns the `HistoryStore`), and anyone may read cheaply
//! through a `HistoryView` without a round trip to the actor. A run holds
//! only the tests it collected (`open_for`); `--inventory-status` holds all.

pub mod atomic_file;
pub mod dir_lock;
pub mod durations_file;
mod file;
pub mod inventory_status;
pub mod recorder;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::history::dir_lock::DirLock;
use crate::history::file::HistoryFile;

/// Durations kept per test; the schedule uses their mean.
const KEEP: usize = 5;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestHistory {
    pub durations: Vec<f64>,
    pub last_outcome: String,
    /// The worker's peak resident memory (KiB) when this test last finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kb: Option<u64>,
    /// How many runs it passed only after failed tries (`--retries`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flaky: u32,
    /// The number of the run (of this rootdir) that last recorded it, and
    /// when (unix seconds): what pruning goes by (`file.rs`). `None` in
    /// files from before pruning, until their next save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_run: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TestHistory {
    /// Adds one finished run of the test; see `HistoryStore::record`.
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Ran { duration, outcome, peak_rss_kb, .. } => {
                if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
                    self.durations.push(d);
                }
                if self.durations.len() > KEEP {
                    self.durations.remove(0);
                }
                self.last_outcome = outcome.clone();
                self.peak_rss_kb = peak_rss_kb.or(self.peak_rss_kb);
            }
            Change::Flaky { .. } => self.flaky += 1,
        }
    }

    pub fn expected(&self) -> Option<f64> {
        (!self.durations.is_empty()).then(|| self.durations.iter().sum::<f64>() / self.durations.len() as f64)
    }
}

/// Facts about the most recent run that wrote the file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastRun {
    /// Unix time (seconds) the run ended.
    pub finished_at: u64,
    pub tests: usize,
    pub workers: usize,
    /// Wall-clock seconds of the whole run.
    pub wall: f64,
}

/// Read access to the history, shared with its one writer.
#[derive(Debug, Clone)]
pub struct HistoryView {
    tests: Arc<DashMap<String, TestHistory>>,
}

impl HistoryView {
    pub fn expected(&self, nodeid: &str) -> Option<f64> {
        self.tests.get(nodeid).and_then(|t| t.expected())
    }

    /// pytest's `--ff` group: the test failed (or errored) last time.
    pub fn failed_last(&self, nodeid: &str) -> bool {
        self.tests.get(nodeid).is_some_and(|t| matches!(t.last_outcome.as_str(), "failed" | "error"))
    }

    /// pytest's `--nf` group, as the history sees it: never run before.
    pub fn is_new(&self, nodeid: &str) -> bool {
        !self.tests.contains_key(nodeid)
    }

    /// The peak memory of the worker that last ran this test (KiB).
    pub fn peak_rss_kb(&self, nodeid: &str) -> Option<u64> {
        self.tests.get(nodeid).and_then(|t| t.peak_rss_kb)
    }
}

/// One thing this run learnt, kept until it is saved so that a save can
/// replay it onto what another run wrote meanwhile.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Ran { nodeid: String, duration: Option<f64>, outcome: String, peak_rss_kb: Option<u64> },
    Flaky { nodeid: String },
}

impl Change {
    fn nodeid(&self) -> &str {
        match self {
            Change::Ran { nodeid, .. } | Change::Flaky { nodeid } => nodeid,
        }
    }
}

#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    tests: Arc<DashMap<String, TestHistory>>,
    /// Whether `tests` holds the whole file, or only the tests of this run.
    holds_all: bool,
    last_run: Option<LastRun>,
    /// The file's run count when last read or written.
    runs: u64,
    /// This run's number in the file, from its first save on.
    run: Option<u64>,
    /// Recorded since the last save, in order.
    unsaved: Vec<Change>,
}

impl HistoryStore {
    pub fn path_for(rootdir: &Path) -> PathBuf {
        rootdir.join(".rpytest").join("history.json")
    }

    /// Loads the whole history; a missing file is empty, a corrupt one is
    /// reported (the returned warning) and starts empty.
    pub fn open(path: PathBuf) -> (HistoryStore, Option<String>) {
        Self::load(path, None)
    }

    /// Loads what a run of `ids` needs: their entries, not the rest.
    pub fn open_for(path: PathBuf, ids: &HashSet<&str>) -> (HistoryStore, Option<String>) {
        Self::load(path, Some(ids))
    }

    fn load(path: PathBuf, only: Option<&HashSet<&str>>) -> (HistoryStore, Option<String>) {
        let tests = DashMap::new();
        let wanted = |id: &str| only.is_none_or(|ids| ids.contains(id));
        let read = read_entries(&path, wanted, |id, test| _ = tests.insert(id, test));
        let store = HistoryStore {
            path,
            tests: Arc::new(tests),
            holds_all: only.is_none(),
            last_run: read.last_run,
            runs: read.runs,
            run: None,
            unsaved: Vec::new(),
        };
        (store, read.warning)
    }

    pub fn view(&self) -> HistoryView {
        HistoryView { tests: self.tests.clone() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn last_run(&self) -> Option<&LastRun> {
        self.last_run.as_ref()
    }

    /// Every test held, with what is known of it, sorted by node id.
    pub fn tests(&self) -> Vec<(String, TestHistory)> {
        let mut all: Vec<_> = self.tests.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[cfg(test)]
    pub fn get(&self, nodeid: &str) -> Option<TestHistory> {
        self.tests.get(nodeid).map(|t| t.clone())
    }

    /// Records one finished test; `duration` is `None` when it did not run
    /// to the end (a crash), which teaches nothing about its length.
    pub fn record(&mut self, nodeid: &str, duration: Option<f64>, outcome: &str, peak_rss_kb: Option<u64>) {
        let nodeid = nodeid.to_string();
        self.change(Change::Ran { nodeid, duration, outcome: outcome.to_string(), peak_rss_kb });
    }

    /// Counts one more flaky result for a test `record` has seen.
    pub fn count_flaky(&mut self, nodeid: &str) {
        if self.tests.contains_key(nodeid) {
            self.change(Change::Flaky { nodeid: nodeid.to_string() });
        }
    }

    fn change(&mut self, change: Change) {
        self.tests.entry(change.nodeid().to_string()).or_default().apply(&change);
        self.unsaved.push(change);
    }

    pub fn set_last_run(&mut self, run: LastRun) {
        self.last_run = Some(run);
    }

    /// Merges this run into the file under the directory lock: re-read
    /// what is there now (another run may have saved since we loaded),
    /// replay what we recorded since our last save onto it, forget stale
    /// tests (`file.rs`), and write it atomically. A file that cannot be
    /// read now is replaced by what this store knows. The tests this run
    /// recorded are then brought up to date with the file.
    pub fn save(&mut self) -> std::io::Result<()> {
        let dir = self.path.parent().expect("history path has a parent");
        let _lock = DirLock::exclusive(dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# Created by rpytest.\n*\n")?;
        }
        let bytes = file::read(&self.path).ok().flatten();
        let (mut file, replay) = match bytes.as_deref().map(|bytes| file::parse(bytes, &self.path)) {
            Some(Ok(on_disk)) => (on_disk, true),
            // What the store holds has this run's changes in it already.
            _ => (HistoryFile::new(self.runs, self.tests()), false),
        };
        let run = *self.run.get_or_insert(file.runs + 1);
        file.merge(&self.unsaved, replay, run, unix_now());
        file.last_run = self.last_run.clone();
        atomic_file::write_with(&self.path, |out| Ok(serde_json::to_writer(out, &file)?))?;
        self.runs = file.runs;
        // Tests this run changed now include what other runs recorded of
        // them; a store of the whole file takes every test.
        for (nodeid, entry) in file.tests.0 {
            let changed = matches!(entry, file::Entry::Parsed(_)) && self.tests.contains_key(nodeid.as_ref());
            if self.holds_all || changed {
                if let Ok(test) = entry.parsed() {
                    self.tests.insert(nodeid.into_owned(), test);
                }
            }
        }
        self.unsaved.clear();
        Ok(())
    }
}

/// The whole history, sorted by node id, and the warning if it cannot be
/// trusted: what `--inventory-status` shows, without a store to write it.
pub fn snapshot(path: &Path) -> (Vec<(String, TestHistory)>, Option<LastRun>, Option<String>) {
    let mut tests = Vec::new();
    let read = read_entries(path, |_| true, |id, test| tests.push((id, test)));
    (tests, read.last_run, read.warning)
}

/// What `read_entries` found besides the tests.
struct Read {
    runs: u64,
    last_run: Option<LastRun>,
    warning: Option<String>,
}

/// Reads the file and gives `keep` each `wanted` test, parsed, in node id
/// order; a missing file has none, a corrupt file or entry is the warning.
fn read_entries(path: &Path, wanted: impl Fn(&str) -> bool, mut keep: impl FnMut(String, TestHistory)) -> Read {
    let mut read = Read { runs: 0, last_run: None, warning: None };
    let bytes = file::read(path).unwrap_or_else(|problem| {
        read.warning = Some(problem);
        None
    });
    match bytes.as_deref().map(|bytes| file::parse(bytes, path)) {
        Some(Ok(on_disk)) => {
            (read.runs, read.last_run) = (on_disk.runs, on_disk.last_run);
            for (id, entry) in on_disk.tests.0.into_iter().filter(|(id, _)| wanted(id)) {
                match entry.parsed() {
                    Ok(test) => keep(id.into_owned(), test),
                    Err(e) => {
                        let problem =
                            || format!("{}: the entry of {id} is corrupt ({e}); it will be rebuilt", path.display());
                        read.warning.get_or_insert_with(problem);
                    }
                }
            }
        }
        Some(Err(problem)) => read.warning = Some(problem),
        None => {}
    }
    read
}

/// Unix time now, in whole seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
