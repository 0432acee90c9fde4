//! A warm session serves new selections: `-k`, `-m`, `--deselect`, `-x`,
//! `--maxfail`, paths and node ids are applied in a fork of the session
//! the daemon collected, not part of its key. Each run must be warm and
//! equal `python -m pytest` with the same arguments, outcome by outcome;
//! a path the session did not collect runs cold and says why.

mod common;
use common::daemon::Daemon;
use common::*;

fn suite() -> Suite {
    Suite::new(&[
        ("pytest.ini", "[pytest]\nmarkers =\n    slow: slow\n"),
        ("conftest.py", "import pytest\n\n@pytest.fixture\ndef base():\n    return 10\n"),
        ("tests/__init__.py", ""),
        ("tests/a/__init__.py", ""),
        ("tests/a/conftest.py", "import pytest\n\n@pytest.fixture\ndef local():\n    return 'a'\n"),
        (
            "tests/a/test_one.py",
            r#"
            import pytest

            @pytest.mark.parametrize("n", [1, 2, 3])
            def test_param(n, base):
                assert n + base > 10

            @pytest.mark.slow
            def test_alpha_slow(local):
                assert local == "a"

            class TestGroup:
                def test_method(self):
                    pass

                def test_alpha_method(self):
                    pass
            "#,
        ),
        (
            "tests/b/test_two.py",
            r#"
            import pytest

            def test_alpha():
                pass

            def test_fail():
                assert 0

            @pytest.mark.slow
            def test_slow_b():
                pass

            def test_zeta():
                pass
            "#,
        ),
        ("check_extra.py", "def test_extra():\n    pass\n"),
    ])
}

fn rpytest_via(daemon: &Daemon, suite: &Suite, args: &[&str]) -> RunResult {
    let mut all = vec!["-p", "no:cacheprovider"];
    all.extend_from_slice(args);
    run_with_daemon(daemon, suite, &all)
}

/// `args` after rpytest's own `--python`, `--color=no` and `-v`.
fn run_with_daemon(daemon: &Daemon, suite: &Suite, args: &[&str]) -> RunResult {
    let all: Vec<String> = ["--python", python().to_str().unwrap(), "--color=no", "-v"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect();
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    run_command(&rpytest_bin(), &all, suite.path(), &env)
}

fn warm(result: &RunResult) -> bool {
    result.stderr.contains("daemon: warm zygote")
}

/// `args` after `-n <workers>` are pytest's.
fn assert_warm_and_same(daemon: &Daemon, suite: &Suite, args: &[&str]) {
    let rpytest = rpytest_via(daemon, suite, args);
    assert!(warm(&rpytest), "{args:?} was not served warm\n{}", rpytest.dump());
    let mut full = vec!["-v"];
    full.extend(&args[2..]);
    let pytest = run_pytest(suite, &full);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
}

#[test]
fn new_selections_fork_from_the_warm_session_and_equal_pytest() {
    let suite = suite();
    let daemon = Daemon::start(&[]);
    let first = rpytest_via(&daemon, &suite, &["-n", "2"]);
    assert!(!warm(&first), "{}", first.dump());
    daemon.wait_settled();
    let selections: &[&[&str]] = &[
        &["-n", "2"],
        &["-n", "2", "-k", "alpha"],
        &["-n", "2", "-m", "slow"],
        &["-n", "2", "-k", "not alpha", "-m", "not slow"],
        &["-n", "2", "tests/a"],
        &["-n", "2", "tests/a/test_one.py::TestGroup::test_method"],
        &["-n", "2", "tests/a/test_one.py::test_param[2]"],
        &["-n", "2", "tests/a/test_one.py::test_param"],
        &["-n", "2", "tests/b/test_two.py", "tests/a/test_one.py::TestGroup"],
        &["-n", "2", "--deselect", "tests/b/test_two.py::test_fail"],
        &["-n", "1", "-x"],
        &["-n", "1", "--maxfail", "1", "-k", "fail or zeta"],
    ];
    for args in selections {
        assert_warm_and_same(&daemon, &suite, args);
    }
}

#[test]
fn a_path_the_session_did_not_collect_runs_cold_and_says_why() {
    let suite = suite();
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "2"]);
    daemon.wait_settled();
    // Not a test_*.py file: pytest collects it only when named.
    let outside = rpytest_via(&daemon, &suite, &["-n", "2", "check_extra.py"]);
    assert!(!warm(&outside), "{}", outside.dump());
    assert!(
        outside.stderr.contains("rpytest: daemon: running cold: the warm session holds no test for"),
        "{}",
        outside.dump()
    );
    assert_eq!(outside.outcomes.keys().collect::<Vec<_>>(), ["check_extra.py::test_extra"], "{}", outside.dump());
    // The session for the whole suite stays: the next whole run is warm.
    std::thread::sleep(std::time::Duration::from_millis(300));
    daemon.wait_settled();
    assert_warm_and_same(&daemon, &suite, &["-n", "2"]);
    // A session built for some paths gives way to one for the whole suite
    // when a run needs more, and then serves both.
    let narrow = Daemon::start(&[]);
    rpytest_via(&narrow, &suite, &["-n", "2", "tests/a"]);
    narrow.wait_settled();
    assert_warm_and_same(&narrow, &suite, &["-n", "2", "tests/a"]);
    let wider = rpytest_via(&narrow, &suite, &["-n", "2", "tests"]);
    assert!(!warm(&wider), "{}", wider.dump());
    std::thread::sleep(std::time::Duration::from_millis(300));
    narrow.wait_settled();
    assert_warm_and_same(&narrow, &suite, &["-n", "2", "tests"]);
    assert_warm_and_same(&narrow, &suite, &["-n", "2", "tests/a"]);
    let unknown = rpytest_via(&daemon, &suite, &["-n", "2", "tests/b/test_two.py::test_nothing_like_it"]);
    assert!(!warm(&unknown), "{}", unknown.dump());
    assert_eq!(unknown.code, 4, "pytest's usage error for a node id it cannot find\n{}", unknown.dump());
}

/// The pid on `serve --status`'s line whose state starts with `state`.
fn pid_in_state(daemon: &Daemon, state: &str) -> Option<String> {
    let status = daemon.status().stdout;
    status.lines().find(|l| l.contains(&format!(": {state}"))).and_then(|l| {
        l.split_whitespace().skip_while(|w| *w != "pid").nth(1).map(|p| p.trim_end_matches(':').to_string())
    })
}

#[test]
fn a_conftest_edit_rebuilds_from_the_spare_without_starting_python_again() {
    let suite = suite();
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "2"]);
    daemon.wait_settled();
    let spare = wait_for_spare(&daemon);
    suite.write("conftest.py", "import pytest\n\n@pytest.fixture\ndef base():\n    return 9\n");
    let rebuilt = rpytest_via(&daemon, &suite, &["-n", "2"]);
    assert!(warm(&rebuilt), "{}", rebuilt.dump());
    assert!(rebuilt.stderr.contains("daemon: rebuilt the warm session"), "{}", rebuilt.dump());
    assert_eq!(
        pid_in_state(&daemon, "warm"),
        Some(spare),
        "the session was not built from the spare\n{}",
        daemon.status().dump()
    );
    assert_warm_and_same(&daemon, &suite, &["-n", "2"]);
}

/// stdout without the durations pytest prints (` in 0.12s`).
fn timeless(stdout: &str) -> String {
    let mut out = String::new();
    for line in stdout.lines() {
        let cut = line.find(" in ").filter(|_| line.trim_end_matches('=').trim_end().ends_with('s'));
        out.push_str(cut.map_or(line, |at| &line[..at]));
        out.push('\n');
    }
    out
}

#[test]
fn a_narrowed_run_prints_what_a_cold_run_prints() {
    let suite = suite();
    suite.write("pytest.ini", "[pytest]\ntestpaths = tests\nmarkers =\n    slow: slow\n");
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "1"]);
    daemon.wait_settled();
    for args in
        [&["-n", "1", "tests/a"][..], &["-n", "1", "-k", "alpha"], &["-n", "1", "tests/b/test_two.py::test_zeta"]]
    {
        let warm_run = rpytest_via(&daemon, &suite, args);
        assert!(warm(&warm_run), "{}", warm_run.dump());
        let mut cold_args = vec!["--no-daemon"];
        cold_args.extend_from_slice(args);
        let cold = rpytest_via(&daemon, &suite, &cold_args);
        assert!(!warm(&cold), "{}", cold.dump());
        assert_eq!(timeless(&warm_run.stdout), timeless(&cold.stdout), "{args:?}\n{}{}", warm_run.dump(), cold.dump());
    }
}

/// A warm session works pytest's fixture order out once, while it idles
/// (`fixture_order.py`): a run of the whole session, a run after an edit
/// re-collected a file, and a narrowed run must each run the tests in the
/// order a cold run does, which module- and class-scoped parametrized
/// fixtures make differ from the collection order.
#[test]
fn warm_runs_keep_pytests_fixture_order() {
    let module = r#"
        import pytest

        @pytest.fixture(scope="module", params=[1, 2])
        def mod(request):
            return request.param

        @pytest.fixture(scope="class", params=["a", "b"])
        def cls(request):
            return request.param

        def test_plain():
            pass

        def test_mod(mod):
            pass

        class TestC:
            def test_cls(self, cls, mod):
                pass

            def test_other(self, cls):
                pass

        def test_mod_again(mod):
            assert mod
        "#;
    let suite = Suite::new(&[("tests/test_one.py", module), ("tests/test_two.py", module)]);
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "1"]);
    daemon.wait_settled();
    std::thread::sleep(std::time::Duration::from_millis(500)); // the idle work, a few slices
    let same_as_cold = |args: &[&str]| {
        let warm_run = rpytest_via(&daemon, &suite, args);
        assert!(warm(&warm_run), "{}", warm_run.dump());
        let worked_out = warm_run.stderr.contains("fixture order of 22 items: worked out while idle");
        let cold = rpytest_via(&daemon, &suite, &[&["--no-daemon"], args].concat());
        assert_eq!(timeless(&warm_run.stdout), timeless(&cold.stdout), "{args:?}\n{}{}", warm_run.dump(), cold.dump());
        let at = |name: &str| warm_run.stdout.find(name).unwrap_or_else(|| panic!("{name}\n{}", warm_run.dump()));
        assert!(at("test_one.py::test_mod_again[1]") < at("test_one.py::test_mod[2]"), "{}", warm_run.dump());
        worked_out
    };
    assert!(same_as_cold(&["-n", "1"]), "the whole session's order was not worked out while it idled");
    suite.write("tests/test_two.py", &module.replace("assert mod", "assert mod != 2"));
    same_as_cold(&["-n", "1"]);
    same_as_cold(&["-n", "1", "-k", "mod"]);
}

#[test]
fn an_edited_test_file_is_collected_again_alone_and_the_run_stays_warm() {
    let suite = suite();
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "2"]);
    daemon.wait_settled();
    let source = std::fs::read_to_string(suite.join("tests/b/test_two.py")).unwrap();
    suite.write(
        "tests/b/test_two.py",
        &source.replace("def test_zeta():\n    pass", "def test_zeta():\n    assert 0, 'edited'"),
    );
    let edited = rpytest_via(&daemon, &suite, &["-n", "2"]);
    assert!(warm(&edited), "{}", edited.dump());
    assert!(
        edited.stderr.contains("daemon: re-collected") && edited.stderr.contains("test_two.py"),
        "{}",
        edited.dump()
    );
    let pytest = run_pytest(&suite, &["-v"]);
    assert_pair_same(&Pair { pytest, rpytest: edited });
    assert_warm_and_same(&daemon, &suite, &["-n", "2", "-k", "zeta"]);
}

/// Each run forks from the session, and a fork keeps only the thread that
/// forked: a session whose conftest started a thread serves no run (the
/// run's controller would end the session without it). Cold, and says so.
#[test]
fn a_session_with_a_conftest_thread_sends_runs_cold() {
    let suite = suite();
    suite.write(
        "conftest.py",
        "import queue, threading\nimport pytest\n\nQ = queue.Queue()\nT = threading.Thread(target=Q.get, name='conftest-worker')\n\n\
         def pytest_configure(config):\n    T.start()\n\ndef pytest_unconfigure(config):\n    Q.put(None)\n    T.join()\n\n\
         @pytest.fixture\ndef base():\n    return 10\n",
    );
    let daemon = Daemon::start(&[]);
    rpytest_via(&daemon, &suite, &["-n", "2"]);
    daemon.wait_settled();
    let run = rpytest_via(&daemon, &suite, &["-n", "2"]);
    assert!(!warm(&run), "{}", run.dump());
    assert!(run.stderr.contains("threads a fork would lose (conftest-worker)"), "{}", run.dump());
    assert_pair_same(&Pair { pytest: run_pytest(&suite, &["-v"]), rpytest: run });
}

/// The spare is pytest configured up to the conftests: the plugins are
/// loaded before the edit that rebuilds the session, and an edit to a
/// plugin it loaded makes it start afresh instead of serving the old one.
#[test]
fn a_spare_holds_the_plugins_and_never_an_edited_one() {
    let plugin = |answer: u32| {
        format!(
            "import os\nimport time\n\nimport pytest\n\nIMPORTED_NS = time.time_ns()\n\
             with open(os.environ['PLUGIN_AGE'] + '.imports', 'a') as log:\n    log.write(f'{{os.getpid()}} {{IMPORTED_NS}}\\n')\n\n\
             try:\n    import optional_dep\n    OPTIONAL = optional_dep.VALUE\nexcept ImportError:\n    OPTIONAL = None\n\n\
             @pytest.fixture\ndef answer():\n    return {answer}\n"
        )
    };
    let suite = Suite::new(&[
        ("tracked_plugin.py", &plugin(1)),
        ("conftest.py", "import pytest\n"),
        (
            "test_plugin.py",
            "import os\n\nimport tracked_plugin\n\n\
             def test_answer(answer):\n    open(os.environ['PLUGIN_AGE'], 'w').write(str(tracked_plugin.IMPORTED_NS))\n    \
             assert answer == 1\n\n\
             def test_optional():\n    assert tracked_plugin.OPTIONAL is None\n",
        ),
    ]);
    let age = suite.path().with_extension("age");
    let daemon = Daemon::start(&[]);
    let via = |args: &[&str]| {
        let python = python();
        let mut all = vec!["--python", python.to_str().unwrap(), "-p", "tracked_plugin", "-q"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        let env = [
            ("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()),
            ("RPYTEST_TRACE", "1"),
            ("PLUGIN_AGE", age.to_str().unwrap()),
        ];
        run_command(&rpytest_bin(), &all, suite.path(), &env)
    };
    via(&["-n", "1"]);
    daemon.wait_settled();
    let spare = wait_for_spare(&daemon);
    // The spare has imported the plugin (it then waits before the conftests).
    let imports = age.with_extension("age.imports");
    let deadline = std::time::Instant::now() + timeout();
    let spare_import = loop {
        let log = std::fs::read_to_string(&imports).unwrap_or_default();
        if let Some(line) = log.lines().find(|line| line.starts_with(&format!("{spare} "))) {
            break line.split(' ').nth(1).unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the spare did not load the plugin: {log}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    suite.write("conftest.py", "import pytest\n\n\n");
    let rebuilt = via(&["-n", "1"]);
    assert!(warm(&rebuilt) && rebuilt.code == 0, "{}", rebuilt.dump());
    let run_saw = std::fs::read_to_string(&age).unwrap();
    assert_eq!(
        run_saw,
        spare_import,
        "the session rebuilt after the edit imported the plugin again\n{}",
        rebuilt.dump()
    );
    // The plugin itself edited: the spare holds the old one and must not serve.
    daemon.wait_settled();
    wait_for_spare(&daemon);
    suite.write("tracked_plugin.py", &plugin(2));
    let replugged = via(&["-n", "1"]);
    assert_eq!(replugged.code, 1, "the old plugin's fixture answered\n{}", replugged.dump());
    assert!(replugged.stdout.contains("assert 2 == 1"), "{}", replugged.dump());
    // A module the plugin looked for and did not find appears on sys.path.
    suite.write("tracked_plugin.py", &plugin(1));
    via(&["-n", "1"]);
    daemon.wait_settled();
    wait_for_spare(&daemon);
    suite.write("optional_dep.py", "VALUE = 5\n");
    let found = via(&["-n", "1"]);
    assert_eq!(found.code, 1, "the plugin did not see the module that appeared\n{}", found.dump());
    assert!(found.stdout.contains("assert 5 is None"), "{}", found.dump());
    let _ = std::fs::remove_file(&age);
    let _ = std::fs::remove_file(&imports);
}

fn wait_for_spare(daemon: &Daemon) -> String {
    let deadline = std::time::Instant::now() + timeout();
    loop {
        if let Some(pid) = pid_in_state(daemon, "spare") {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no spare appeared\n{}", daemon.status().dump());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A suite with pytest's cache on: each step's run on `warm` goes through
/// the daemon, the same command on `cold` runs without it.
fn cache_suites() -> (Suite, Suite) {
    let files: &[(&str, &str)] = &[
        ("pytest.ini", "[pytest]\n"),
        (
            "test_a.py",
            "import os\n\ndef test_a():\n    assert not os.path.exists('fail_a')\n\ndef test_b():\n    pass\n",
        ),
        (
            "test_c.py",
            "import os\n\ndef test_c():\n    assert not os.path.exists('fail_c')\n\ndef test_d():\n    pass\n",
        ),
    ];
    (Suite::new(files), Suite::new(files))
}

fn run_cached(daemon: &Daemon, suite: &Suite, extra: &[&str], args: &[&str]) -> RunResult {
    run_with_daemon(daemon, suite, &[extra, args].concat())
}

/// What pytest keeps in its cache, without the date `--sw` stamps it with.
fn cache_files(suite: &Suite) -> String {
    let mut out = String::new();
    for name in ["lastfailed", "nodeids", "stepwise"] {
        let text = std::fs::read_to_string(suite.join(&format!(".pytest_cache/v/cache/{name}"))).unwrap_or_default();
        let dated = text.lines().filter(|line| !line.contains("last_cache_date"));
        out.push_str(&format!("{name}: {}\n", dated.collect::<Vec<_>>().join("")));
    }
    out
}

/// A warm run reads pytest's cache as it is when the run starts, not as it
/// was when the session was built: `--ff`, `--nf` and `--sw` are served
/// warm, and every run leaves the cache a cold run would leave.
#[test]
fn runs_that_read_the_cache_are_warm_and_leave_the_cold_cache() {
    let (warm_suite, cold_suite) = cache_suites();
    let daemon = Daemon::start(&[]);
    let first = run_cached(&daemon, &warm_suite, &[], &["-n", "1"]);
    assert!(!warm(&first), "{}", first.dump());
    run_cached(&daemon, &cold_suite, &["--no-daemon"], &["-n", "1"]);
    daemon.wait_settled();
    let steps: &[(&str, &[&str])] = &[
        ("fail_a", &["-n", "1", "-k", "test_a"]),
        ("", &["-n", "1", "-k", "test_b"]),
        ("fail_c", &["-n", "1", "--ff"]),
        ("", &["-n", "1", "--nf", "-k", "not test_b"]),
        ("fail_a", &["-n", "1", "--sw"]),
        ("", &["-n", "1", "--sw"]),
        ("fail_c", &["-n", "1", "--sw-skip"]),
        ("", &["-n", "1", "--ff"]),
    ];
    for (touch, args) in steps {
        if !touch.is_empty() {
            warm_suite.write(touch, "");
            cold_suite.write(touch, "");
        }
        assert_cache_step(&daemon, (&warm_suite, &cold_suite), args, true);
        for file in ["fail_a", "fail_c"] {
            let _ = std::fs::remove_file(warm_suite.join(file));
            let _ = std::fs::remove_file(cold_suite.join(file));
        }
    }
    // A file that failed to collect last time hands its failure to its
    // tests once it collects (pytest's LFPlugin.pytest_collectreport).
    warm_suite.write("test_e.py", "def test_e(:\n    pass\n");
    cold_suite.write("test_e.py", "def test_e(:\n    pass\n");
    assert_cache_step(&daemon, (&warm_suite, &cold_suite), &["-n", "1"], false);
    warm_suite.write("test_e.py", "def test_e():\n    pass\n");
    cold_suite.write("test_e.py", "def test_e():\n    pass\n");
    daemon.wait_settled();
    assert_cache_step(&daemon, (&warm_suite, &cold_suite), &["-n", "1", "-k", "not test_a"], true);
}

/// One command on both suites: the same output, exit code and cache.
fn assert_cache_step(daemon: &Daemon, (warm_suite, cold_suite): (&Suite, &Suite), args: &[&str], must_be_warm: bool) {
    let hot = run_cached(daemon, warm_suite, &[], args);
    let cold = run_cached(daemon, cold_suite, &["--no-daemon"], args);
    assert!(!must_be_warm || warm(&hot), "{args:?} was not served warm\n{}", hot.dump());
    // pytest 9's stepwise line says how old its cache is: seconds apart here.
    let ageless = |text: String| {
        text.lines().map(|line| line.split(" (cache from ").next().unwrap().to_string() + "\n").collect::<String>()
    };
    let same_root = |r: &RunResult, s: &Suite| {
        ageless(timeless(&mask_addresses(&r.stdout.replace(s.path().to_str().unwrap(), "<root>"))))
    };
    assert_eq!(same_root(&hot, warm_suite), same_root(&cold, cold_suite), "{args:?}\n{}{}", hot.dump(), cold.dump());
    assert_eq!(hot.code, cold.code, "{args:?}\n{}{}", hot.dump(), cold.dump());
    assert_eq!(cache_files(warm_suite), cache_files(cold_suite), "{args:?}\n{}{}", hot.dump(), cold.dump());
}
