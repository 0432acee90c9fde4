//! Time limits enforced from outside the worker: `--timeout`, `timeout` in
//! `[tool.rpytest]`, `@pytest.mark.timeout(N)`, and pytest-timeout's own
//! settings with rpytest as the backstop. A test past its limit fails as
//! `Timeout (>Ns)` with every thread's stack in its failure text and in
//! junit; its worker is killed and replaced, and the tests behind it run.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

/// Stuck in C: `sleep` with the GIL released, again whenever a signal cuts
/// it short, so only a kill ends it.
const C_HANG: &str = "import ctypes\n\ndef test_1_stuck_in_c():\n    libc = ctypes.CDLL(None)\n    while True:\n        libc.sleep(30)\n\ndef test_2_after():\n    pass\n\ndef test_3_after():\n    pass\n";

const PY_HANG: &str =
    "import time\n\ndef test_1_sleep_loop():\n    while True:\n        time.sleep(0.1)\n\ndef test_2_after():\n    pass\n";

/// The limit, the stack-dump wait, the SIGTERM grace, and room for a busy machine.
fn ends_in_time(r: &RunResult, limit: f64) {
    let most = Duration::from_secs_f64(limit + 0.3 + 2.0 + 6.0);
    assert!(r.elapsed < most, "took {:?}, more than {most:?}\n{}", r.elapsed, r.dump());
}

fn junit_text(suite: &Suite) -> String {
    std::fs::read_to_string(suite.join("junit.xml")).expect("junit.xml written")
}

#[test]
fn a_test_stuck_in_c_code_fails_as_a_timeout_with_its_stack() {
    let suite = Suite::new(&[("test_c.py", C_HANG)]);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--timeout=2", "--junitxml=junit.xml"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 2 passed"), "{}", r.dump());
    assert_eq!(r.words("test_c.py::test_1_stuck_in_c"), ["FAILED"], "{}", r.dump());
    assert_eq!(r.words("test_c.py::test_2_after"), ["PASSED"], "{}", r.dump());
    assert!(r.stdout.contains("FAILED test_c.py::test_1_stuck_in_c - Timeout (>2.0s)"), "{}", r.dump());
    // faulthandler's dump, taken on SIGUSR1 while the test sat in C.
    let failures = section(&r.stdout, "FAILURES").unwrap_or_default();
    assert!(failures.contains("line 6 in test_1_stuck_in_c"), "no stack in the failure:\n{}", r.dump());
    let junit = junit_text(&suite);
    assert!(junit.contains("Timeout (&gt;2.0s)") && junit.contains("in test_1_stuck_in_c"), "{junit}");
    ends_in_time(&r, 2.0);
}

#[test]
fn a_python_sleep_loop_times_out_from_the_config_and_the_queue_goes_on() {
    let suite = Suite::new(&[
        ("pyproject.toml", "[tool.rpytest]\ntimeout = 1.5\n"),
        ("test_py.py", PY_HANG),
        ("test_more.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n"),
    ]);
    let r = run_rpytest(&suite, &["-n", "2", "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 3 passed"), "{}", r.dump());
    assert!(r.stdout.contains("Timeout (>1.5s): rpytest stopped worker"), "{}", r.dump());
    assert!(r.stdout.contains("in test_1_sleep_loop"), "{}", r.dump());
    ends_in_time(&r, 1.5);
}

#[test]
fn a_timeout_mark_wins_over_the_setting_and_zero_turns_it_off() {
    let suite = Suite::new(&[(
        "test_marks.py",
        "import time\nimport pytest\n\n@pytest.mark.timeout(1)\ndef test_short_limit():\n    time.sleep(30)\n\n\
         @pytest.mark.timeout(0)\ndef test_no_limit():\n    time.sleep(1.5)\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "2", "-v", "--timeout=60"]);
    assert_clean_exit(&r);
    assert_eq!(r.words("test_marks.py::test_short_limit"), ["FAILED"], "{}", r.dump());
    assert_eq!(r.words("test_marks.py::test_no_limit"), ["PASSED"], "{}", r.dump());
    assert!(r.stdout.contains("Timeout (>1.0s)"), "{}", r.dump());
    ends_in_time(&r, 1.0);
}

#[test]
fn bad_timeouts_are_usage_errors() {
    let suite = Suite::new(&[("test_a.py", "def test_a():\n    pass\n")]);
    let r = run_rpytest(&suite, &["--timeout=soon"]);
    assert_eq!(r.code, 4, "{}", r.dump());
    suite.write("pyproject.toml", "[tool.rpytest]\ntimeout = -3\n");
    let r = run_rpytest(&suite, &[]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("timeout"), "{}", r.dump());
}

fn has_pytest_timeout() -> bool {
    Command::new(python()).args(["-c", "import pytest_timeout"]).output().is_ok_and(|o| o.status.success())
}

/// pytest-timeout enforces its ini `timeout` inside the worker (its failure,
/// the worker lives on); where it cannot act (SIGALRM blocked), rpytest's
/// backstop fails the test 1 s later and replaces the worker.
#[test]
fn with_pytest_timeout_rpytest_is_the_backstop() {
    if !has_pytest_timeout() {
        common::note_skip("needs pytest-timeout in the test Python (scripts/venv.sh installs it)");
        return;
    }
    let suite = Suite::new(&[
        ("pytest.ini", "[pytest]\ntimeout = 1\n"),
        (
            "test_pt.py",
            "import signal, time\n\ndef test_1_python_hang():\n    time.sleep(30)\n\n\
             def test_2_alarm_blocked():\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n    time.sleep(30)\n\n\
             def test_3_after():\n    pass\n",
        ),
    ]);
    let r = run_rpytest(&suite, &["-n", "1", "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("2 failed, 1 passed"), "{}", r.dump());
    let failures = section(&r.stdout, "FAILURES").unwrap_or_default();
    let blocks = section_blocks(&failures);
    let first = blocks.iter().find(|b| b.contains("test_1_python_hang")).expect("a failure for the Python hang");
    assert!(first.contains("Timeout") && !first.contains("rpytest stopped"), "pytest-timeout's own failure:\n{first}");
    let second = blocks.iter().find(|b| b.contains("test_2_alarm_blocked")).expect("a failure for the blocked one");
    assert!(second.contains("Timeout (>1.0s): rpytest stopped worker"), "rpytest's backstop:\n{second}");
    ends_in_time(&r, 2.0 + 1.0);
}

/// `--retries` runs a timed-out test again on the replacement worker (same
/// number), and the limit holds for that try too.
#[test]
fn a_retried_timeout_is_timed_again() {
    let suite = Suite::new(&[("test_py.py", PY_HANG)]);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--timeout=1", "--retries=1"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 1 passed"), "{}", r.dump());
    assert!(r.stdout.contains("Timeout (>1.0s)"), "{}", r.dump());
    ends_in_time(&r, 2.0 * 1.0 + 2.3);
}

/// `--slow-timeout`: a test running longer is named once on stderr (as
/// nextest's SLOW) and goes on to pass; quick tests are not named.
#[test]
fn a_slow_test_is_named_once_while_it_runs_and_still_passes() {
    let suite = Suite::new(&[(
        "test_slow.py",
        "import time\n\ndef test_sleepy():\n    time.sleep(1.5)\n\ndef test_quick():\n    pass\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "1", "--slow-timeout=0.5"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("2 passed"), "{}", r.dump());
    let slow: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("SLOW ")).collect();
    assert_eq!(slow, ["SLOW [>0.5s] test_slow.py::test_sleepy (gw0)"], "{}", r.dump());
    let quiet = run_rpytest(&suite, &["-n", "1", "--slow-timeout=0"]);
    assert!(!quiet.stderr.contains("SLOW"), "0 turns it off\n{}", quiet.dump());
}
