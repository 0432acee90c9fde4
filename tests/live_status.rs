//! The live status under the streamed results: on a terminal, rpytest shows
//! done/total, failures so far, the time left by the history and each
//! worker's running test with its elapsed time; with `CI` set, or when the
//! output is not a terminal, plain lines only. The terminal is a pseudo-tty
//! from util-linux `script`; the test skips where it is missing.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

const SLOW: &str = r#"
    import time

    def test_slow():
        time.sleep(1.5)

    def test_fails():
        assert False
"#;

/// rpytest's output when its stdout is a terminal; `None` without `script`.
fn on_a_terminal(suite: &Suite, args: &str, ci: bool) -> Option<String> {
    if !Path::new("/usr/bin/script").exists() {
        common::note_skip("no /usr/bin/script to give rpytest a terminal");
        return None;
    }
    let command = format!("{} --python {} -p no:cacheprovider {args}", rpytest_bin().display(), python().display());
    let mut cmd = Command::new("/usr/bin/script");
    cmd.args(["-qec", &command, "/dev/null"]).current_dir(suite.path()).env("COLUMNS", "120");
    cmd.env_remove("CI").env_remove("NO_COLOR").env_remove("PYTEST_ADDOPTS");
    if ci {
        cmd.env("CI", "true");
    }
    let out = cmd.output().expect("run script");
    Some(strip_ansi(&String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_terminal_shows_running_tests_failures_and_time_left() {
    let suite = Suite::new(&[("test_s.py", SLOW)]);
    // A first run records durations, so the second can say how long is left.
    assert_eq!(run_rpytest(&suite, &["-n", "2"]).code, 1);
    let Some(out) = on_a_terminal(&suite, "-n 2", false) else { return };
    assert!(out.contains("gw0 test_s.py::test_slow") || out.contains("gw1 test_s.py::test_slow"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
    assert!(out.contains("s left"), "{out}");
    assert!(out.contains("/2 tests"), "{out}");
}

#[test]
fn ci_gets_plain_lines_only() {
    let suite = Suite::new(&[("test_s.py", SLOW)]);
    let Some(out) = on_a_terminal(&suite, "-n 2", true) else { return };
    assert!(out.contains("test_s.py::test_slow PASSED"), "{out}");
    assert!(!out.contains("gw0 test_s.py") && !out.contains("gw1 test_s.py") && !out.contains("/2 tests"), "{out}");
}
