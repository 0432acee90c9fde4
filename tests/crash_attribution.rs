//! A crash is its own test's, and only its: the events of a worker process
//! (its exit status, its grace timer, its start-up watchdog) are tied to
//! that process, never to the worker that replaces it under the same number.

mod common;
use common::*;

#[test]
fn a_crash_does_not_fail_the_replacements_next_test() {
    // The replacement runs a test longer than the 2 s grace period that
    // followed the crash: a leftover timer once declared it lost too.
    let suite = Suite::new(&[(
        "test_a.py",
        "import os, time\n\ndef test_1_crash():\n    os._exit(1)\n\ndef test_2_slow():\n    time.sleep(2.5)\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "1", "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 1 passed"), "{}", r.dump());
    assert_eq!(r.words("test_a.py::test_2_slow"), ["PASSED"], "{}", r.dump());
}
