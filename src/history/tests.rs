//! The store's unit tests: merging, corrupt files, sanitising.

use super::*;

/// A history file holding `tests` (node id, duration), saved by one run.
fn seeded(tests: &[(&str, f64)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = HistoryStore::path_for(dir.path());
    let (mut seed, _) = HistoryStore::open(path.clone());
    for (id, duration) in tests {
        seed.record(id, Some(*duration), "passed", None);
    }
    seed.save().unwrap();
    (dir, path)
}

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
    let (_dir, path) = seeded(&[("t::shared", 1.0)]);
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

#[test]
fn a_run_holds_only_its_tests_and_its_save_keeps_the_rest() {
    let (_dir, path) = seeded(&[("t::a", 1.0), ("t::b", 2.0)]);
    let ids: HashSet<&str> = ["t::a", "t::new"].into_iter().collect();
    let (mut run, warning) = HistoryStore::open_for(path.clone(), &ids);
    assert!(warning.is_none());
    assert_eq!((run.get("t::a").map(|t| t.durations), run.get("t::b")), (Some(vec![1.0]), None));
    run.record("t::new", Some(3.0), "failed", None);
    run.save().unwrap();
    assert!(run.get("t::b").is_none(), "a save does not load what the run does not need");
    let (all, _) = HistoryStore::open(path);
    let known: Vec<_> = all.tests().into_iter().map(|(id, t)| (id, t.seen_run)).collect();
    let expected = [("t::a", Some(1)), ("t::b", Some(1)), ("t::new", Some(2))];
    assert_eq!(known, expected.map(|(id, run)| (id.to_string(), run)));
}

#[test]
fn a_corrupt_entry_is_reported_when_needed_and_rebuilt_by_the_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = HistoryStore::path_for(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = r#"{"format": 1, "tests": {"t::bad": 5, "t::other_bad": [],
                   "t::ok": {"durations": [1.0], "last_outcome": "passed"}}}"#;
    std::fs::write(&path, text).unwrap();
    let ids: HashSet<&str> = ["t::bad", "t::ok"].into_iter().collect();
    let (mut run, warning) = HistoryStore::open_for(path.clone(), &ids);
    assert!(warning.unwrap().contains("the entry of t::bad is corrupt"));
    assert_eq!(run.view().expected("t::ok"), Some(1.0));
    run.record("t::bad", Some(2.0), "passed", None);
    run.save().unwrap();
    let (all, warning) = HistoryStore::open(path);
    assert!(warning.is_none());
    let known: Vec<_> = all.tests().into_iter().map(|(id, t)| (id, t.durations)).collect();
    assert_eq!(known, [("t::bad".to_string(), vec![2.0]), ("t::ok".to_string(), vec![1.0])]);
}

/// The history sink, fed the run's events: it learns from `Observed` only,
/// and its flush writes both files and says where the durations went.
#[test]
fn the_recorder_learns_from_observed_events_and_flush_saves_both_files() {
    use crate::report::events::{EventSink, Observe, RunEvent};
    use recorder::{Recorder, Saved};

    let dir = tempfile::tempdir().unwrap();
    let path = HistoryStore::path_for(dir.path());
    let durations = dir.path().join(".test_durations");
    let mut recorder = Recorder::new(HistoryStore::open(path.clone()).0, Some(durations.clone()));
    assert_eq!(recorder.save_if_dirty(), None, "nothing learnt, nothing saved");
    assert!(!path.exists());
    let observed = |nodeid: &str, duration, flaky| Observe {
        nodeid: nodeid.into(),
        duration,
        outcome: "passed".into(),
        peak_rss_kb: Some(2048),
        flaky,
    };
    recorder.event(RunEvent::Observed(Arc::new(observed("t::a", Some(1.5), true))));
    recorder.event(RunEvent::Observed(Arc::new(observed("t::crashed", None, false))));
    recorder.event(RunEvent::diagnostic("not for the history"));
    assert_eq!(recorder.save_if_dirty(), None);
    assert_eq!(HistoryStore::open(path.clone()).0.get("t::a").unwrap().durations, vec![1.5]);
    let run = LastRun { finished_at: 1, tests: 2, workers: 1, wall: 2.0 };
    let saved = recorder.flush(Some(run));
    let note = format!("Stored test durations in {}", durations.display());
    assert_eq!(saved, Saved { note: Some(note), warnings: Vec::new() });
    let (store, _) = HistoryStore::open(path);
    let a = store.get("t::a").unwrap();
    assert_eq!((a.peak_rss_kb, a.flaky, store.last_run().map(|r| r.tests)), (Some(2048), 1, Some(2)));
    let written = crate::history::durations_file::read(&durations).unwrap();
    assert_eq!(written.len(), 1, "a crash has no duration to store: {written:?}");
}
