//! The zygote lost in the middle of a run: killed by SIGKILL (here by a
//! test, through its worker's parent), or stopped so that it answers
//! nothing. Every collected test still gets exactly one outcome (the ones
//! in flight fail, the rest are `NOT RUN`), the junit file is written, the
//! summary names the cause, the exit code is 3 (pytest's INTERNAL_ERROR),
//! and no process is left behind, stopped or not.
//!
//! Plain pytest is not run on these suites: there, a test's parent is
//! pytest itself, or whatever started it. The tests act only under a
//! worker (`PYTEST_XDIST_WORKER`).

mod common;
use common::daemon::Daemon;
use common::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `test_act` does `action` to the zygote after `delay` seconds, and is
/// still running when the run ends; twelve tests of `each` seconds run
/// beside it on the other worker.
fn suite(action: &str, delay: f64, each: f64) -> Suite {
    let tests = format!(
        "import os, signal, time\nimport pytest\n\n\
         def test_act():\n    time.sleep({delay})\n    if os.environ.get('PYTEST_XDIST_WORKER'):\n        \
         os.kill(os.getppid(), signal.{action})\n        time.sleep(5)\n\n\
         @pytest.mark.parametrize('i', range(12))\ndef test_p(i):\n    time.sleep({each})\n"
    );
    Suite::new(&[("test_z.py", &tests)])
}

/// Every test is reported once, the counts add up, and junit has each.
fn assert_every_test_accounted_for(junit: &Path, r: &RunResult) {
    let reported: Vec<&str> = (r.stdout.lines())
        .filter(|l| [" PASSED", " FAILED", " NOT RUN"].iter().any(|word| l.ends_with(word)))
        .filter_map(|l| l.split_whitespace().find(|word| word.starts_with("test_z.py::")))
        .collect();
    assert_eq!(reported.iter().collect::<BTreeSet<_>>().len(), 13, "{}", r.dump());
    assert_eq!(reported.len(), 13, "a test reported twice\n{}", r.dump());
    let counts = r.counts();
    assert_eq!(counts.values().sum::<u64>(), 13, "{counts:?}\n{}", r.dump());
    let junit = parse_junit(junit);
    assert_eq!(junit.cases.len(), 13, "{junit:?}");
    let failed = counts.get("failed").unwrap_or(&0) + counts.get("not run").unwrap_or(&0);
    assert_eq!(junit.failures, failed.to_string(), "{junit:?}\n{}", r.dump());
    assert_eq!((junit.tests.as_str(), junit.errors.as_str()), ("13", "0"), "{junit:?}");
}

/// The junit file's place: outside the suite, whose listing a warm
/// zygote watches.
fn junit_file() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let arg = format!("--junitxml={}", path.display());
    (dir, path, arg)
}

fn assert_nothing_left(suite: &Suite) {
    assert_eq!(wait_no_processes_in(suite.path(), Duration::from_secs(5)), [], "processes left behind");
}

#[test]
fn a_zygote_killed_mid_run_leaves_no_test_unaccounted() {
    let suite = suite("SIGKILL", 0.3, 0.2);
    let (_dir, junit, junit_arg) = junit_file();
    let r = run_rpytest(&suite, &["-n", "2", "-v", &junit_arg]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("the zygote died during the run (killed by signal 9 (SIGKILL))"), "{}", r.dump());
    assert!(r.stdout.contains("!!! the zygote was killed by signal 9 (SIGKILL) !!!"), "{}", r.dump());
    assert_eq!(r.words("test_z.py::test_act"), ["FAILED"], "{}", r.dump());
    assert!(r.counts().get("not run").is_some_and(|n| *n > 0), "{}", r.dump());
    assert!(r.stdout.contains("generated xml file:"), "{}", r.dump());
    assert_every_test_accounted_for(&junit, &r);
    assert_nothing_left(&suite);
}

/// `-n 2 -v` and `junit_arg`, the zygote stopped for a second at most,
/// and the run bounded: a hang fails the test.
fn run_bounded(suite: &Suite, junit_arg: &str, env: &[(&str, &str)]) -> RunResult {
    let mut env = env.to_vec();
    env.push(("RPYTEST_ZYGOTE_STOPPED_TIMEOUT", "1"));
    let args: Vec<String> = ["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider"]
        .iter()
        .chain(&["-n", "2", "-v", junit_arg])
        .map(|s| s.to_string())
        .collect();
    run_command_timeout(&rpytest_bin(), &args, suite.path(), &env, Duration::from_secs(40))
}

/// A zygote that stops (SIGSTOP) answers nothing: the run ends it once it
/// has stayed stopped for `RPYTEST_ZYGOTE_STOPPED_TIMEOUT`, and the tests
/// its workers had not finished by then are accounted for as above.
#[test]
fn a_stopped_zygote_is_ended_within_its_limit() {
    let suite = suite("SIGSTOP", 0.0, 0.4);
    let (_dir, junit, junit_arg) = junit_file();
    let r = run_bounded(&suite, &junit_arg, &[]);
    assert!(!r.timed_out, "rpytest hung on a stopped zygote\n{}", r.dump());
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("is stopped and answers nothing; stopping it"), "{}", r.dump());
    let cause = "the zygote was killed by rpytest after it stayed stopped (SIGSTOP) for 1s";
    assert!(r.stdout.contains(cause), "{}", r.dump());
    assert_every_test_accounted_for(&junit, &r);
    assert_nothing_left(&suite);
}

/// Stopped while pytest ends the session (every test done): the run ends
/// it all the same, with the junit file pytest did not get to write.
#[test]
fn a_zygote_stopped_while_ending_the_session_is_ended_too() {
    let conftest = "import os, signal\n\ndef pytest_sessionfinish(session):\n    \
                    if os.environ.get('STOP_THE_ZYGOTE') and not os.environ.get('PYTEST_XDIST_WORKER'):\n        \
                    os.kill(os.getpid(), signal.SIGSTOP)\n";
    let suite = Suite::new(&[
        ("conftest.py", conftest),
        ("test_z.py", "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n"),
    ]);
    let (_dir, junit, junit_arg) = junit_file();
    let r = run_bounded(&suite, &junit_arg, &[("STOP_THE_ZYGOTE", "1")]);
    assert!(!r.timed_out, "rpytest hung on a stopped zygote\n{}", r.dump());
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 1 passed"), "{}", r.dump());
    assert!(r.stderr.contains("while pytest was ending the session"), "{}", r.dump());
    let junit = parse_junit(&junit);
    assert_eq!((junit.tests.as_str(), junit.failures.as_str(), junit.cases.len()), ("2", "1", 2), "{junit:?}");
    assert_nothing_left(&suite);
}

/// A warm zygote (the daemon's child) killed by a signal is named by it,
/// as an embedded one is: the client asks the daemon how it ended.
#[test]
fn a_warm_zygote_killed_by_a_signal_names_it() {
    let suite = suite("SIGKILL", 0.3, 0.2);
    let daemon = Daemon::start(&[]);
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    let (_dir, junit, junit_arg) = junit_file();
    let cold = run_rpytest_env(&suite, &["-n", "2", "-v", &junit_arg], &env);
    assert_eq!(cold.code, 3, "{}", cold.dump());
    daemon.wait_settled();
    let _ = std::fs::remove_file(&junit);
    let warm = run_rpytest_env(&suite, &["-n", "2", "-v", &junit_arg], &env);
    assert!(warm.stderr.contains("daemon: warm zygote"), "the run was not warm\n{}", warm.dump());
    assert_eq!(warm.code, 3, "{}", warm.dump());
    assert!(warm.stderr.contains("the zygote died during the run (killed by signal 9 (SIGKILL))"), "{}", warm.dump());
    assert_every_test_accounted_for(&junit, &warm);
    drop(daemon);
    assert_nothing_left(&suite);
}
