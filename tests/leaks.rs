//! Processes a test leaves behind are found, reported as a LEAK note on
//! that test (terminal and junit) and ended; nothing of the run outlives
//! rpytest, detached (setsid) processes and a timed-out worker's children
//! included.

mod common;
use common::*;

fn marker(name: &str) -> String {
    format!("rpytest-leak-{name}-{}", std::process::id())
}

/// A test that starts `sleep`-like children and returns: one plain child,
/// one detached with setsid and a double fork.
fn leaky_suite(marker: &str) -> Suite {
    let code = format!(
        "import os, subprocess, sys\n\nCHILD = [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}']\n\n\
         def test_1_child():\n    subprocess.Popen(CHILD)\n\n\
         def test_2_detached():\n    pid = os.fork()\n    if pid == 0:\n        os.setsid()\n        if os.fork() == 0:\n            \
         os.execv(sys.executable, CHILD)\n        os._exit(0)\n    os.waitpid(pid, 0)\n\n\
         def test_3_clean():\n    subprocess.run([sys.executable, '-c', 'pass'])\n"
    );
    Suite::new(&[("test_leaky.py", &code)])
}

#[test]
fn leaked_processes_are_reported_on_their_test_and_ended() {
    let marker = marker("plain");
    let suite = leaky_suite(&marker);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--junitxml=junit.xml"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("3 passed"), "{}", r.dump());
    let leak_lines: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("LEAK ")).collect();
    assert_eq!(leak_lines.len(), 2, "{}", r.dump());
    assert!(
        leak_lines.iter().any(|l| l.contains("test_leaky.py::test_1_child") && l.contains(&marker)),
        "{leak_lines:?}"
    );
    assert!(
        leak_lines.iter().any(|l| l.contains("test_leaky.py::test_2_detached") && l.contains(&marker)),
        "{leak_lines:?}"
    );
    assert!(!r.stdout.contains("LEAK test_leaky.py::test_3_clean"), "{}", r.dump());
    // Near the summary: after the progress lines, before the counts.
    let leak_at = r.stdout.find("LEAK ").unwrap();
    assert!(leak_at > r.stdout.find("test_3_clean PASSED").unwrap(), "{}", r.dump());
    let junit = std::fs::read_to_string(suite.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<property name=\"rpytest_leak\"").count(), 2, "{junit}");
    assert_eq!(none_left(&marker), [], "leaked processes outlived the run\n{}", r.dump());
}

#[test]
fn a_timed_out_workers_children_do_not_outlive_the_run() {
    let marker = marker("timeout");
    let code = format!(
        "import os, subprocess, sys, time\n\nCHILD = [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}']\n\n\
         def test_hangs_with_children():\n    subprocess.Popen(CHILD)\n    pid = os.fork()\n    if pid == 0:\n        \
         os.setsid()\n        if os.fork() == 0:\n            os.execv(sys.executable, CHILD)\n        os._exit(0)\n    \
         os.waitpid(pid, 0)\n    time.sleep(60)\n"
    );
    let suite = Suite::new(&[("test_hang.py", &code)]);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--timeout=1"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed"), "{}", r.dump());
    assert_eq!(none_left(&marker), [], "a timed-out test's processes outlived the run\n{}", r.dump());
}

#[test]
fn a_crashed_workers_detached_child_does_not_outlive_the_run() {
    let marker = marker("crash");
    let code = format!(
        "import os, sys\n\nCHILD = [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}']\n\n\
         def test_detach_then_crash():\n    pid = os.fork()\n    if pid == 0:\n        os.setsid()\n        \
         if os.fork() == 0:\n            os.execv(sys.executable, CHILD)\n        os._exit(0)\n    os.waitpid(pid, 0)\n    \
         os._exit(3)\n"
    );
    let suite = Suite::new(&[("test_crash.py", &code)]);
    let r = run_rpytest(&suite, &["-n", "1", "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed"), "{}", r.dump());
    assert_eq!(none_left(&marker), [], "a crashed test's detached process outlived the run\n{}", r.dump());
}
