//! Collection spread over the workers (issue 27, docs/collection.md): on a
//! cold run the zygote finds the test files with pytest's own rules and
//! each worker imports and collects a share of them, unless something needs
//! the whole collection at once; then the zygote collects, and says why
//! under `-v`. Either way the outcomes, the exit code, the `collected N
//! items` line and the final line are pytest's.

mod common;
use common::*;

const SPREAD: &str = "rpytest: collection spread over 2 workers";

/// pytest < 8 always collects in the zygote (docs/collection.md).
fn spread_unsupported() -> bool {
    skip_unless_pytest((8, 0), "a spread collection")
}

/// 24 files of 30 tests (about 40 KB of test files: over the size below
/// which the zygote collects alone), with every outcome kind, a class,
/// parametrization, a module-level skip and a collection warning.
fn big_suite(extra: &[(&str, &str)]) -> Suite {
    let mut files: Vec<(String, String)> = Vec::new();
    for f in 0..24 {
        let mut body = String::from("import pytest\n");
        for t in 0..30 {
            body.push_str(&format!("\n\ndef test_{t}():\n    assert {t} + {f} == {f} + {t}  # padding, padding\n"));
        }
        files.push((format!("tests/test_mod{f:02}.py"), body));
    }
    let mixed = "import pytest\n\n\nclass TestGroup:\n    def test_in_class(self):\n        pass\n\n\
                 @pytest.mark.parametrize('x', [1, 2, 3])\ndef test_param(x):\n    assert x < 3\n\n\
                 @pytest.mark.xfail\ndef test_xfail():\n    assert False\n\n\
                 def test_fails():\n    assert 1 == 2\n\n\
                 class TestHasInit:\n    def __init__(self):\n        pass\n";
    files.push(("tests/test_mixed.py".into(), mixed.into()));
    files.push((
        "tests/test_skipped_module.py".into(),
        "import pytest\npytest.skip('not here', allow_module_level=True)\n".into(),
    ));
    let mut files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    files.extend_from_slice(extra);
    Suite::new(&files)
}

/// The `collected N items ...` line of a run's stdout (after `-v`'s
/// `collecting ... `).
fn collected_line(r: &RunResult) -> String {
    let line = r.stdout.lines().find_map(|l| l.find("collected ").map(|at| &l[at..]));
    line.unwrap_or("").to_string()
}

fn same_as_pytest(suite: &Suite, args: &[&str]) -> Pair {
    let pair = assert_same_with(suite, args, &["-n", "2", "-v"]);
    check(&pair, collected_line(&pair.pytest) == collected_line(&pair.rpytest), "the `collected` line");
    check(&pair, !collected_line(&pair.pytest).is_empty(), "pytest printed a `collected` line");
    pair
}

#[test]
fn a_large_cold_suite_spreads_its_collection_and_matches_pytest() {
    if spread_unsupported() {
        return;
    }
    let suite = big_suite(&[]);
    for args in [&[][..], &["-k", "not test_7 and not test_param"][..], &["-m", "not slow", "-rs"][..]] {
        let pair = same_as_pytest(&suite, args);
        check(&pair, pair.rpytest.stderr.contains(SPREAD), "the collection was spread (-v says so)");
        let warnings = |r: &RunResult| section(&r.stdout, "warnings summary").unwrap_or_default();
        check(&pair, warnings(&pair.rpytest).contains("TestHasInit"), "the collectors' warning is shown");
        check(&pair, warnings(&pair.pytest).contains("TestHasInit"), "pytest's warning");
    }
}

/// Each worker's run order, from `-v`'s `[worker K] nodeid` lines.
fn per_worker_order(r: &RunResult) -> std::collections::BTreeMap<usize, Vec<String>> {
    let mut orders: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for line in strip_ansi(&r.stdout).lines() {
        if let Some((Some(worker), nodeid, _)) = parse_outcome_line(line) {
            orders.entry(worker).or_default().push(nodeid);
        }
    }
    orders
}

#[test]
fn a_plugin_that_reorders_across_files_makes_the_zygote_collect() {
    if spread_unsupported() {
        return;
    }
    let conftest = "def pytest_collection_modifyitems(items):\n    items.reverse()\n";
    let suite = big_suite(&[("conftest.py", conftest)]);
    let pair = same_as_pytest(&suite, &[]);
    let err = &pair.rpytest.stderr;
    check(&pair, !err.contains(SPREAD), "not spread");
    check(&pair, err.contains("collecting in the zygote: conftest.py"), "-v names the conftest");
    // Every worker runs a subsequence of pytest's (reversed) order.
    let pytest_order: Vec<String> =
        strip_ansi(&pair.pytest.stdout).lines().filter_map(parse_outcome_line).map(|(_, id, _)| id).collect();
    let position = |id: &String| pytest_order.iter().position(|p| p == id).unwrap_or(usize::MAX);
    for (worker, order) in per_worker_order(&pair.rpytest) {
        let positions: Vec<usize> = order.iter().map(position).collect();
        check(&pair, positions.windows(2).all(|w| w[0] < w[1]), &format!("worker {worker} ran in pytest's order"));
    }
}

#[test]
fn collect_ignore_and_norecursedirs_are_pytests_own_rules() {
    if spread_unsupported() {
        return;
    }
    let conftest = "collect_ignore = ['tests/test_broken.py']\ncollect_ignore_glob = ['*_skipme.py']\n";
    let suite = big_suite(&[
        ("conftest.py", conftest),
        ("pytest.ini", "[pytest]\nnorecursedirs = data\n"),
        ("tests/test_broken.py", "this is not python\n"),
        ("tests/test_x_skipme.py", "def test_never():\n    assert False\n"),
        ("tests/data/test_hidden.py", "def test_hidden():\n    assert False\n"),
    ]);
    let pair = same_as_pytest(&suite, &[]);
    check(&pair, pair.rpytest.stderr.contains(SPREAD), "spread: the ignore rules need no fallback");
    check(&pair, !pair.rpytest.stdout.contains("test_never"), "collect_ignore_glob kept");
}

#[test]
fn a_collection_error_is_reported_as_pytest_reports_it() {
    if spread_unsupported() {
        return;
    }
    let suite = big_suite(&[("tests/test_bad_import.py", "import no_such_module_here\n")]);
    let pair = same_as_pytest(&suite, &[]);
    check(&pair, pair.pytest.code == 2, "pytest: interrupted by the collection error");
    check(&pair, pair.rpytest.stderr.contains("collecting in the zygote: collection errors"), "-v says why");
}

/// A worker that dies is replaced by a fresh fork, which never collected:
/// it collects the files of the tests it is given.
#[test]
fn a_replacement_worker_collects_the_files_it_is_given() {
    if spread_unsupported() {
        return;
    }
    let crash = "import os\n\n\ndef test_before():\n    pass\n\n\ndef test_crash():\n    os._exit(3)\n\n\n\
                 def test_after():\n    pass\n";
    let suite = big_suite(&[("tests/test_mod00_crash.py", crash)]);
    let r = run_rpytest(&suite, &["-n", "2", "-v"]);
    assert_clean_exit(&r);
    assert!(r.stderr.contains(SPREAD), "{}", r.dump());
    assert_eq!(r.code, 1, "{}", r.dump());
    let counts = r.counts();
    assert_eq!(counts.get("failed"), Some(&3), "the crash, test_fails, test_param[3]\n{}", r.dump());
    assert_eq!(r.words("tests/test_mod00_crash.py::test_crash"), ["FAILED"], "{}", r.dump());
    assert_eq!(r.words("tests/test_mod00_crash.py::test_after"), ["PASSED"], "{}", r.dump());
}
