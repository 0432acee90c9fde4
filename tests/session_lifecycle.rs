//! The end of the session is pytest's own, in the process where the user's
//! `pytest_configure` ran: the zygote replays the run's reports and lets
//! pytest finish the session there. So an exit status set or raised in
//! `pytest_sessionfinish` is the run's, a thread started at configure time
//! is alive at sessionfinish, junit keeps every test after a skipped module,
//! and disabling any built-in plugin works as it does in pytest.

mod common;
use common::*;

const GOOD_TESTS: &str = "def test_a():\n    pass\n\ndef test_b():\n    pass\n\ndef test_c():\n    pass\n";

#[test]
fn the_exit_status_left_by_sessionfinish_is_the_runs() {
    for (body, expected) in
        [("session.exitstatus = 3", 3), ("raise RuntimeError('the end failed')", 1), ("import os; os._exit(7)", 7)]
    {
        let conftest = format!("def pytest_sessionfinish(session, exitstatus):\n    {body}\n");
        let suite = Suite::new(&[("conftest.py", &conftest), ("test_good.py", GOOD_TESTS)]);
        let pytest = run_pytest(&suite, &["-v"]);
        assert_eq!(pytest.code, expected, "pytest itself\n{}", pytest.dump());
        for workers in ["1", "2"] {
            let r = run_rpytest(&suite, &["-n", workers]);
            assert_clean_exit(&r);
            assert_eq!(r.code, expected, "{body}: rpytest -n {workers} exits as pytest does\n{}", r.dump());
            assert_eq!(r.outcomes, pytest.outcomes, "{}", r.dump());
        }
    }
}

/// Without junit or the cache nothing consumes the replayed reports, so the
/// zygote skips rebuilding them; the session's failure count must not care.
#[test]
fn sessionfinish_sees_pytests_failure_count_with_or_without_report_consumers() {
    let conftest = "def pytest_sessionfinish(session):\n    print('TESTSFAILED', session.testsfailed)\n";
    let tests = "import pytest\n\ndef test_ok():\n    pass\n\ndef test_bad():\n    assert 0\n\n\
                 @pytest.fixture\ndef broken():\n    raise RuntimeError\n\ndef test_error(broken):\n    pass\n\n\
                 @pytest.mark.xfail\ndef test_xfail():\n    assert 0\n";
    let suite = Suite::new(&[("conftest.py", conftest), ("test_count.py", tests)]);
    for extra in [&["-p", "no:cacheprovider"][..], &[][..]] {
        let args: Vec<&str> = ["-s"].iter().chain(extra).copied().collect();
        let pytest = run_pytest(&suite, &args);
        let expected = testsfailed(&pytest.stdout);
        assert_eq!(expected.as_deref(), Some("TESTSFAILED 2"), "pytest itself\n{}", pytest.dump());
        let r = run_rpytest(&suite, &[&["-n", "2"][..], &args].concat());
        let seen = testsfailed(&r.stdout);
        assert_eq!(seen, expected, "{extra:?}\n{}", r.dump());
    }
}

/// A `--durations` line: they vary from run to run; only their place matters.
fn is_timing(line: &str) -> bool {
    let phase = line.split_whitespace().nth(1);
    line.contains("durations") || phase.is_some_and(|w| ["setup", "call", "teardown"].contains(&w))
}

/// The conftest's line (after progress characters, under `-s`).
fn testsfailed(stdout: &str) -> Option<String> {
    stdout.find("TESTSFAILED").map(|at| stdout[at..].lines().next().unwrap_or_default().to_owned())
}

#[test]
fn a_thread_started_at_configure_is_alive_at_sessionfinish() {
    let conftest = r#"
        import queue, threading

        jobs = queue.Queue()

        def drain():
            while True:
                item = jobs.get()
                jobs.task_done()
                if item is None:
                    return

        def pytest_configure(config):
            threading.Thread(target=drain, daemon=True).start()

        def pytest_sessionfinish(session):
            jobs.put(None)
            jobs.join()  # hangs if this process has no drain thread
    "#;
    let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
    // The thread makes a default run spawn (`--worker-start fork` would
    // fork past it, and a forked worker's sessionfinish would wait for a
    // drain thread it does not have).
    for start in [&[][..], &["--worker-start", "spawn"][..]] {
        let r = run_rpytest(&suite, &[&["-n", "2"][..], start].concat());
        assert_clean_exit(&r);
        assert_eq!((r.code, r.final_line.as_deref()), (0, Some("3 passed")), "{start:?}\n{}", r.dump());
    }
}

#[test]
fn junit_keeps_every_test_after_a_skipped_or_broken_module() {
    let suite = Suite::new(&[
        ("tests/test_skipmod.py", "import pytest\npytest.skip('no db', allow_module_level=True)\n"),
        ("tests/test_importorskip.py", "import pytest\npytest.importorskip('module_that_is_not_there')\n"),
        ("tests/test_broken.py", "import module_that_is_not_there\n"),
        ("tests/test_good.py", GOOD_TESTS),
    ]);
    let args = ["--continue-on-collection-errors", "--junitxml=junit.xml"];
    let pytest = run_pytest(&suite, &args);
    let expected = parse_junit(&suite.join("junit.xml"));
    assert!(expected.cases.iter().any(|(class, name, _)| class == "tests.test_good" && name == "test_a"));
    for workers in ["1", "2", "4"] {
        let r = run_rpytest(&suite, &[&["-n", workers], &args[..]].concat());
        assert_eq!(r.code, pytest.code, "{}", r.dump());
        assert_eq!(parse_junit(&suite.join("junit.xml")), expected, "-n {workers}\n{}", r.dump());
    }
}

#[test]
fn every_builtin_plugin_can_be_disabled_as_in_pytest() {
    let suite = Suite::new(&[
        ("test_good.py", GOOD_TESTS),
        ("test_tmp.py", "def test_tmp(tmp_path):\n    assert tmp_path.is_dir()\n"),
    ]);
    for plugin in [
        "cacheprovider",
        "junitxml",
        "tmpdir",
        "logging",
        "capture",
        "warnings",
        "threadexception",
        "unraisableexception",
        "legacypath",
        "faulthandler",
        "stepwise",
        "doctest",
        "python_path",
        "pastebin",
        "setuponly",
        "setupplan",
        "skipping",
        "monkeypatch",
        "recwarn",
        "debugging",
        "assertion",
    ] {
        let pair = assert_same(&suite, &["-p", &format!("no:{plugin}")], "2");
        check(&pair, pair.pytest.code != 3 && pair.rpytest.code != 3, &format!("-p no:{plugin}: no internal error"));
    }
}

#[test]
fn a_real_projects_addopts_disabling_builtins_runs() {
    // The combination that crashed on a real project (`_tmp_path_factory`).
    let suite = Suite::new(&[
        (
            "pytest.ini",
            "[pytest]\naddopts = -p no:tmpdir -p no:logging -p no:threadexception -p no:legacypath --capture=sys\n",
        ),
        ("test_good.py", GOOD_TESTS),
    ]);
    for start in ["fork", "spawn"] {
        assert_same_with(&suite, &[], &["-n", "2", "--worker-start", start]);
    }
}

#[test]
fn threads_alive_at_fork_time_make_the_run_spawn_and_say_so() {
    let conftest = r#"
        import sys, threading, time

        def noisy():
            while True:
                sys.stderr.write("")
                time.sleep(0.0001)

        def pytest_configure(config):
            threading.Thread(target=noisy, daemon=True, name="noisy-logger").start()
    "#;
    let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("3 passed")), "{}", r.dump());
    assert!(r.stderr.contains("1 thread(s) running after collection (noisy-logger)"), "{}", r.dump());
}

#[test]
fn a_worker_that_never_connects_is_stopped_and_the_run_ends() {
    // Every forked worker blocks before it can say hello (as one that
    // inherited a held lock would).
    let conftest = r#"
        import os, time

        os.register_at_fork(after_in_child=lambda: time.sleep(3600))
    "#;
    let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
    let r = run_rpytest_env(&suite, &["-n", "1"], &[("RPYTEST_WORKER_CONNECT_TIMEOUT", "1")]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert!(r.stderr.contains("did not connect within 1s; stopping it"), "{}", r.dump());
    assert!(r.stderr.contains("workers keep dying before running a test"), "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("3 failed"), "{}", r.dump());
}

/// `pytest_terminal_summary` from a conftest and from a plugin module run
/// where pytest runs them, with the terminal reporter's `stats` filled and
/// the session's exit status, and their text lands where pytest prints it:
/// after the junit line, before the durations and the short summary.
#[test]
fn plugins_terminal_summaries_print_in_pytests_place() {
    let summary = |title: &str| {
        format!(
            "def pytest_terminal_summary(terminalreporter, exitstatus, config):\n    \
             terminalreporter.write_sep('-', '{title}')\n    \
             stats = terminalreporter.stats\n    \
             terminalreporter.write_line(f'exit {{exitstatus}} passed {{len(stats.get(\"passed\", []))}} \
             failed {{len(stats.get(\"failed\", []))}} skipped {{len(stats.get(\"skipped\", []))}}')\n"
        )
    };
    let tests = "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n\n\
                 def test_c():\n    assert 0\n\ndef test_d():\n    pytest.skip('no')\n";
    let suite = Suite::new(&[
        ("conftest.py", &summary("conftest summary")),
        ("myplugin.py", &summary("plugin summary")),
        ("test_s.py", tests),
    ]);
    let args = ["-p", "myplugin", "--junitxml=j.xml", "--durations=1", "-rfE"];
    let between = |out: &str| -> String {
        let start = out.find("generated xml file").expect("junit line");
        let end = out.find("short test summary info").expect("short summary");
        let block = &out[start..end];
        block.lines().skip(1).filter(|l| !is_timing(l) && !l.trim().is_empty()).collect::<Vec<_>>().join("\n")
    };
    let pytest_args: Vec<String> =
        ["-m", "pytest", "-p", "no:cacheprovider"].iter().chain(&args).map(|a| a.to_string()).collect();
    let pytest = run_command(&python(), &pytest_args, suite.path(), &[("PYTHONPATH", ".")]);
    let expected = between(&pytest.stdout);
    assert!(expected.contains("exit 1 passed 2 failed 1 skipped 1"), "{}", pytest.dump());
    for workers in ["1", "2"] {
        let r = run_rpytest_env(&suite, &[&["-n", workers][..], &args].concat(), &[("PYTHONPATH", ".")]);
        assert_eq!(between(&r.stdout), expected, "-n {workers}\n{}", r.dump());
    }
}

/// A conftest's `pytest_sessionfinish` that sets `session.exitstatus = 3`
/// does not silence its `pytest_terminal_summary`: pytest's terminal
/// reporter decides on the status its own hook was called with (and passes
/// that one on). Forked, and spawned because the conftest starts a thread;
/// compared with pytest and xdist, exit code included.
#[test]
fn a_summary_prints_when_sessionfinish_sets_the_exit_status() {
    let conftest = r#"
        import threading

        IDLE = threading.Event()

        def pytest_configure(config):
            if config.getoption("--start-thread"):
                threading.Thread(target=IDLE.wait, name="conftest-idle", daemon=True).start()

        def pytest_addoption(parser):
            parser.addoption("--start-thread", action="store_true")

        def pytest_sessionfinish(session, exitstatus):
            session.exitstatus = 3

        def pytest_terminal_summary(terminalreporter, exitstatus, config):
            terminalreporter.write_line(f"CONFTEST SUMMARY exitstatus={exitstatus}")
    "#;
    let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
    let line = |r: &RunResult| r.stdout.lines().find(|l| l.starts_with("CONFTEST SUMMARY")).map(str::to_owned);
    let pytest = run_pytest(&suite, &[]);
    assert_eq!(
        (pytest.code, line(&pytest).as_deref()),
        (3, Some("CONFTEST SUMMARY exitstatus=0")),
        "{}",
        pytest.dump()
    );
    if has_xdist() {
        let xdist = run_pytest(&suite, &["-n", "2", "--start-thread"]);
        assert_eq!((xdist.code, line(&xdist)), (3, line(&pytest)), "pytest -n 2\n{}", xdist.dump());
    }
    for (extra, start) in [(&[][..], "fork"), (&["--start-thread"][..], "spawn")] {
        let r = run_rpytest(&suite, &[&["-n", "2"][..], extra].concat());
        assert_clean_exit(&r);
        assert_eq!(r.stderr.contains("start with spawn"), start == "spawn", "{}", r.dump());
        assert_eq!((r.code, line(&r)), (3, line(&pytest)), "{start}\n{}", r.dump());
        assert_eq!(r.final_line, pytest.final_line, "{}", r.dump());
    }
}

/// A plugin's attribute on a passing report (pytest-html's `extras`, say)
/// reaches the plugins in the process where the session ends, as it does
/// in xdist's controller: a passing phase is sent compact only when it
/// carries nothing but pytest's own fields.
#[test]
fn attributes_plugins_attach_to_passing_reports_reach_the_session() {
    let conftest = r#"
        import pytest

        seen = []

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            report = outcome.get_result()
            if report.when == "call":
                report.extras = [{"name": item.name}]

        def pytest_runtest_logreport(report):
            if report.when == "call":
                seen.append(getattr(report, "extras", None))

        def pytest_sessionfinish(session):
            if not hasattr(session.config, "workerinput"):
                print("EXTRAS", sorted(e[0]["name"] for e in seen if e))
    "#;
    let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
    let pytest = run_pytest(&suite, &["-s"]);
    let expected = pytest.stdout.find("EXTRAS").map(|at| pytest.stdout[at..].lines().next().unwrap().to_owned());
    assert_eq!(expected.as_deref(), Some("EXTRAS ['test_a', 'test_b', 'test_c']"), "{}", pytest.dump());
    for workers in ["1", "2"] {
        let r = run_rpytest(&suite, &["-n", workers, "-s"]);
        let seen = r.stdout.find("EXTRAS").map(|at| r.stdout[at..].lines().next().unwrap().to_owned());
        assert_eq!(seen, expected, "-n {workers}\n{}", r.dump());
    }
}

/// Plugins written for pytest-xdist split their work across its node
/// lifecycle: `pytest_configure_node` adds to a worker's `workerinput`, a
/// worker's `pytest_sessionfinish` leaves `workeroutput`, and the
/// controller's `pytest_testnodedown` collects it. They must find it, with
/// pytest-xdist installed (where `pytest -n 2` is the oracle) and without.
#[test]
fn xdist_node_hooks_carry_workerinput_and_workeroutput() {
    let conftest = r#"
        import json
        import pytest

        @pytest.hookimpl(optionalhook=True)
        def pytest_configure_node(node):
            node.workerinput["greeting"] = "hello " + node.gateway.id

        def pytest_runtest_logreport(report):
            config = pytest_runtest_logreport.config
            if hasattr(config, "workerinput") and report.when == "call":
                config.ran = getattr(config, "ran", 0) + 1

        def pytest_configure(config):
            pytest_runtest_logreport.config = config
            config.nodes = []

        def pytest_sessionfinish(session):
            config = session.config
            if hasattr(config, "workerinput"):
                config.workeroutput["ran"] = getattr(config, "ran", 0)
                print("WORKER SESSIONFINISH OUTPUT")
            elif config.nodes:
                with open("nodes.json", "w") as f:
                    json.dump({"nodes": len(config.nodes), "ran": sum(config.nodes)}, f)

        @pytest.hookimpl(optionalhook=True)
        def pytest_testnodedown(node, error):
            node.config.nodes.append(node.workeroutput["ran"])
    "#;
    let tests = "def test_greeting(request):\n    wi = getattr(request.config, 'workerinput', None)\n    \
                 assert wi is None or wi['greeting'] == 'hello ' + wi['workerid']\n\n\
                 def test_a():\n    pass\n\ndef test_b():\n    pass\n\ndef test_c():\n    pass\n";
    let suite = Suite::new(&[("conftest.py", &dedent(conftest)), ("test_nodes.py", tests)]);
    let expected = r#"{"nodes": 2, "ran": 4}"#;
    if has_xdist() {
        let xdist = run_pytest(&suite, &["-n", "2", "-p", "no:randomly"]);
        assert_eq!(xdist.code, 0, "pytest -n 2\n{}", xdist.dump());
        assert_eq!(std::fs::read_to_string(suite.join("nodes.json")).unwrap(), expected, "the oracle");
        std::fs::remove_file(suite.join("nodes.json")).unwrap();
    }
    let r = run_rpytest(&suite, &["-n", "2", "-s"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    let seen = std::fs::read_to_string(suite.join("nodes.json")).unwrap_or_default();
    assert_eq!(seen, expected, "{}", r.dump());
    assert!(!r.stdout.contains("WORKER SESSIONFINISH OUTPUT"), "as under xdist, not shown\n{}", r.dump());
}

/// The zygote ends without freeing its collected session (`quick_exit.py`),
/// but what a Python process does at exit happens as under pytest: a
/// non-daemon thread is joined, atexit functions run and print, the exit
/// status stands, and a file a conftest left open and unflushed keeps what
/// was written to it (with such a file open, the interpreter's own exit runs).
#[test]
fn what_a_process_does_at_exit_happens_as_under_pytest() {
    let conftest = r#"
        import atexit, os, threading, time

        HERE = os.path.dirname(os.path.abspath(__file__))
        UNFLUSHED = None

        def pytest_configure(config):
            global UNFLUSHED
            if os.environ.get("LEAVE_A_FILE_OPEN"):
                UNFLUSHED = open(os.path.join(HERE, "unflushed.log"), "a")

        def late_write():
            time.sleep(0.3)
            with open(os.path.join(HERE, "thread.txt"), "a") as f:
                f.write("joined\n")

        def pytest_unconfigure(config):
            if UNFLUSHED is not None:
                UNFLUSHED.write("written at unconfigure, never flushed\n")
            threading.Thread(target=late_write).start()
            atexit.register(print, "ATEXIT RAN")
    "#;
    for leave_open in ["", "1"] {
        let suite = Suite::new(&[("conftest.py", conftest), ("test_good.py", GOOD_TESTS)]);
        let env = [("LEAVE_A_FILE_OPEN", leave_open)];
        let pytest = run_command(&python(), &["-m".into(), "pytest".into()], suite.path(), &env);
        let pytest_files = exit_traces(&suite);
        assert_eq!(pytest.code, 0, "pytest itself\n{}", pytest.dump());
        let r = run_rpytest_env(&suite, &["-n", "2"], &env);
        assert_clean_exit(&r);
        assert_eq!(r.code, 0, "{}", r.dump());
        for (who, run) in [("pytest", &pytest), ("rpytest", &r)] {
            assert!(run.stdout.contains("ATEXIT RAN"), "{who}: the atexit function printed\n{}", run.dump());
        }
        assert_eq!(exit_traces(&suite), pytest_files.iter().map(|s| s.repeat(2)).collect::<Vec<_>>(), "{}", r.dump());
    }
}

/// What the exit left behind: the joined thread's file and the unflushed
/// log, each appended to by every run.
fn exit_traces(suite: &Suite) -> Vec<String> {
    ["thread.txt", "unflushed.log"]
        .iter()
        .map(|name| std::fs::read_to_string(suite.join(name)).unwrap_or_default())
        .collect()
}
