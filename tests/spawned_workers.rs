//! Spawned workers start as xdist's workers do: with the `workerinput` the
//! controller's `pytest_configure_node` hooks gave them (pytest-randomly's
//! seed, pytest-rerunfailures' database address), before any plugin is
//! configured; and the same tests collected in another order are the
//! zygote's tests, run in the zygote's order. A thread known to be safe to
//! fork past (pytest-rerunfailures' idle server) does not make a run spawn,
//! and `--worker-start fork` forks past any thread, with a warning.
//!
//! Each run is compared with `python -m pytest` and, where pytest-xdist is
//! installed, with `pytest -n 2`, exit code included. The plugins are in
//! the plugin stage's venv (`scripts/plugins.sh`); a test Python without
//! one skips the tests that need it, with a note.

mod common;
use common::*;

/// Three modules of six tests, which pytest-randomly shuffles (modules,
/// then tests): two processes that shuffle with seeds of their own agree
/// on the order once in (3! * 6!^3) runs. Every test records the seed it
/// ran under, by process.
fn shuffled_suite() -> Suite {
    let test = r#"
        import os
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(n, request):
            seed = request.config.getoption("randomly_seed", None)
            name = os.path.join(os.path.dirname(__file__), "seeds", str(os.getpid()))
            with open(name, "a") as f:
                f.write(f"{seed}\n")
    "#;
    let suite = Suite::new(&[("test_one.py", test), ("test_two.py", test), ("test_three.py", test)]);
    std::fs::create_dir(suite.join("seeds")).unwrap();
    suite
}

/// The seeds the tests ran under, whatever the process.
fn seeds_seen(suite: &Suite) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(suite.join("seeds")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        seen.extend(text.lines().map(str::to_owned));
    }
    std::fs::remove_dir_all(suite.join("seeds")).unwrap();
    std::fs::create_dir(suite.join("seeds")).unwrap();
    seen
}

/// The seed pytest-randomly's header line names.
fn header_seed(r: &RunResult) -> Option<String> {
    let at = r.stdout.find("Using --randomly-seed=")?;
    r.stdout[at + "Using --randomly-seed=".len()..].split_whitespace().next().map(str::to_owned)
}

/// `pytest -n 2 -v args` (with xdist), `python -m pytest -v args` and
/// `rpytest <rpytest_only> -v args` agree on outcomes (xdist: exit code and
/// counts); returns rpytest's run.
fn compare_all(suite: &Suite, args: &[&str], rpytest_only: &[&str]) -> RunResult {
    let xdist = has_xdist().then(|| run_pytest(suite, &[&["-n", "2", "-v"][..], args].concat()));
    let pair = assert_same_with(suite, args, rpytest_only);
    if let Some(xdist) = xdist {
        let same = Pair { pytest: xdist, rpytest: pair.rpytest.clone() };
        check(&same, same.pytest.code == same.rpytest.code, "exit code: pytest -n 2 vs rpytest");
        check(&same, same.pytest.final_line == same.rpytest.final_line, "final line: pytest -n 2 vs rpytest");
    }
    pair.rpytest
}

#[test]
fn spawned_workers_shuffle_with_the_zygotes_randomly_seed() {
    if skip_without_module("pytest_randomly", "spawned workers with pytest-randomly") {
        return;
    }
    let suite = shuffled_suite();
    let r = compare_all(&suite, &[], &["-n", "2", "--worker-start", "spawn"]);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("18 passed")), "{}", r.dump());
    assert!(!r.stderr.contains("different set of tests"), "{}", r.dump());
    let _ = seeds_seen(&suite); // pytest's and xdist's
    let r = run_rpytest(&suite, &["-n", "2", "--worker-start", "spawn"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let seed = header_seed(&r).unwrap_or_else(|| panic!("no seed in the header\n{}", r.dump()));
    assert_eq!(seeds_seen(&suite), [seed].into(), "every worker runs under the zygote's seed\n{}", r.dump());
}

/// The same tests in another order are the same tests: a plugin that
/// shuffles with a seed of each process's own (here a conftest, so no
/// workerinput can align them) still runs every test once, as the engine
/// sends them. (xdist refuses this run: "Different tests were collected
/// between gw0 and gw1"; pytest, one process, runs it.)
#[test]
fn a_worker_that_collects_the_same_tests_in_another_order_runs_them() {
    let conftest = r#"
        import os, random

        def pytest_collection_modifyitems(items):
            random.Random(os.getpid()).shuffle(items)
    "#;
    let test = "import pytest\n\n@pytest.mark.parametrize('n', range(12))\ndef test_n(n):\n    assert n != 7\n";
    let suite = Suite::new(&[("conftest.py", conftest), ("test_many.py", test)]);
    let r = assert_same_with(&suite, &[], &["-n", "2", "--worker-start", "spawn"]).rpytest;
    assert_eq!((r.code, r.final_line.as_deref()), (1, Some("1 failed, 11 passed")), "{}", r.dump());
    assert!(!r.stderr.contains("different set of tests"), "{}", r.dump());
}

/// pytest-rerunfailures starts its database server thread at configure
/// time whenever pytest-xdist is installed. Idle in accept(), it is safe
/// to fork past: the run forks (no spawn notice), and a flaky test is
/// rerun as under pytest. With pytest-randomly also installed and active,
/// the order is the zygote's either way.
#[test]
fn rerunfailures_server_thread_does_not_make_the_run_spawn() {
    if skip_without_module("pytest_rerunfailures", "the pytest-rerunfailures run") {
        return;
    }
    let test = r#"
        import os

        def test_flaky():
            mark = os.path.join(os.path.dirname(__file__), "flaky-ran")
            if not os.path.exists(mark):
                open(mark, "w").close()
                assert False, "first try"

        def test_a():
            pass

        def test_b():
            pass
    "#;
    let suite = Suite::new(&[("test_flaky.py", test)]);
    for args in [&["--reruns", "2", "-p", "no:randomly"][..], &["--reruns", "2"][..]] {
        for tool in ["pytest", "xdist", "rpytest"] {
            if tool == "xdist" && !has_xdist() {
                continue;
            }
            let _ = std::fs::remove_file(suite.join("flaky-ran"));
            let full: Vec<&str> = [args, &["-v"][..]].concat();
            let r = match tool {
                "pytest" => run_pytest(&suite, &full),
                "xdist" => run_pytest(&suite, &[&["-n", "2"][..], &full].concat()),
                _ => run_rpytest(&suite, &[&["-n", "2"][..], &full].concat()),
            };
            assert_eq!((r.code, r.final_line.as_deref()), (0, Some("3 passed, 1 rerun")), "{tool}\n{}", r.dump());
            if tool == "rpytest" {
                assert_clean_exit(&r);
                assert!(!r.stderr.contains("start with spawn"), "the server thread made it spawn\n{}", r.dump());
            }
        }
    }
}

/// `--worker-start fork` forks past any thread, saying so; without it the
/// same run spawns. pytest and xdist run it alike either way.
#[test]
fn worker_start_fork_given_forks_past_threads_with_a_warning() {
    let conftest = r#"
        import os, threading

        EVENT = threading.Event()

        def pytest_configure(config):
            config.zygote_pid = os.getpid()
            threading.Thread(target=EVENT.wait, name="idle-helper", daemon=True).start()
    "#;
    // A forked worker's session is the zygote's: it was configured in another process.
    let test = "import os\n\ndef test_started(pytestconfig):\n    \
                with open(os.path.join(os.path.dirname(__file__), 'started.txt'), 'a') as f:\n        \
                f.write('forked\\n' if pytestconfig.zygote_pid != os.getpid() else 'own\\n')\n\n\
                def test_b():\n    pass\n";
    let suite = Suite::new(&[("conftest.py", conftest), ("test_start.py", test)]);
    let started = || std::fs::read_to_string(suite.join("started.txt")).unwrap_or_default();
    let r = compare_all(&suite, &[], &["-n", "2", "--worker-start", "fork"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("--worker-start fork: forking past 1 thread(s)"), "{}", r.dump());
    assert!(r.stderr.contains("(idle-helper)"), "{}", r.dump());
    assert!(!r.stderr.contains("start with spawn"), "{}", r.dump());
    assert!(started().ends_with("forked\n"), "{}\n{}", started(), r.dump());
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("start with spawn"), "{}", r.dump());
    assert!(started().ends_with("own\n"), "{}\n{}", started(), r.dump());
}
