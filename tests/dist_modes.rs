//! `--dist` modes keep xdist's grouping, so module fixtures keep their
//! economics: `loadfile` and `loadscope` keep a file's (class's) tests on one
//! worker, `loadgroup` keeps an `xdist_group` together, `no` is a plain
//! serial run. Outcomes stay those of `python -m pytest`. With history,
//! `load` starts the longest test first (LPT).

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

/// Appends `setup <module>` to setups.log each time a module fixture is set up.
const CONFTEST: &str = r#"
import os
import pytest

LOG = os.path.join(os.path.dirname(__file__), "setups.log")

@pytest.fixture(scope="module")
def module_resource(request):
    with open(LOG, "a") as f:
        f.write("setup %s\n" % request.module.__name__)
    return request.module.__name__
"#;

fn module(name: &str) -> String {
    format!(
        r#"
import time
import pytest

@pytest.mark.parametrize("i", range(6))
def test_f(module_resource, i):
    time.sleep(0.01)
    assert module_resource == "{name}"

class TestK:
    def test_a(self):
        time.sleep(0.01)

    def test_b(self):
        time.sleep(0.01)

@pytest.mark.xdist_group("db")
def test_db():
    pass

@pytest.mark.xdist_group(name="net")
def test_net():
    pass
"#
    )
}

fn suite_with(extra: &[(&str, &str)]) -> Suite {
    let modules: Vec<(String, String)> =
        ["test_x", "test_y", "test_z"].iter().map(|m| (format!("{m}.py"), module(m))).collect();
    let mut files: Vec<(&str, &str)> = modules.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
    files.push(("conftest.py", CONFTEST));
    files.extend_from_slice(extra);
    Suite::new(&files)
}

fn suite() -> Suite {
    suite_with(&[])
}

/// The workers that ran the tests whose node id `key` maps to the same value.
fn workers_by(r: &RunResult, key: impl Fn(&str) -> Option<String>) -> BTreeMap<String, BTreeSet<usize>> {
    let mut by: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (nodeid, workers) in &r.workers {
        if let Some(k) = key(nodeid) {
            by.entry(k).or_default().extend(workers);
        }
    }
    by
}

fn assert_each_on_one_worker(r: &RunResult, by: &BTreeMap<String, BTreeSet<usize>>) {
    assert!(!by.is_empty(), "no worker assignments parsed\n{}", r.dump());
    for (key, workers) in by {
        assert_eq!(workers.len(), 1, "{key} ran on workers {workers:?}\n{}", r.dump());
    }
}

fn setups(suite: &Suite) -> Vec<String> {
    let text = std::fs::read_to_string(suite.join("setups.log")).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

fn file_of(nodeid: &str) -> Option<String> {
    nodeid.split("::").next().map(String::from)
}

/// Runs rpytest with `rpytest_args` (plus -v), then pytest, and compares.
fn run_and_compare(suite: &Suite, rpytest_args: &[&str]) -> RunResult {
    let mut args = vec!["-v"];
    args.extend_from_slice(rpytest_args);
    let rpytest = run_rpytest(suite, &args);
    let pytest = run_pytest(suite, &["-v"]);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    pair.rpytest
}

#[test]
fn loadfile_keeps_each_file_on_one_worker_and_module_fixtures_set_up_once() {
    let suite = suite();
    let r = run_rpytest(&suite, &["-v", "-n", "3", "--dist", "loadfile"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_each_on_one_worker(&r, &workers_by(&r, file_of));
    assert_eq!(setups(&suite), ["setup test_x", "setup test_y", "setup test_z"], "{}", r.dump());
    std::fs::remove_file(suite.join("setups.log")).unwrap();
    run_and_compare(&suite, &["-n", "3", "--dist", "loadfile"]);
}

#[test]
fn loadscope_keeps_module_functions_and_each_class_together() {
    let suite = suite();
    let r = run_and_compare(&suite, &["-n", "3", "--dist", "loadscope"]);
    // xdist's scope: the node id up to its last "::".
    let scope = |id: &str| id.rsplit_once("::").map(|(s, _)| s.to_string());
    assert_each_on_one_worker(&r, &workers_by(&r, scope));
}

#[test]
fn loadgroup_keeps_each_xdist_group_on_one_worker_across_files() {
    let suite = suite();
    let r = run_and_compare(&suite, &["-n", "3", "--dist", "loadgroup"]);
    let group = |id: &str| ["test_db", "test_net"].iter().find(|g| id.ends_with(*g)).map(|g| g.to_string());
    let by = workers_by(&r, group);
    assert_eq!(by.len(), 2, "{}", r.dump());
    assert_each_on_one_worker(&r, &by);
}

#[test]
fn dist_from_pytest_addopts_is_honoured() {
    if skip_without_xdist("--dist in addopts (pytest rejects it without xdist)") {
        return;
    }
    let suite = suite_with(&[("pytest.ini", "[pytest]\naddopts = --dist loadfile\n")]);
    let r = run_and_compare(&suite, &["-n", "3"]);
    assert_each_on_one_worker(&r, &workers_by(&r, file_of));
}

/// Node ids in the order their outcome lines were printed.
fn printed_order(r: &RunResult) -> Vec<String> {
    r.stdout.lines().filter_map(parse_outcome_line).map(|(_, id, _)| id).collect()
}

#[test]
fn dist_no_is_one_worker_in_collection_order() {
    let suite = suite();
    let r = run_rpytest(&suite, &["-v", "--dist", "no"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let workers: BTreeSet<usize> = r.workers.values().flatten().copied().collect();
    assert_eq!(workers, BTreeSet::from([0]), "{}", r.dump());
    let pytest = run_pytest(&suite, &["-v"]);
    assert_eq!(printed_order(&r), printed_order(&pytest), "{}\n{}", r.dump(), pytest.dump());
}

#[test]
fn worksteal_is_accepted_as_load() {
    let suite = suite();
    let r = run_and_compare(&suite, &["-n", "2", "--dist", "worksteal"]);
    let workers: BTreeSet<usize> = r.workers.values().flatten().copied().collect();
    assert_eq!(workers.len(), 2, "{}", r.dump());
}

#[test]
fn each_and_unknown_modes_exit_4_with_a_reason() {
    let suite = suite();
    for (mode, says) in [("each", "not supported"), ("bogus", "loadscope")] {
        let r = run_rpytest(&suite, &["--dist", mode]);
        assert_clean_exit(&r);
        assert_eq!(r.code, 4, "{}", r.dump());
        assert!(r.stderr.contains(says), "--dist {mode}: stderr should say {says:?}\n{}", r.dump());
    }
}

#[test]
fn a_crash_inside_a_file_group_requeues_the_rest_of_the_group() {
    let suite = Suite::new(&[(
        "test_crash.py",
        r#"
        import os

        def test_1():
            pass

        def test_2():
            os._exit(3)

        def test_3():
            pass

        def test_4():
            pass
        "#,
    )]);
    let r = run_rpytest(&suite, &["-v", "-n", "2", "--dist", "loadfile"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.words("test_crash.py::test_2"), ["FAILED"], "{}", r.dump());
    for t in ["test_1", "test_3", "test_4"] {
        assert_eq!(r.words(&format!("test_crash.py::{t}")), ["PASSED"], "{}", r.dump());
    }
}

/// Each test logs `<time> <name>` when it starts.
const START_LOG: &str = r#"
import os
import time
import pytest

LOG = os.path.join(os.path.dirname(__file__), "starts.log")

@pytest.fixture(autouse=True)
def log_start(request):
    with open(LOG, "a") as f:
        f.write("%.6f %s\n" % (time.time(), request.node.name))
"#;

/// Names in the order the tests started, then the log is cleared.
fn start_order(suite: &Suite) -> Vec<String> {
    let path = suite.join("starts.log");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(path).unwrap();
    let mut rows: Vec<(f64, String)> =
        text.lines().filter_map(|l| l.split_once(' ').map(|(t, n)| (t.parse().unwrap(), n.to_string()))).collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn with_history_the_longest_test_starts_first() {
    let suite = Suite::new(&[
        ("conftest.py", START_LOG),
        (
            "test_lpt.py",
            r#"
            import time
            import pytest

            @pytest.mark.parametrize("i", range(16))
            def test_short(i):
                time.sleep(0.02)

            def test_zz_long():
                time.sleep(0.6)
            "#,
        ),
    ]);
    let first = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(first.code, 0, "{}", first.dump());
    let cold = start_order(&suite);
    assert!(cold.iter().position(|n| n == "test_zz_long").unwrap() >= 2, "without history: collection order {cold:?}");
    let second = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(second.code, 0, "{}", second.dump());
    let warm = start_order(&suite);
    assert!(
        warm.iter().position(|n| n == "test_zz_long").unwrap() < 2,
        "with history the long test goes first: {warm:?}"
    );
}

/// Equal tests without history: each worker's fair share comes first, so
/// no worker prefetches another's tests (3/2/0/3 before; xdist 2/2/2/2).
#[test]
fn equal_tests_without_history_split_evenly_like_xdist() {
    let suite = Suite::new(&[(
        "test_equal.py",
        r#"
        import os
        import time
        import pytest

        @pytest.mark.parametrize("i", range(8))
        def test_equal(i):
            time.sleep(0.3)
            with open("ran_on.txt", "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + "\n")
        "#,
    )]);
    let per_worker = |label: &str, r: &RunResult| {
        assert_eq!(r.code, 0, "{}", r.dump());
        let text = std::fs::read_to_string(suite.join("ran_on.txt")).unwrap();
        std::fs::remove_file(suite.join("ran_on.txt")).unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for worker in text.lines() {
            *counts.entry(worker.to_string()).or_insert(0) += 1;
        }
        let want: std::collections::BTreeMap<String, i32> = (0..4).map(|w| (format!("gw{w}"), 2)).collect();
        assert_eq!(counts, want, "{label}: tests per worker\n{}", r.dump());
    };
    if !skip_without_xdist("the comparison with pytest -n 4") {
        per_worker("pytest-xdist", &run_pytest(&suite, &["-n", "4"]));
    }
    per_worker("rpytest", &run_rpytest(&suite, &["-n", "4"]));
}
