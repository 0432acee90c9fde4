//! `--retries N`: a failed test runs again up to N times. One that fails
//! and then passes is FLAKY (progress line, counts, short summary, junit's
//! `flakyFailure`, the history) and the run exits 0; one that fails every
//! try still fails (junit's `rerunFailure`s, exit 1). pytest-rerunfailures'
//! `--reruns` keeps working, and a test it reran is not retried on top.

mod common;
use common::*;

use std::path::Path;

/// Fails on its first try in a suite directory, then passes (a marker file
/// counts the tries); `test_always` fails every time.
const FLAKY: &str = r#"
    import os
    import pathlib

    HERE = pathlib.Path(__file__).parent

    def tries(name):
        marker = HERE / f"tries-{name}"
        n = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(n + 1))
        return n + 1

    def test_ok():
        pass

    def test_flaky():
        print("this try printed")
        assert tries("flaky") >= 2, "fails on the first try"

    def test_always():
        assert False, "fails every time"
"#;

fn flaky_suite() -> Suite {
    Suite::new(&[("test_f.py", FLAKY)])
}

fn lines_about<'a>(r: &'a RunResult, nodeid: &str) -> Vec<&'a str> {
    r.stdout.lines().filter(|l| l.starts_with(&format!("{nodeid} "))).collect()
}

/// `(tag, count)` of the children of `<testcase name=NAME>` in a junit file.
fn junit_children(path: &Path, name: &str) -> Vec<String> {
    let xml = std::fs::read_to_string(path).unwrap();
    let start = xml.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no {name} in {xml}"));
    let case = &xml[start..];
    let end = case.find("</testcase>").or_else(|| case.find("/>")).unwrap();
    let case = &case[..end];
    ["flakyFailure", "rerunFailure", "failure", "stackTrace", "system-out"]
        .iter()
        .map(|tag| format!("{tag}={}", case.matches(&format!("<{tag}")).count()))
        .collect()
}

#[test]
fn without_retries_a_flaky_test_fails_as_under_pytest() {
    let suite = flaky_suite();
    let pytest = run_pytest(&suite, &[]);
    std::fs::remove_file(suite.join("tries-flaky")).unwrap();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!((r.code, r.final_line.as_deref()), (1, Some("2 failed, 1 passed")), "{}", r.dump());
    assert_eq!((r.code, &r.final_line), (pytest.code, &pytest.final_line), "{}", pytest.dump());
}

#[test]
fn a_stop_between_tries_reports_the_failed_try() {
    // -x: test_always fails its last try first (no retries left for it),
    // which stops the run while test_flaky may wait for its second try.
    // Whatever the timing, every test that started has one result.
    let suite = flaky_suite();
    let r = run_rpytest(&suite, &["-n", "2", "-x", "--retries", "1"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    let reported = r.stdout.lines().filter(|l| l.starts_with("test_f.py::test_flaky ")).count();
    let last = lines_about(&r, "test_f.py::test_flaky").last().map(|l| l.to_string()).unwrap_or_default();
    assert!(reported == 0 || !last.contains("retrying"), "a retried test was left without a result: {}", r.dump());
}

#[test]
fn a_test_that_fails_then_passes_is_flaky_and_the_run_passes() {
    let suite = Suite::new(&[("test_f.py", &FLAKY.replace("def test_always", "def _always"))]);
    let r = run_rpytest(&suite, &["-n", "2", "--retries", "1", "--junitxml=j.xml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        lines_about(&r, "test_f.py::test_flaky"),
        ["test_f.py::test_flaky FAILED (try 1 of 2, retrying)", "test_f.py::test_flaky FLAKY (passed on try 2)"],
        "{}",
        r.dump()
    );
    assert_eq!(r.final_line.as_deref(), Some("2 passed, 1 flaky"), "{}", r.dump());
    assert!(r.stdout.contains("FLAKY test_f.py::test_flaky - passed on try 2"), "{}", r.dump());
    let junit = parse_junit(&suite.join("j.xml"));
    assert_eq!((junit.tests.as_str(), junit.failures.as_str()), ("2", "0"));
    assert_eq!(
        junit_children(&suite.join("j.xml"), "test_flaky"),
        ["flakyFailure=1", "rerunFailure=0", "failure=0", "stackTrace=1", "system-out=1"]
    );
    let xml = std::fs::read_to_string(suite.join("j.xml")).unwrap();
    assert!(xml.contains("fails on the first try") && xml.contains("this try printed"), "{xml}");
}

#[test]
fn a_test_that_always_fails_still_fails_after_its_retries() {
    let suite = flaky_suite();
    let r = run_rpytest(&suite, &["-n", "2", "--retries", "2", "--junitxml=j.xml"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(
        lines_about(&r, "test_f.py::test_always"),
        [
            "test_f.py::test_always FAILED (try 1 of 3, retrying)",
            "test_f.py::test_always FAILED (try 2 of 3, retrying)",
            "test_f.py::test_always FAILED",
        ],
        "{}",
        r.dump()
    );
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 2 passed, 1 flaky"), "{}", r.dump());
    // The FAILURES section shows the last try once, as pytest shows a failure.
    assert_eq!(r.stdout.matches("_ test_always _").count(), 1, "{}", r.dump());
    assert_eq!(
        junit_children(&suite.join("j.xml"), "test_always"),
        ["flakyFailure=0", "rerunFailure=2", "failure=1", "stackTrace=2", "system-out=0"]
    );
}

#[test]
fn a_crashed_try_is_retried_on_a_fresh_worker() {
    let body = r#"
        import os
        import pathlib

        def test_crashes_once():
            marker = pathlib.Path(__file__).with_name("crashed")
            if not marker.exists():
                marker.write_text("x")
                os._exit(3)
    "#;
    let suite = Suite::new(&[("test_c.py", body)]);
    let r = run_rpytest(&suite, &["-n", "1", "--retries", "1"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let lines = lines_about(&r, "test_c.py::test_crashes_once");
    assert_eq!(lines.len(), 2, "{}", r.dump());
    assert!(lines[0].contains("(try 1 of 2, retrying)") && lines[1].ends_with("FLAKY (passed on try 2)"), "{lines:?}");
}

#[test]
fn the_last_test_is_retried_after_every_worker_was_told_there_is_no_more() {
    // One worker, one test: the worker has been told "no more" before the
    // test fails, so the retry needs a fresh worker. It must not hang.
    let suite = Suite::new(&[(
        "test_f.py",
        &FLAKY.replace("def test_always", "def _always").replace("def test_ok", "def _ok"),
    )]);
    let r = run_rpytest(&suite, &["-n", "1", "--retries", "3"]);
    assert_eq!((r.code, r.timed_out), (0, false), "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 passed, 1 flaky"), "{}", r.dump());
}

#[test]
fn retries_come_from_pyproject_and_the_environment_and_flags_win() {
    let suite = Suite::new(&[
        ("test_f.py", FLAKY),
        ("pyproject.toml", "[tool.pytest.ini_options]\n[tool.rpytest]\nretries = 1\n"),
    ]);
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 2 passed, 1 flaky"), "{}", r.dump());
    assert_eq!(lines_about(&r, "test_f.py::test_always").len(), 2, "{}", r.dump());
    let r = run_rpytest_env(&suite, &["-n", "2"], &[("RPYTEST_RETRIES", "2")]);
    assert_eq!(lines_about(&r, "test_f.py::test_always").len(), 3, "{}", r.dump());
    let r = run_rpytest_env(&suite, &["-n", "2", "--retries", "0"], &[("RPYTEST_RETRIES", "2")]);
    assert_eq!(lines_about(&r, "test_f.py::test_always").len(), 1, "{}", r.dump());
    let r = run_rpytest(&suite, &["--retries", "x"]);
    assert_eq!(r.code, 4, "{}", r.dump());
}

#[test]
fn the_history_counts_flaky_results_and_inventory_status_shows_them() {
    let suite = flaky_suite();
    for _ in 0..2 {
        std::fs::remove_file(suite.join("tries-flaky")).ok();
        let r = run_rpytest(&suite, &["-n", "2", "--retries", "1"]);
        assert_eq!(r.code, 1, "{}", r.dump());
    }
    let status = run_rpytest_raw(suite.path(), &["--inventory-status", "-v"]);
    let row = |id: &str| status.stdout.lines().find(|l| l.ends_with(id)).unwrap_or_default().to_string();
    let words = |id: &str| row(id).split_whitespace().map(String::from).collect::<Vec<_>>();
    assert!(status.stdout.contains("flaky"), "{}", status.dump());
    assert_eq!(words("test_f.py::test_flaky")[2..4], ["passed", "2"], "{}", status.dump());
    assert_eq!(words("test_f.py::test_always")[2..4], ["failed", "0"], "{}", status.dump());
}

#[test]
fn exitfirst_counts_only_the_last_try() {
    // -x with one worker: the flaky test's failed first try must not stop
    // the run; a test that fails its last try does.
    let suite = Suite::new(&[("test_f.py", &FLAKY.replace("def test_always", "def _always"))]);
    let r = run_rpytest(&suite, &["-n", "1", "-x", "--retries", "1"]);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("2 passed, 1 flaky")), "{}", r.dump());
    let suite = flaky_suite();
    let r = run_rpytest(&suite, &["-n", "1", "-x", "--retries", "1"]);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.stdout.contains("stopping after 1 failures"), "{}", r.dump());
}

/// pytest-rerunfailures from PyPI, installed (no dependencies: pytest and
/// packaging are there) into a directory of its own for these tests; `None`
/// (the test skips) when it cannot be installed, e.g. offline.
fn rerunfailures() -> Option<String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rerunfailures");
    if !dir.join("pytest_rerunfailures.py").exists() {
        let status = std::process::Command::new(python())
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--target"])
            .arg(&dir)
            .arg("pytest-rerunfailures")
            .status();
        if !status.is_ok_and(|s| s.success()) || !dir.join("pytest_rerunfailures.py").exists() {
            common::note_skip("pytest-rerunfailures could not be installed from PyPI");
            return None;
        }
    }
    Some(dir.display().to_string())
}

#[test]
fn rerunfailures_reruns_keep_working_and_are_not_retried_on_top() {
    let Some(path) = rerunfailures() else { return };
    let env = [("PYTHONPATH", path.as_str())];
    let suite = flaky_suite();
    let pytest = run_command(
        &python(),
        &["-m", "pytest", "-p", "no:cacheprovider", "--reruns", "1"].map(String::from),
        suite.path(),
        &env,
    );
    assert_eq!(pytest.final_line.as_deref(), Some("1 failed, 2 passed, 2 rerun"), "{}", pytest.dump());
    std::fs::remove_file(suite.join("tries-flaky")).unwrap();
    let r = run_rpytest_env(&suite, &["-n", "2", "--reruns", "1", "--retries", "2"], &env);
    assert_eq!(r.code, pytest.code, "{}", r.dump());
    assert_eq!(r.final_line, pytest.final_line, "{}", r.dump());
    assert!(!r.stdout.contains("retrying"), "rpytest retried a test the plugin reran: {}", r.dump());
}

/// `[tool.rpytest]` comes from pytest's rootdir, not the current
/// directory: run from a sibling directory with the project's tests as the
/// argument, or from a test directory with a pyproject.toml of its own (no
/// pytest settings there), the project's `retries = 1` applies.
#[test]
fn settings_come_from_pytests_rootdir_not_the_current_directory() {
    let project = || {
        Suite::new(&[
            ("project/pytest.ini", "[pytest]\n"),
            ("project/pyproject.toml", "[tool.rpytest]\nretries = 1\n"),
            ("project/tests/pyproject.toml", "[project]\nname = 'nested'\n"),
            ("project/tests/test_f.py", FLAKY),
            ("elsewhere/README", "not a project\n"),
        ])
    };
    for (cwd, target) in [("elsewhere", "../project/tests"), ("project/tests", ".")] {
        let suite = project();
        let py = python().to_string_lossy().into_owned();
        let args = ["--python", &py, "-p", "no:cacheprovider", target, "-k", "flaky"];
        let r = run_command(&rpytest_bin(), &args.map(String::from), &suite.path().join(cwd), &[]);
        assert_eq!(r.code, 0, "from {cwd}: the project's retries = 1 applies\n{}", r.dump());
        assert!(!r.stderr.contains("warning"), "settings and rootdir agree\n{}", r.dump());
    }
}
