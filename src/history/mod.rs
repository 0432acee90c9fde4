//! The record of past runs: per test, its recent durations (setup + call +
//! teardown), last outcome and the peak memory of the worker that ran it;
//! and a line about the last run.
//!
//! Stored as JSON at `<rootdir>/.rpytest/history.json`, written to a temp
//! file and renamed, so a killed run never leaves it half-written. Runs
//! that overlap in one rootdir merge instead of overwriting each other: a
//! save takes a lock on `.rpytest/` (`dir_lock.rs`), re-reads the file, and
//! applies only what this run recorded since its last save. A file
//! that cannot be read is reported and rebuilt, never trusted: a schedule
//! from garbage is worse than no schedule. Durations that are not finite
//! and non-negative are dropped on load for the same reason.
//!
//! The tests live in a `DashMap` behind an `Arc`: the History actor is the
//! only writer (it owns the `HistoryStore`), and anyone may read cheaply
//! through a `HistoryView` without a round trip to the actor.

pub mod atomic_file;
pub mod dir_lock;
pub mod inventory_status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::history::dir_lock::DirLock;

/// Durations kept per test; the schedule uses their mean.
const KEEP: usize = 5;
const FORMAT: u32 = 1;

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

#[derive(Debug, Serialize, Deserialize)]
struct HistoryFile {
    format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_run: Option<LastRun>,
    tests: BTreeMap<String, TestHistory>,
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
    last_run: Option<LastRun>,
    /// Recorded since the last save, in order.
    unsaved: Vec<Change>,
}

impl HistoryStore {
    pub fn path_for(rootdir: &Path) -> PathBuf {
        rootdir.join(".rpytest").join("history.json")
    }

    /// Loads the history; a missing file is empty, a corrupt one is reported
    /// (the returned warning) and starts empty.
    pub fn open(path: PathBuf) -> (HistoryStore, Option<String>) {
        let (file, warning) = match load(&path) {
            Ok(file) => (file, None),
            Err(warning) => (None, Some(warning)),
        };
        let (tests, last_run) = file.map_or_else(Default::default, |f| (f.tests, f.last_run));
        let tests: DashMap<String, TestHistory> = tests.into_iter().map(sanitized).collect();
        (HistoryStore { path, tests: Arc::new(tests), last_run, unsaved: Vec::new() }, warning)
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

    /// Every test with what is known of it, sorted by node id.
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
    /// replay what we recorded since our last save onto it, and write it
    /// atomically (temp file in the same directory, then rename). A file
    /// that cannot be read now is replaced by what this store knows. The
    /// store then holds the merged history.
    pub fn save(&mut self) -> std::io::Result<()> {
        let dir = self.path.parent().expect("history path has a parent");
        let _lock = DirLock::exclusive(dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# Created by rpytest.\n*\n")?;
        }
        let tests = match load(&self.path) {
            Ok(Some(on_disk)) => merged(on_disk.tests, &self.unsaved),
            _ => self.tests().into_iter().collect(),
        };
        let file = HistoryFile { format: FORMAT, last_run: self.last_run.clone(), tests };
        // One write: serializing straight into the file is a syscall per token.
        atomic_file::write(&self.path, &serde_json::to_vec(&file)?)?;
        for (nodeid, test) in file.tests {
            self.tests.insert(nodeid, test);
        }
        self.unsaved.clear();
        Ok(())
    }
}

/// What another run saved, with this run's changes replayed on top.
fn merged(on_disk: BTreeMap<String, TestHistory>, changes: &[Change]) -> BTreeMap<String, TestHistory> {
    let mut tests: BTreeMap<String, TestHistory> = on_disk.into_iter().map(sanitized).collect();
    for change in changes {
        tests.entry(change.nodeid().to_string()).or_default().apply(change);
    }
    tests
}

/// The file's contents; `Ok(None)` when there is none, `Err` with the warning
/// to show when it cannot be trusted.
fn load(path: &Path) -> Result<Option<HistoryFile>, String> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}; starting a new history", path.display())),
        Ok(bytes) => bytes,
    };
    match serde_json::from_slice::<HistoryFile>(&bytes) {
        Ok(file) if file.format == FORMAT => Ok(Some(file)),
        Ok(file) => {
            Err(format!("{} has format {} (expected {FORMAT}); starting a new history", path.display(), file.format))
        }
        Err(e) => Err(format!("{} is corrupt ({e}); it will be rebuilt from this run", path.display())),
    }
}

fn sanitized((nodeid, mut test): (String, TestHistory)) -> (String, TestHistory) {
    test.durations.retain(|d| d.is_finite() && *d >= 0.0);
    (nodeid, test)
}

/// Unix time now, in whole seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_recent_durations() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        let (mut store, warning) = HistoryStore::open(path.clone());
        assert!(warning.is_none());
        for d in 1..=7 {
            store.record("t::a", Some(d as f64), "passed", Some(1000 + d));
        }
        store.set_last_run(LastRun { finished_at: 1, tests: 1, workers: 2, wall: 3.5 });
        store.save().unwrap();
        let (store, _) = HistoryStore::open(path);
        let a = store.get("t::a").unwrap();
        assert_eq!(a.durations, vec![3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(a.peak_rss_kb, Some(1007));
        assert_eq!(store.view().expected("t::a"), Some(5.0));
        assert_eq!(store.last_run().unwrap().wall, 3.5);
    }

    #[test]
    fn overlapping_runs_merge_instead_of_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        let (mut seed, _) = HistoryStore::open(path.clone());
        seed.record("t::shared", Some(1.0), "passed", None);
        seed.save().unwrap();
        // Both runs load the same file before either saves.
        let (mut first, _) = HistoryStore::open(path.clone());
        let (mut second, _) = HistoryStore::open(path.clone());
        first.record("t::a", Some(2.0), "passed", None);
        first.record("t::shared", Some(3.0), "failed", None);
        second.record("t::b", Some(4.0), "passed", None);
        second.record("t::shared", Some(5.0), "passed", None);
        second.count_flaky("t::shared");
        first.save().unwrap();
        second.save().unwrap();
        // A second save replays nothing twice.
        second.save().unwrap();
        let (merged, _) = HistoryStore::open(path);
        assert_eq!(merged.get("t::a").unwrap().durations, vec![2.0]);
        assert_eq!(merged.get("t::b").unwrap().durations, vec![4.0]);
        let shared = merged.get("t::shared").unwrap();
        assert_eq!(
            (shared.durations.clone(), shared.last_outcome.as_str(), shared.flaky),
            (vec![1.0, 3.0, 5.0], "passed", 1)
        );
        assert_eq!(second.view().expected("t::a"), Some(2.0), "a save brings the other run's tests in");
    }

    #[test]
    fn a_view_sees_what_the_writer_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = HistoryStore::open(HistoryStore::path_for(dir.path()));
        let view = store.view();
        assert_eq!(view.expected("t::x"), None);
        store.record("t::x", Some(2.0), "passed", None);
        assert_eq!(view.expected("t::x"), Some(2.0));
    }

    #[test]
    fn corrupt_files_are_reported_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let (mut store, warning) = HistoryStore::open(path.clone());
        assert!(warning.unwrap().contains("corrupt"));
        store.record("t::b", Some(0.5), "failed", None);
        store.record("t::b", None, "failed", None);
        store.save().unwrap();
        assert!(HistoryStore::open(path).1.is_none());
    }

    #[test]
    fn garbage_durations_never_reach_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = r#"{"format": 1, "tests": {"t::neg": {"durations": [-5.0], "last_outcome": "passed"},
                       "t::ok": {"durations": [-1.0, 2.0], "last_outcome": "passed"}}}"#;
        std::fs::write(&path, text).unwrap();
        let (store, warning) = HistoryStore::open(path);
        assert!(warning.is_none());
        assert_eq!(store.view().expected("t::neg"), None);
        assert_eq!(store.view().expected("t::ok"), Some(2.0));
    }

    #[test]
    fn files_from_before_memory_and_last_run_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{"format": 1, "tests": {"t::a": {"durations": [1.0], "last_outcome": "passed"}}}"#)
            .unwrap();
        let (store, warning) = HistoryStore::open(path);
        assert!(warning.is_none() && store.last_run().is_none());
        assert_eq!(store.view().expected("t::a"), Some(1.0));
    }
}
