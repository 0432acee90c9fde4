//! Order safety (issue 16): the history decides which worker runs a test,
//! never that a test runs before one it follows under pytest. Each worker
//! runs its share in collection order, so a suite with a hidden order
//! dependency passes as it does under pytest and pytest-xdist, on every run,
//! with history. `--test-order longest` is the explicit opt-out.

mod common;
use common::*;

/// The suite: a module-level cache that two slow tests, collected
/// last, pollute, and that twenty fast tests, collected first, read.
fn polluted_cache_suite() -> Suite {
    let mut files = vec![("tests/state.py", "CACHE = {}\n".to_string())];
    let readers: String =
        (0..20).map(|i| format!("\ndef test_reader_{i}():\n    assert \"polluted\" not in state.CACHE\n")).collect();
    files.push(("tests/test_a_readers.py", format!("import state\n{readers}")));
    let polluters: String = (0..2)
        .map(|i| format!("\ndef test_polluter_{i}():\n    time.sleep(0.3)\n    state.CACHE[\"polluted\"] = True\n"))
        .collect();
    files.push(("tests/test_z_polluters.py", format!("import time\n\nimport state\n{polluters}")));
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    Suite::new(&files)
}

#[test]
fn a_hidden_order_dependency_passes_on_every_run_with_history() {
    for workers in ["2", "4"] {
        let suite = polluted_cache_suite();
        let plain = run_pytest(&suite, &[]);
        assert_eq!(plain.counts().get("passed"), Some(&22), "pytest itself\n{}", plain.dump());
        for run in 0..3 {
            let r = run_rpytest(&suite, &["-n", workers]);
            assert_clean_exit(&r);
            assert_eq!(r.code, 0, "-n {workers}, run {run} (history from the runs before)\n{}", r.dump());
            assert_eq!(r.counts().get("passed"), Some(&22), "-n {workers}, run {run}\n{}", r.dump());
        }
        assert!(suite.join(".rpytest/history.json").is_file(), "the later runs had history");
    }
}

#[test]
fn longest_first_is_an_explicit_choice_that_reorders() {
    let suite = polluted_cache_suite();
    let first = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(first.code, 0, "{}", first.dump());
    // With history, longest first runs each worker's polluter before its readers.
    let r = run_rpytest(&suite, &["-n", "2", "--test-order", "longest"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "the polluters ran first\n{}", r.dump());
    let bad = run_rpytest(&suite, &["-n", "2", "--test-order", "shortest"]);
    assert_eq!(bad.code, 4, "{}", bad.dump());
    assert!(bad.stderr.contains("collection") && bad.stderr.contains("longest"), "{}", bad.dump());
}

/// Per worker (from `-v`'s `[worker K]`), the positions in `order` of the
/// tests it reported, in the order it reported them (the order it ran them).
fn positions_per_worker(r: &RunResult, order: &[String]) -> std::collections::BTreeMap<usize, Vec<usize>> {
    let mut per_worker: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for line in strip_ansi(&r.stdout).lines() {
        if let Some((Some(worker), nodeid, _)) = parse_outcome_line(line) {
            let position = order.iter().position(|id| *id == nodeid).expect("a collected test");
            per_worker.entry(worker).or_default().push(position);
        }
    }
    per_worker
}

/// Every worker reports its tests in collection order (`-v` names the
/// worker of each line; a worker's lines come in the order it ran them).
#[test]
fn every_worker_runs_a_subsequence_of_collection_order() {
    let mut body = String::from("import time\n");
    for i in 0..60 {
        let secs = match i % 13 {
            0 => 0.2,
            5 => 0.05,
            _ => 0.002,
        };
        body.push_str(&format!("\ndef test_{i:02}():\n    time.sleep({secs})\n"));
    }
    let suite = Suite::new(&[("test_seq.py", &body)]);
    let collection: Vec<String> = (0..60).map(|i| format!("test_seq.py::test_{i:02}")).collect();
    for run in 0..2 {
        let r = run_rpytest(&suite, &["-n", "3", "-v"]);
        assert_eq!(r.code, 0, "{}", r.dump());
        let per_worker = positions_per_worker(&r, &collection);
        assert_eq!(per_worker.values().map(Vec::len).sum::<usize>(), 60, "{}", r.dump());
        for (worker, sequence) in &per_worker {
            assert!(sequence.windows(2).all(|p| p[0] < p[1]), "run {run}: worker {worker} ran {sequence:?}");
        }
    }
}

/// `--rerun-isolated`: a failed test is run again alone on a fresh worker;
/// one that passes alone is named order-dependent, with what ran before it.
#[test]
fn rerun_isolated_names_an_order_dependent_failure() {
    let suite = polluted_cache_suite();
    assert_eq!(run_rpytest(&suite, &["-n", "2"]).code, 0);
    // Longest first runs a polluter before the readers on each worker.
    let r = run_rpytest(&suite, &["-n", "2", "--test-order", "longest", "--rerun-isolated"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "the failures stand\n{}", r.dump());
    let failed = r.counts().get("failed").copied().unwrap_or(0);
    assert!(failed > 0, "{}", r.dump());
    assert_eq!(r.counts().get("passed").copied().unwrap_or(0) + failed, 22, "one result per test\n{}", r.dump());
    let notes: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("ORDER-DEPENDENT ")).collect();
    assert_eq!(notes.len() as u64, failed, "{}", r.dump());
    assert!(
        notes.iter().all(|n| n.contains("test_z_polluters.py::test_polluter_") && n.contains("passed alone")),
        "{}",
        r.dump()
    );
    // A test that fails alone too is not called order-dependent.
    suite.write("tests/test_m_broken.py", "def test_broken():\n    assert False\n");
    let r = run_rpytest(&suite, &["-n", "2", "--rerun-isolated"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(!r.stdout.contains("ORDER-DEPENDENT"), "{}", r.dump());
}

/// A plugin that shuffles the collection (as pytest-randomly does, in
/// `pytest_collection_modifyitems`): each worker follows the shuffled order.
#[test]
fn a_shuffled_collection_is_the_order_each_worker_follows() {
    let mut body = String::from("import time\n");
    for i in 0..40 {
        let secs = if i % 9 == 0 { 0.1 } else { 0.002 };
        body.push_str(&format!("\ndef test_{i:02}():\n    time.sleep({secs})\n"));
    }
    let conftest =
        "import random\n\ndef pytest_collection_modifyitems(items):\n    random.Random(1234).shuffle(items)\n";
    let suite = Suite::new(&[("test_shuf.py", &body), ("conftest.py", conftest)]);
    let listed = run_pytest(&suite, &["--collect-only", "-q"]);
    let shuffled: Vec<String> = listed.stdout.lines().filter(|l| l.contains("::")).map(str::to_string).collect();
    assert_eq!(shuffled.len(), 40, "{}", listed.dump());
    assert_ne!(shuffled[0], "test_shuf.py::test_00", "the conftest shuffles");
    for run in 0..2 {
        let r = run_rpytest(&suite, &["-n", "3", "-v"]);
        assert_eq!(r.code, 0, "{}", r.dump());
        let per_worker = positions_per_worker(&r, &shuffled);
        for (worker, sequence) in &per_worker {
            assert!(sequence.windows(2).all(|p| p[0] < p[1]), "run {run}: worker {worker} ran {sequence:?}");
        }
    }
}

/// Work from before what an idle worker ran goes to a fresh worker: one
/// worker is stuck in a test the history says is short, the other runs
/// its share and ends; a new worker (gw2) takes what the stuck one has not
/// started, and every worker's sequence stays increasing.
#[test]
fn work_an_idle_worker_may_not_take_goes_to_a_fresh_worker() {
    let mut body = String::from("import os\nimport time\n");
    for i in 0..8 {
        let secs = if i == 0 { "float(os.environ.get('SLOW', '0.5'))" } else { "0.5" };
        body.push_str(&format!("\ndef test_{i}():\n    time.sleep({secs})\n"));
    }
    let suite = Suite::new(&[("test_f.py", &body)]);
    for _ in 0..2 {
        assert_eq!(run_rpytest(&suite, &["-n", "2"]).code, 0);
    }
    let r = run_rpytest_env(&suite, &["-n", "2", "-v"], &[("SLOW", "3")]);
    assert_clean_exit(&r);
    assert_eq!(r.counts().get("passed"), Some(&8), "{}", r.dump());
    let collection: Vec<String> = (0..8).map(|i| format!("test_f.py::test_{i}")).collect();
    let per_worker = positions_per_worker(&r, &collection);
    assert!(per_worker.keys().any(|&w| w >= 2), "a fresh worker took stolen work\n{}", r.dump());
    for (worker, sequence) in &per_worker {
        assert!(sequence.windows(2).all(|p| p[0] < p[1]), "worker {worker} ran {sequence:?}\n{}", r.dump());
    }
}
