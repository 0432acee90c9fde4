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

/// The signal by name and the worker's faulthandler output, in the failure
/// text and in junit, for a segfault and an abort; an exit code for `os._exit`.
#[test]
fn a_crash_names_its_signal_and_carries_the_fault_log() {
    let suite = Suite::new(&[(
        "test_crash.py",
        "import ctypes, os\n\ndef test_segv():\n    ctypes.string_at(0)\n\ndef test_abort():\n    os.abort()\n\n\
         def test_exit():\n    os._exit(7)\n\ndef test_ok():\n    pass\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "2", "-v", "--junitxml=junit.xml"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("3 failed, 1 passed"), "{}", r.dump());
    let failures = section(&r.stdout, "FAILURES").unwrap_or_default();
    let block = |name: &str| {
        section_blocks(&failures).into_iter().find(|b| b.contains(name)).unwrap_or_else(|| panic!("{}", r.dump()))
    };
    let segv = block("test_segv");
    assert!(segv.contains("killed by signal 11 (SIGSEGV)"), "{segv}");
    assert!(segv.contains("Fatal Python error: Segmentation fault") && segv.contains("line 4 in test_segv"), "{segv}");
    let abort = block("test_abort");
    assert!(abort.contains("(SIGABRT)") && abort.contains("line 7 in test_abort"), "{abort}");
    assert!(block("test_exit").contains("exited with code 7"), "{}", r.dump());
    // The dump is the test's, not raw output on rpytest's stderr.
    assert!(!r.stderr.contains("Fatal Python error"), "{}", r.dump());
    let junit = std::fs::read_to_string(suite.join("junit.xml")).unwrap();
    assert!(junit.contains("message=\"worker 'gw"), "{junit}");
    assert!(
        junit.contains("Fatal Python error: Segmentation fault") && junit.contains("line 4 in test_segv"),
        "{junit}"
    );
}

/// 20 crashes: with a restart budget to spare, every test gets its own
/// outcome; with a small one, the run stops and says which tests never ran.
#[test]
fn max_worker_restart_bounds_replacements() {
    let mut code = String::from("import os\n");
    for i in 0..20 {
        code += &format!("\ndef test_crash_{i:02}():\n    os._exit(1)\n");
    }
    for i in 0..5 {
        code += &format!("\ndef test_pass_{i}():\n    pass\n");
    }
    // A fresh suite per run: no history reorders the second.
    let suite = Suite::new(&[("test_many.py", &code)]);
    let r = run_rpytest(&suite, &["-n", "2", "-v", "--max-worker-restart=30"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("20 failed, 5 passed"), "{}", r.dump());

    let suite = Suite::new(&[("test_many.py", &code)]);
    let r = run_rpytest(&suite, &["-n", "2", "-v", "--max-worker-restart=3"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.stdout.contains("maximum crashed workers reached: 3"), "{}", r.dump());
    let counts = r.counts();
    // The 4th crash ends the run (xdist's rule): one more may be in flight on the other worker.
    let failed = counts.get("failed").copied().unwrap_or(0);
    assert!((4..=5).contains(&failed), "{counts:?}\n{}", r.dump());
    let not_run = counts.get("not run").copied().unwrap_or(0);
    assert_eq!(failed + not_run, 25, "every test has one outcome: {counts:?}\n{}", r.dump());
    assert_eq!(r.stdout.matches(" NOT RUN").count() as u64, not_run, "{}", r.dump());
}

/// With no budget, the first crash stops the run, as xdist words it.
#[test]
fn max_worker_restart_zero_disables_replacement() {
    let suite = Suite::new(&[(
        "test_a.py",
        "import os\n\ndef test_1_crash():\n    os._exit(1)\n\ndef test_2():\n    pass\n\ndef test_3():\n    pass\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--max-worker-restart", "0"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.stdout.contains("worker gw0 crashed and worker restarting disabled"), "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 2 not run"), "{}", r.dump());
}

/// A zygote killed by a signal is named by it, not "an unknown reason".
#[test]
fn a_zygote_killed_by_a_signal_names_it() {
    let suite = Suite::new(&[(
        "test_a.py",
        "import os, signal, time\n\ndef test_kill_the_zygote():\n    os.kill(os.getppid(), signal.SIGKILL)\n    \
         time.sleep(5)\n",
    )]);
    let r = run_rpytest(&suite, &["-n", "1"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("the zygote died during the run (killed by signal 9 (SIGKILL))"), "{}", r.dump());
}
