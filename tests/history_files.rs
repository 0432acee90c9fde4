//! The duration history (`<rootdir>/.rpytest/history.json`, see
//! src/history/mod.rs) is never left corrupt, and a corrupt one never changes
//! outcomes: it is reported and rebuilt (DESIGN.md invariant 4). Runs that
//! overlap in the same rootdir must not tear it either.

mod common;
use common::*;

fn suite() -> Suite {
    Suite::new(&[(
        "test_h.py",
        r#"
        import time
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_p(i):
            time.sleep(0.01 * i)
            assert i != 4

        def test_skip():
            pytest.skip("s")
        "#,
    )])
}

fn history_path(suite: &Suite) -> std::path::PathBuf {
    suite.join(".rpytest/history.json")
}

fn read_history(suite: &Suite) -> serde_json::Value {
    let p = history_path(suite);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("no history at {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("history is not valid JSON ({e}):\n{text}"))
}

/// Every file in `.rpytest/` other than history.json / .gitignore is a stray
/// temp file from a non-atomic or interrupted write.
fn stray_files(suite: &Suite) -> Vec<String> {
    std::fs::read_dir(suite.join(".rpytest"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "history.json" && n != ".gitignore" && !n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn history_is_valid_json_naming_every_test_after_a_run() {
    let suite = suite();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    let h = read_history(&suite);
    let text = h.to_string();
    for i in 0..6 {
        assert!(text.contains(&format!("test_h.py::test_p[{i}]")), "test_p[{i}] missing from history: {text}");
    }
    assert!(stray_files(&suite).is_empty(), "stray files: {:?}", stray_files(&suite));
}

#[test]
fn corrupt_history_is_reported_rebuilt_and_changes_no_outcome() {
    let suite = suite();
    std::fs::create_dir_all(suite.join(".rpytest")).unwrap();
    std::fs::write(history_path(&suite), b"{\"format\": 1, \"tests\": {\"trunc").unwrap();
    let pair = assert_same(&suite, &[], "2");
    check(
        &pair,
        pair.rpytest.stderr.contains("history") || pair.rpytest.stdout.contains("history"),
        "a corrupt history file should be reported",
    );
    read_history(&suite);
}

#[test]
fn binary_garbage_history_is_rebuilt() {
    let suite = suite();
    std::fs::create_dir_all(suite.join(".rpytest")).unwrap();
    std::fs::write(history_path(&suite), [0xffu8, 0x00, 0xfe, 0x13, 0x37]).unwrap();
    assert_same(&suite, &[], "2");
    read_history(&suite);
}

#[test]
fn second_run_with_history_gives_same_outcomes() {
    let suite = suite();
    let first = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&first);
    assert_same(&suite, &[], "2");
}

#[test]
fn overlapping_runs_in_one_rootdir_keep_history_valid() {
    let suite = suite();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let dir = suite.path().to_path_buf();
            let py = python();
            std::thread::spawn(move || {
                let args: Vec<String> =
                    ["--python", py.to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                run_command(&rpytest_bin(), &args, &dir, &[])
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_clean_exit(&r);
        assert_eq!(r.code, 1, "{}", r.dump());
        assert_eq!(r.final_line.as_deref(), Some("1 failed, 5 passed, 1 skipped"), "{}", r.dump());
    }
    read_history(&suite);
    assert!(stray_files(&suite).is_empty(), "stray files: {:?}", stray_files(&suite));
}

#[test]
fn a_killed_run_keeps_a_valid_history_of_what_finished() {
    let suite = Suite::new(&[(
        "test_k.py",
        r#"
        import time
        import pytest

        @pytest.mark.parametrize("i", range(5))
        def test_quick(i):
            pass

        def test_zz_hangs():
            time.sleep(60)
        "#,
    )]);
    let py = python();
    let args: Vec<String> = ["--python", py.to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Killed (SIGKILL) after 8 s: the history is saved every 5 s while running.
    let r = run_command_timeout(&rpytest_bin(), &args, suite.path(), &[], std::time::Duration::from_secs(8));
    assert!(r.timed_out, "the run should have been killed\n{}", r.dump());
    let text = read_history(&suite).to_string();
    for i in 0..5 {
        assert!(text.contains(&format!("test_k.py::test_quick[{i}]")), "test_quick[{i}] missing: {text}");
    }
    assert!(stray_files(&suite).is_empty(), "stray files: {:?}", stray_files(&suite));
}

/// Two runs of different tests at the same time in one project.
fn two_concurrent_runs(suite: &Suite, extra: &[&str]) -> (RunResult, RunResult) {
    let start = |file: &str| {
        let dir = suite.path().to_path_buf();
        let py = python();
        let mut args: Vec<String> =
            ["--python", py.to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(file.to_string());
        std::thread::spawn(move || run_command(&rpytest_bin(), &args, &dir, &[]))
    };
    let (a, b) = (start("test_a.py"), start("test_b.py"));
    (a.join().unwrap(), b.join().unwrap())
}

/// Each file takes about 2 s on 2 workers, so both runs load the history
/// (and the durations file) before either writes it back.
fn two_file_suite() -> Suite {
    let body = r#"
        import time
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_t(i):
            time.sleep(1.0)
        "#;
    Suite::new(&[("test_a.py", body), ("test_b.py", body)])
}

#[test]
fn concurrent_runs_of_different_tests_both_stay_in_the_history() {
    let suite = two_file_suite();
    let (a, b) = two_concurrent_runs(&suite, &["--store-durations"]);
    for r in [&a, &b] {
        assert_clean_exit(r);
        assert_eq!(r.code, 0, "{}", r.dump());
    }
    let history = read_history(&suite);
    let durations: std::collections::BTreeMap<String, f64> =
        serde_json::from_str(&std::fs::read_to_string(suite.join(".test_durations")).unwrap()).unwrap();
    for file in ["test_a.py", "test_b.py"] {
        for i in 0..4 {
            let id = format!("{file}::test_t[{i}]");
            assert!(
                history["tests"].get(&id).is_some(),
                "{id} lost from the history: {history}\n{}{}",
                a.dump(),
                b.dump()
            );
            assert!(durations.contains_key(&id), "{id} lost from .test_durations: {durations:?}");
        }
    }
    assert!(stray_files(&suite).is_empty(), "stray files: {:?}", stray_files(&suite));
}

/// A history entry as rpytest writes it, last recorded by run `seen_run`
/// at unix time `seen_at`.
fn entry(seen_run: u64, seen_at: u64) -> serde_json::Value {
    serde_json::json!({"durations": [0.5], "last_outcome": "passed", "seen_run": seen_run, "seen_at": seen_at})
}

#[test]
fn tests_gone_for_many_runs_and_days_are_pruned_and_live_ones_stay() {
    let suite = Suite::new(&[("test_live.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n")]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let long_ago = now - 90 * 86_400;
    // 200 runs of this rootdir so far; test_live.py's tests ran in the last
    // one, test_removed.py's 150 runs and 90 days ago (deleted since).
    let mut tests = serde_json::Map::new();
    for i in 0..500 {
        tests.insert(format!("test_removed.py::test_old[{i}]"), entry(50, long_ago));
    }
    // Not stale on one count alone: recorded recently, or a few runs ago.
    tests.insert("test_removed.py::test_recent_day".into(), entry(50, now - 86_400));
    tests.insert("test_removed.py::test_recent_run".into(), entry(190, long_ago));
    for id in ["test_live.py::test_a", "test_live.py::test_b"] {
        tests.insert(id.into(), entry(200, now));
    }
    let history = serde_json::json!({"format": 1, "runs": 200, "tests": tests});
    std::fs::create_dir_all(suite.join(".rpytest")).unwrap();
    std::fs::write(history_path(&suite), history.to_string()).unwrap();

    let pair = assert_same(&suite, &[], "2");
    assert_eq!(pair.rpytest.code, 0, "{}", pair.dump());
    let after = read_history(&suite);
    let kept: Vec<&String> = after["tests"].as_object().unwrap().keys().collect();
    assert_eq!(
        kept,
        [
            "test_live.py::test_a",
            "test_live.py::test_b",
            "test_removed.py::test_recent_day",
            "test_removed.py::test_recent_run"
        ],
        "{}",
        pair.dump()
    );
    assert_eq!(after["tests"]["test_live.py::test_a"]["durations"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(after["runs"], 201, "{after}");
}
