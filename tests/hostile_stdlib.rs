//! Issue #23: tests that patch the standard library rpytest itself runs on
//! (`socket`, `select`, `os`) and leave the patch in place, as hostile
//! tests do, or hold it with `monkeypatch` across tests. Under pytest such a
//! patch breaks only the tests that use it; rpytest must run on, with
//! pytest's outcomes and exit code. A patch at module level runs in the
//! zygote while it collects (the workers are forked after it); one in a
//! test body runs in a worker between two of rpytest's own messages.
//! Also here: a test may `os.setsid()` (a worker leads no process group),
//! and its processes are still found and ended.

mod common;
use common::*;

const BROKEN: &str = "\
import os, select, socket
import pytest

def broken(*args, **kwargs):
    raise OSError('broken by the test suite')

class BrokenSocket:
    def __init__(self, *args, **kwargs):
        raise OSError('no sockets here')

def mute(self, data, *flags):
    return None

def say_sent(self, data, *flags):
    return len(data)

def hear_nothing(self, size, *flags):
    return b''
";

const THREE_TESTS: &str =
    "\n\ndef test_one():\n    pass\n\ndef test_two():\n    pass\n\ndef test_three():\n    assert 0\n";

/// pytest and rpytest (and xdist, when installed) agree test by test, on
/// the counts and on the exit code.
fn assert_like_pytest_and_xdist(suite: &Suite, workers: &str) {
    let pair = assert_same(suite, &[], workers);
    assert!(!pair.pytest.outcomes.is_empty(), "{}", pair.dump());
    if skip_without_xdist("comparing a patched standard library with xdist") {
        return;
    }
    let xdist = run_pytest(suite, &["-v", "-n", workers]);
    assert_eq!(xdist.code, pair.rpytest.code, "exit codes differ\n{}\n{}", xdist.dump(), pair.rpytest.dump());
    assert_eq!(xdist.final_line, pair.rpytest.final_line, "{}\n{}", xdist.dump(), pair.rpytest.dump());
}

#[test]
fn patches_at_module_level_break_neither_the_zygote_nor_the_forked_workers() {
    // Each its own suite: a module-level patch holds for everything after it.
    let patches = [
        // The engine waited forever for a `collected` a no-op sendall swallowed.
        "socket.socket.sendall = mute\nsocket.socket.send = say_sent\nsocket.socket.recv = hear_nothing",
        // Every worker failed to connect: "workers keep dying".
        "socket.socket = BrokenSocket",
        // INTERNALERROR in the zygote's wait loop.
        "select.select = broken",
        // INTERNALERROR in pytest's create_cleanup_lock (the shared basetemp).
        "os.write = broken\nos.read = broken",
    ];
    for patch in patches {
        let module = format!("{BROKEN}\n{patch}\n{THREE_TESTS}");
        let suite = Suite::new(&[("test_patched_at_import.py", &module)]);
        assert_like_pytest_and_xdist(&suite, "2");
    }
}

#[test]
fn patches_left_by_test_bodies_or_held_by_monkeypatch_break_no_worker() {
    let left = format!(
        "{BROKEN}\n\
         def test_socket_methods():\n    socket.socket.sendall = mute\n    socket.socket.send = say_sent\n    \
         socket.socket.recv = hear_nothing\n\n\
         def test_socket_class():\n    socket.socket = BrokenSocket\n\n\
         def test_select():\n    select.select = broken\n\n\
         def test_os():\n    os.write = broken\n    os.read = broken\n\n\
         def test_still_runs():\n    pass\n\n\
         def test_still_fails():\n    assert 0\n"
    );
    // Held across the module's tests, undone at its end.
    let held = format!(
        "{BROKEN}\n\
         @pytest.fixture(scope='module', autouse=True)\n\
         def hostile():\n    with pytest.MonkeyPatch.context() as mp:\n        \
         mp.setattr(socket.socket, 'sendall', mute)\n        mp.setattr(socket.socket, 'recv', hear_nothing)\n        \
         mp.setattr(socket, 'socket', BrokenSocket)\n        mp.setattr(select, 'select', broken)\n        \
         mp.setattr(os, 'write', broken)\n        yield\n\n\
         def test_held_one(monkeypatch):\n    monkeypatch.setattr(os, 'read', broken)\n\n\
         def test_held_two():\n    pass\n\n\
         def test_held_three():\n    assert 0\n"
    );
    let suite = Suite::new(&[("test_a_held.py", &held), ("test_b_left.py", &left)]);
    // One worker: every test after a patch runs in the patched process.
    assert_like_pytest_and_xdist(&suite, "1");
    let spawned = run_rpytest(&suite, &["-n", "1", "--worker-start=spawn"]);
    assert_clean_exit(&spawned);
    assert_eq!(spawned.final_line.as_deref(), Some("2 failed, 7 passed"), "{}", spawned.dump());
}

/// Defect 6: `os.setsid()` failed with EPERM, the worker leading a process
/// group. It works under xdist (plain pytest, itself a group leader in this
/// harness, fails it too). A test that made its own session is still
/// watched: its leaked child is found, and a hang in it is stopped with
/// everything it started.
#[test]
fn a_test_may_start_its_own_session_and_its_processes_are_still_ended() {
    let marker = format!("rpytest-setsid-{}", std::process::id());
    let code = format!(
        "import os, subprocess, sys, time\n\n\
         CHILD = [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}']\n\n\
         def test_new_session_leaves_a_child():\n    os.setsid()\n    \
         assert os.getsid(0) == os.getpid() == os.getpgid(0)\n    subprocess.Popen(CHILD)\n\n\
         def test_after():\n    pass\n"
    );
    let suite = Suite::new(&[("test_session.py", &code)]);
    for start in ["fork", "spawn"] {
        let r = run_rpytest(&suite, &["-n", "2", "-v", &format!("--worker-start={start}")]);
        assert_clean_exit(&r);
        assert_eq!(r.code, 0, "{}", r.dump());
        assert_eq!(r.final_line.as_deref(), Some("2 passed"), "{}", r.dump());
        assert!(r.stdout.contains("LEAK test_session.py::test_new_session_leaves_a_child"), "{}", r.dump());
        assert_eq!(none_left(&marker), [], "a leaked process outlived the run\n{}", r.dump());
    }
    if !skip_without_xdist("comparing os.setsid() with xdist") {
        let xdist = run_pytest(&suite, &["-v", "-n", "2"]);
        // xdist leaves the child running: end it.
        let leaked: Vec<i32> = with_marker(&marker).into_iter().map(|(pid, _)| pid as i32).collect();
        leaked.iter().for_each(|&pid| drop(std::process::Command::new("kill").arg(pid.to_string()).status()));
        assert_eq!(xdist.final_line.as_deref(), Some("2 passed"), "{}", xdist.dump());
    }

    let marker = format!("rpytest-setsid-hang-{}", std::process::id());

    let hang = format!(
        "import os, subprocess, sys, time\n\n\
         def test_hangs_in_its_own_session():\n    os.setsid()\n    \
         subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n    time.sleep(60)\n\n\
         def test_after():\n    pass\n"
    );
    let suite = Suite::new(&[("test_hang.py", &hang)]);
    let r = run_rpytest(&suite, &["-n", "1", "-v", "--timeout=1"]);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 1 passed"), "{}", r.dump());
    assert!(r.stdout.contains("Timeout (>1.0s)"), "{}", r.dump());
    assert_eq!(none_left(&marker), [], "a timed-out test's processes outlived the run\n{}", r.dump());
}
