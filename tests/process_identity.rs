//! A worker looks like pytest's own process to the code under test: a
//! probe test sees the same `__main__`, `sys.argv`, signal handlers, stdin,
//! umask and `RPYTEST*` variables under `rpytest -n 2` as under
//! `python -m pytest` (the fields that may differ are named, with their
//! reasons), with forked and with spawned workers; multiprocessing with
//! every start method, pytester in-process and in a subprocess, and an inner
//! `python -m pytest` or `rpytest` give pytest's outcomes. The daemon's warm
//! zygotes are checked in `warm_daemon.rs`.

mod common;
use common::probe::*;
use common::*;

/// A variable the user set for rpytest itself: it stays, as under pytest.
const USER_VAR: (&str, &str) = ("RPYTEST_DEFAULT_WORKERS", "2");

/// Runs the probe under `python -m pytest` and `rpytest -n 2`, with the
/// same pytest arguments (rpytest passes on all but its own `--python` and
/// `-n`), and compares.
fn probe_both(suite: &Suite, extra: &[&str], allowed: &[(&str, &str)], what: &str) -> RunResult {
    probe_both_with(suite, extra, &[], &[], allowed, what)
}

/// `probe_both` with flags for rpytest alone and more variables for both.
fn probe_both_with(
    suite: &Suite,
    extra: &[&str],
    rpytest_only: &[&str],
    more_env: &[(&str, &str)],
    allowed: &[(&str, &str)],
    what: &str,
) -> RunResult {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("probe.json");
    let env = [&[("PROBE_OUT", out.to_str().unwrap()), USER_VAR], more_env].concat();
    let mut args: Vec<String> = ["-m", "pytest", "--color=no", "-p", "no:cacheprovider", "-q"].map(String::from).into();
    args.extend(extra.iter().map(|s| s.to_string()));
    let pytest = run_command(&python(), &args, suite.path(), &env);
    assert_eq!(pytest.code, 0, "{what}: pytest itself\n{}", pytest.dump());
    let under_pytest = read_probe(&out, "pytest");
    let rpytest = run_rpytest_env(suite, &[&["-q", "-n", "2"], rpytest_only, extra].concat(), &env);
    assert_clean_exit(&rpytest);
    assert_eq!(rpytest.code, 0, "{what}\n{}", rpytest.dump());
    let under_rpytest = read_probe(&out, "rpytest");
    assert_probes_match(&under_pytest, &under_rpytest, allowed, what);
    assert_xdist_identity(&under_rpytest, 2);
    // What the comparison rests on, stated once.
    let main_file = under_pytest["main_file"].as_str().unwrap();
    assert!(main_file.ends_with("pytest/__main__.py"), "{main_file}");
    assert_eq!(under_pytest["main_spec_name"], "pytest.__main__");
    assert_eq!(under_pytest["argv"][0], main_file);
    assert_eq!(under_pytest["rpytest_env"][USER_VAR.0], USER_VAR.1);
    rpytest
}

/// `-s`: output reaches the terminal (a pipe on CI) as it is printed.
const LIVE_OUTPUT: (&str, &str) =
    ("stdout_line_buffering", "under -s rpytest line-buffers stdout, so a piped terminal shows output as printed");

#[test]
fn a_forked_worker_looks_like_pytests_own_process() {
    let suite = Suite::new(&[("test_probe.py", PROBE_TEST)]);
    probe_both(&suite, &[], &[XDIST_IDENTITY], "captured");
    probe_both(&suite, &["-s"], &[XDIST_IDENTITY, LIVE_OUTPUT], "-s");
}

#[test]
fn a_spawned_worker_looks_like_pytests_own_process() {
    // A thread alive after configure makes the engine spawn its workers.
    let conftest = "import threading\n\n\
                    def pytest_configure(config):\n    threading.Thread(target=threading.Event().wait, daemon=True).start()\n";
    let suite = Suite::new(&[("conftest.py", conftest), ("test_probe.py", PROBE_TEST)]);
    let r = probe_both(&suite, &[], &[XDIST_IDENTITY], "spawned");
    assert!(r.stderr.contains("start with spawn"), "the workers were not spawned\n{}", r.dump());
}

/// The variables behind rpytest's own settings (retries, sharding, shared
/// session fixtures) are gone too, forked and spawned; the user's stay.
#[test]
fn rpytest_settings_leave_no_engine_variable_behind() {
    let flags = ["--retries", "1", "--shard", "0", "--total-shards", "1"];
    let shared = [("RPYTEST_SHARED_SESSION_FIXTURES", "token")];
    let fixture = "import threading\n\nimport pytest\n\n@pytest.fixture(scope='session')\ndef token():\n    return 1\n";
    let thread =
        "\ndef pytest_configure(config):\n    threading.Thread(target=threading.Event().wait, daemon=True).start()\n";
    for (conftest, what) in [(fixture.to_string(), "forked"), (format!("{fixture}{thread}"), "spawned")] {
        let suite = Suite::new(&[("conftest.py", &conftest), ("test_probe.py", PROBE_TEST)]);
        probe_both_with(&suite, &[], &flags, &shared, &[XDIST_IDENTITY], what);
    }
}

const MULTIPROCESSING_TESTS: &str = r#"
import multiprocessing
import os

import pytest

METHODS = ["fork", "spawn", "forkserver"]


def square(x):
    return x * x


def sockets():
    """The sockets this process holds, by inode."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.mark.parametrize("method", METHODS)
def test_pool_map(method):
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert pool.map(square, range(20)) == [x * x for x in range(20)]


@pytest.mark.parametrize("method", METHODS)
def test_children_hold_none_of_our_sockets(method):
    ours = sockets()
    with multiprocessing.get_context(method).Pool(1) as pool:
        theirs = pool.apply(sockets)
    assert not ours & theirs


@pytest.mark.parametrize("method", METHODS)
def test_process_exit_code(method):
    child = multiprocessing.get_context(method).Process(target=square, args=(3,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
"#;

#[test]
fn multiprocessing_works_with_every_start_method() {
    // Python 3.12+ warns when a process with more than one OS thread
    // forks. A pool's handler threads, joined by the test before it, may
    // not have left the kernel yet when the next test forks: which test
    // runs next on a worker decides, under rpytest, xdist and pytest alike
    // (a worker has one thread of its own; checked), so the warning is
    // the suite's timing, not a difference to compare.
    let ini = "[pytest]\nfilterwarnings =\n    ignore:This process .* is multi-threaded:DeprecationWarning\n";
    let suite = Suite::new(&[("pytest.ini", ini), ("test_mp.py", MULTIPROCESSING_TESTS)]);
    let pair = assert_same(&suite, &[], "2");
    check(&pair, pair.rpytest.counts().get("passed") == Some(&9), "all nine pass");
}

const PYTESTER_TESTS: &str = r#"
INNER = """
import pytest

def test_ok():
    pass

def test_fails():
    assert 0

@pytest.mark.skip(reason="no")
def test_skipped():
    pass

@pytest.mark.xfail
def test_xfails():
    assert 0
"""


def test_in_process(pytester):
    pytester.makepyfile(INNER)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    assert result.ret == 1


def test_in_a_subprocess(pytester):
    pytester.makepyfile(INNER)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    assert result.ret == 1


def test_inline_run(pytester):
    pytester.makepyfile(INNER)
    reprec = pytester.inline_run()
    reprec.assertoutcome(passed=1, failed=1, skipped=2)  # xfail counts as skipped here
"#;

#[test]
fn pytester_works_in_a_worker() {
    let suite = Suite::new(&[("conftest.py", "pytest_plugins = ['pytester']\n"), ("test_plugin.py", PYTESTER_TESTS)]);
    let pair = assert_same(&suite, &[], "2");
    check(&pair, pair.rpytest.counts().get("passed") == Some(&3), "all three pass");
}

const INNER_RUN_TESTS: &str = r#"
import os
import subprocess
import sys

import pytest

INNER = "def test_one():\n    pass\n\ndef test_two():\n    assert 0\n"


@pytest.fixture
def inner(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    return tmp_path


def run(command, cwd):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    return done


def test_python_m_pytest(inner):
    run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], inner)


def test_rpytest(inner):
    rpytest = os.environ["INNER_RPYTEST"]
    run([rpytest, "--no-daemon", "--python", sys.executable, "-p", "no:cacheprovider", "-n", "2"], inner)
"#;

#[test]
fn a_test_can_run_pytest_or_rpytest_in_a_subprocess() {
    let suite = Suite::new(&[("test_inner_runs.py", INNER_RUN_TESTS)]);
    let bin = rpytest_bin();
    let env = [("INNER_RPYTEST", bin.to_str().unwrap())];
    let args: Vec<String> = ["-m", "pytest", "-p", "no:cacheprovider", "-v"].map(String::from).into();
    let pytest = run_command(&python(), &args, suite.path(), &env);
    let rpytest = run_rpytest_env(&suite, &["-n", "2"], &env);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    check(&pair, pair.rpytest.counts().get("passed") == Some(&2), "both pass");
}

/// `sys.argv[0]` is pytest's `__main__.py`, yet a usage error names rpytest
/// on every pytest version (their parsers take the name in different ways).
#[test]
fn usage_errors_still_name_rpytest() {
    let suite = Suite::new(&[("test_one.py", "def test_one():\n    pass\n")]);
    let r = run_rpytest(&suite, &["--no-such-option"]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("usage: rpytest [options]"), "{}", r.dump());
    assert!(r.stderr.contains("rpytest: error: unrecognized arguments: --no-such-option"), "{}", r.dump());
    assert!(!r.stderr.contains("__main__.py"), "{}", r.dump());
}
