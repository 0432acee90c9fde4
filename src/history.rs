//! The record of past runs: per test, its recent durations and last outcome.
//!
//! Stored as JSON at `<rootdir>/.rpytest/history.json`, written to a temp
//! file and renamed, so a killed run never leaves it half-written. A file
//! that cannot be read is reported and rebuilt, never trusted: a schedule
//! from garbage is worse than no schedule.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Durations kept per test; the schedule uses their mean.
const KEEP: usize = 5;
const FORMAT: u32 = 1;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestHistory {
    pub durations: Vec<f64>,
    pub last_outcome: String,
}

impl TestHistory {
    pub fn expected(&self) -> Option<f64> {
        (!self.durations.is_empty()).then(|| self.durations.iter().sum::<f64>() / self.durations.len() as f64)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HistoryFile {
    format: u32,
    tests: HashMap<String, TestHistory>,
}

#[derive(Debug)]
pub struct HistoryStore {
    path: PathBuf,
    tests: HashMap<String, TestHistory>,
}

impl HistoryStore {
    pub fn path_for(rootdir: &Path) -> PathBuf {
        rootdir.join(".rpytest").join("history.json")
    }

    /// Loads the history; a missing file is empty, a corrupt one is reported
    /// (the returned warning) and starts empty.
    pub fn open(path: PathBuf) -> (HistoryStore, Option<String>) {
        let (tests, warning) = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (HashMap::new(), None),
            Err(e) => (HashMap::new(), Some(format!("cannot read {}: {e}; starting a new history", path.display()))),
            Ok(bytes) => match serde_json::from_slice::<HistoryFile>(&bytes) {
                Ok(file) if file.format == FORMAT => (file.tests, None),
                Ok(file) => (HashMap::new(), Some(format!(
                    "{} has format {} (expected {FORMAT}); starting a new history", path.display(), file.format))),
                Err(e) => (HashMap::new(), Some(format!(
                    "{} is corrupt ({e}); it will be rebuilt from this run", path.display()))),
            },
        };
        (HistoryStore { path, tests }, warning)
    }

    pub fn expected(&self, nodeid: &str) -> Option<f64> {
        self.tests.get(nodeid).and_then(TestHistory::expected)
    }

    #[cfg(test)]
    pub fn get(&self, nodeid: &str) -> Option<&TestHistory> {
        self.tests.get(nodeid)
    }

    pub fn record(&mut self, nodeid: &str, duration: f64, outcome: &str) {
        let entry = self.tests.entry(nodeid.to_string()).or_default();
        entry.durations.push(duration);
        if entry.durations.len() > KEEP {
            entry.durations.remove(0);
        }
        entry.last_outcome = outcome.to_string();
    }

    /// Atomic write: temp file in the same directory, then rename.
    pub fn save(&self) -> std::io::Result<()> {
        let dir = self.path.parent().expect("history path has a parent");
        std::fs::create_dir_all(dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# Created by rpytest.\n*\n")?;
        }
        let file = HistoryFile { format: FORMAT, tests: self.tests.clone() };
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, &file)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
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
            store.record("t::a", d as f64, "passed");
        }
        store.save().unwrap();
        let (store, _) = HistoryStore::open(path);
        assert_eq!(store.get("t::a").unwrap().durations, vec![3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(store.expected("t::a"), Some(5.0));
    }

    #[test]
    fn corrupt_files_are_reported_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = HistoryStore::path_for(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let (mut store, warning) = HistoryStore::open(path.clone());
        assert!(warning.unwrap().contains("corrupt"));
        store.record("t::b", 0.5, "failed");
        store.save().unwrap();
        assert!(HistoryStore::open(path).1.is_none());
    }
}
