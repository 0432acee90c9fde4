//! The history file on disk: reading it cheaply, merging a run into it, and
//! forgetting tests that are gone.
//!
//! A big suite's history is tens of megabytes of JSON, re-read under the
//! lock and rewritten by every save (every few seconds of a long run). What
//! cost time there was building maps of every test (a BTreeMap of owned
//! keys, a DashMap, a sorted copy) and converting every float both ways.
//! So the file is read into a flat list, sorted by node id, of borrowed
//! slices of its bytes: each test's JSON is parsed only when a run needs
//! it (a test it collected, one it changes), binary search finds the few
//! tests a save changes, and the untouched ones are written back verbatim.
//! A run keeps in memory only the tests it collected.
//!
//! Without pruning the file would grow forever: tests renamed or deleted
//! stay. Each save counts one more run (`runs`, once per run) and stamps
//! the tests it recorded with that number and the time (`seen_run`,
//! `seen_at`). A test is dropped when it was not recorded in the last
//! `STALE_RUNS` runs of this rootdir *and* not for `STALE_DAYS` days: both,
//! so a rarely run subset (a nightly `-m slow`) keeps its durations, and a
//! burst of runs of one file does not erase the rest of the suite. A test
//! dropped by mistake costs little: it is scheduled as unknown once and
//! learnt again. Entries written before these stamps existed get them at
//! their first save, which starts their clock. An entry that is not a
//! test's history (a hand edit) is reported when a run needs it and
//! dropped by the next save: the run rebuilds it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Change, LastRun, TestHistory};

/// The version of the layout; newer fields are optional, so files with or
/// without the pruning stamps read the same.
pub const FORMAT: u32 = 1;
/// A test not recorded in this many runs of the rootdir (and for
/// `STALE_DAYS`) is forgotten.
pub const STALE_RUNS: u64 = 50;
/// A test not recorded for this many days (and in `STALE_RUNS` runs) is
/// forgotten.
pub const STALE_DAYS: u64 = 30;

/// The file's contents; node ids borrow from the bytes read.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryFile<'a> {
    pub format: u32,
    /// Runs that have saved into this file.
    #[serde(default)]
    pub runs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    #[serde(borrow)]
    pub tests: Entries<'a>,
}

/// The tests, sorted by node id: a JSON object read into a list, without
/// building a map of them.
#[derive(Debug, Default)]
pub struct Entries<'a>(pub Vec<(Cow<'a, str>, Entry<'a>)>);

/// One test's history: its JSON as read, or as this run changed it.
#[derive(Debug)]
pub enum Entry<'a> {
    Raw(&'a RawValue),
    Parsed(Box<TestHistory>),
}

/// What pruning reads of an entry it does not otherwise parse.
#[derive(Deserialize)]
struct Stamps {
    seen_run: Option<u64>,
    seen_at: Option<u64>,
}

impl Entry<'_> {
    /// The test's history; durations that could mislead the schedule are dropped.
    pub fn parsed(&self) -> Result<TestHistory, serde_json::Error> {
        let mut test = match self {
            Entry::Raw(raw) => serde_json::from_str::<TestHistory>(raw.get())?,
            Entry::Parsed(test) => (**test).clone(),
        };
        test.durations.retain(|d| d.is_finite() && *d >= 0.0);
        Ok(test)
    }

    /// The history to change (an entry that does not parse starts afresh).
    fn to_mut(&mut self) -> &mut TestHistory {
        if let Entry::Raw(_) = self {
            *self = Entry::Parsed(Box::new(self.parsed().unwrap_or_default()));
        }
        match self {
            Entry::Parsed(test) => test,
            Entry::Raw(_) => unreachable!("made Parsed above"),
        }
    }

    /// (run, time) last recorded; `None` when the entry is not a test's history.
    fn stamps(&self) -> Option<(Option<u64>, Option<u64>)> {
        match self {
            Entry::Raw(raw) => serde_json::from_str::<Stamps>(raw.get()).ok().map(|s| (s.seen_run, s.seen_at)),
            Entry::Parsed(test) => Some((test.seen_run, test.seen_at)),
        }
    }
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Raw(raw) => raw.serialize(serializer),
            Entry::Parsed(test) => test.serialize(serializer),
        }
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(id, entry)| (id, entry)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of node id: test history")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Entries<'a>, M::Error> {
                let mut tests = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((id, raw)) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    tests.push((id, Entry::Raw(raw)));
                }
                Ok(Entries(tests))
            }
        }
        let mut entries = deserializer.deserialize_map(Visit(std::marker::PhantomData))?;
        // Written sorted; a file edited by hand is sorted once here.
        if !entries.0.is_sorted_by(|a, b| a.0 < b.0) {
            entries.0.sort_by(|a, b| a.0.cmp(&b.0));
            entries.0.dedup_by(|later, first| later.0 == first.0);
        }
        Ok(entries)
    }
}

/// The file's bytes; `Ok(None)` when there is none, `Err` with the warning
/// to show when it cannot be read.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}; starting a new history", path.display())),
        Ok(bytes) => Ok(Some(bytes)),
    }
}

/// Parses what `read` returned; `Err` with the warning to show when the
/// contents cannot be trusted.
pub fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<HistoryFile<'a>, String> {
    match serde_json::from_slice::<HistoryFile>(bytes) {
        Ok(file) if file.format == FORMAT => Ok(file),
        Ok(file) => {
            Err(format!("{} has format {} (expected {FORMAT}); starting a new history", path.display(), file.format))
        }
        Err(e) => Err(format!("{} is corrupt ({e}); it will be rebuilt from this run", path.display())),
    }
}

impl<'a> HistoryFile<'a> {
    pub fn new(runs: u64, tests: Vec<(String, TestHistory)>) -> Self {
        let tests = tests.into_iter().map(|(id, test)| (Cow::Owned(id), Entry::Parsed(Box::new(test))));
        HistoryFile { format: FORMAT, runs, last_run: None, tests: Entries(tests.collect()) }
    }

    /// Replays `changes` (this run's, numbered `run`, at unix time `now`)
    /// onto the file (only stamps their tests when `replay` is false: the
    /// entries have them already), stamps every test that has no stamp yet,
    /// and drops the stale ones.
    pub fn merge(&mut self, changes: &[Change], replay: bool, run: u64, now: u64) {
        self.runs = self.runs.max(run);
        let tests = &mut self.tests.0;
        let mut added: BTreeMap<&str, TestHistory> = BTreeMap::new();
        for change in changes {
            let id = change.nodeid();
            let test = match tests.binary_search_by(|(k, _)| k.as_ref().cmp(id)) {
                Ok(i) => tests[i].1.to_mut(),
                Err(_) => added.entry(id).or_default(),
            };
            if replay {
                test.apply(change);
            }
            (test.seen_run, test.seen_at) = (Some(run), Some(now));
        }
        if !added.is_empty() {
            let added = added.into_iter().map(|(id, test)| (Cow::Owned(id.to_string()), Entry::Parsed(Box::new(test))));
            tests.extend(added);
            tests.sort_by(|a, b| a.0.cmp(&b.0)); // two sorted runs: a linear merge
        }
        let runs = self.runs;
        tests.retain_mut(|(_, entry)| match entry.stamps() {
            Some((Some(seen_run), Some(seen_at))) => {
                runs.saturating_sub(seen_run) < STALE_RUNS || now.saturating_sub(seen_at) < STALE_DAYS * 86_400
            }
            Some(_) => {
                let test = entry.to_mut();
                test.seen_run.get_or_insert(run);
                test.seen_at.get_or_insert(now);
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(nodeid: &str) -> Change {
        Change::Ran { nodeid: nodeid.to_string(), duration: Some(1.0), outcome: "passed".into(), peak_rss_kb: None }
    }

    fn ids(file: &HistoryFile) -> Vec<String> {
        file.tests.0.iter().map(|(id, _)| id.to_string()).collect()
    }

    const DAY: u64 = 86_400;

    #[test]
    fn stale_means_both_many_runs_and_many_days_ago() {
        let text = format!(
            r#"{{"format": 1, "runs": 100, "tests": {{
                "gone": {{"durations": [1], "last_outcome": "passed", "seen_run": 50, "seen_at": 0}},
                "recent_run": {{"durations": [1], "last_outcome": "passed", "seen_run": 51, "seen_at": 0}},
                "recent_day": {{"durations": [1], "last_outcome": "passed", "seen_run": 1, "seen_at": {}}},
                "unstamped": {{"durations": [1], "last_outcome": "passed"}}}}}}"#,
            100 * DAY - STALE_DAYS * DAY + 1
        );
        let mut file = parse(text.as_bytes(), Path::new("h")).unwrap();
        file.merge(&[ran("new")], true, 100, 100 * DAY);
        assert_eq!(ids(&file), ["new", "recent_day", "recent_run", "unstamped"]);
        let unstamped = file.tests.0[3].1.parsed().unwrap();
        assert_eq!((unstamped.seen_run, unstamped.seen_at), (Some(100), Some(100 * DAY)), "its clock starts now");
    }

    #[test]
    fn a_hand_edited_file_is_sorted_and_changes_find_their_test() {
        let text = r#"{"format": 1, "tests": {"b": {"durations": [2], "last_outcome": "failed"},
                       "a": {"durations": [1], "last_outcome": "passed"}}}"#;
        let mut file = parse(text.as_bytes(), Path::new("h")).unwrap();
        file.merge(&[ran("b"), ran("c")], true, 1, DAY);
        assert_eq!(ids(&file), ["a", "b", "c"]);
        assert_eq!(file.tests.0[1].1.parsed().unwrap().durations, vec![2.0, 1.0]);
        assert_eq!(file.runs, 1);
    }
}
