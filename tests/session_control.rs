//! Ways a pytest session ends other than "all tests ran": a conftest that
//! cannot be imported, a plugin raising UsageError, `pytest.exit()` or a
//! KeyboardInterrupt from inside a test. pytest decides the exit code in
//! each case; rpytest must end the same way (DESIGN.md invariant 6) and
//! must not hang waiting for workers that will never report. Also: the
//! `lastfailed` cache written through the report sink matches pytest's.

mod common;
use common::*;

fn exit_codes_match(suite: &Suite, workers: &str) -> Pair {
    let pytest = run_pytest(suite, &["-v"]);
    let rpytest = run_rpytest(suite, &["-n", workers]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(
        &pair,
        pair.pytest.code == pair.rpytest.code,
        &format!("exit code: pytest {} vs rpytest {}", pair.pytest.code, pair.rpytest.code),
    );
    pair
}

#[test]
fn conftest_import_error_exits_like_pytest() {
    let suite = Suite::new(&[
        ("conftest.py", "import no_such_module_in_conftest_xyz\n"),
        ("test_a.py", "def test_a():\n    pass\n"),
    ]);
    let pair = exit_codes_match(&suite, "2");
    check(&pair, pair.pytest.code == 4, "baseline: pytest exits 4 on a broken conftest");
    let all = format!("{}{}", pair.rpytest.stdout, pair.rpytest.stderr);
    check(&pair, all.contains("no_such_module_in_conftest_xyz"), "the import error is not shown");
}

#[test]
fn usage_error_from_pytest_configure_exits_4() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            r#"
            import pytest

            def pytest_configure(config):
                raise pytest.UsageError("this suite refuses to run")
            "#,
        ),
        ("test_a.py", "def test_a():\n    pass\n"),
    ]);
    let pair = exit_codes_match(&suite, "2");
    check(&pair, pair.rpytest.stderr.contains("this suite refuses to run"), "UsageError message missing from stderr");
}

#[test]
fn pytest_exit_inside_a_test_uses_its_returncode() {
    let suite = Suite::new(&[(
        "test_exit.py",
        r#"
        import pytest

        def test_before():
            pass

        def test_calls_exit():
            pytest.exit("stopping the session", returncode=3)

        def test_after():
            pass
        "#,
    )]);
    for workers in ["1", "2"] {
        let pair = exit_codes_match(&suite, workers);
        check(&pair, pair.rpytest.code == 3, "pytest.exit(returncode=3) should end the run with 3");
        check(&pair, pair.rpytest.words("test_exit.py::test_calls_exit").is_empty(), "the exiting test has no outcome");
        check(&pair, pair.rpytest.words("test_exit.py::test_after").is_empty() || workers != "1", "test_after ran");
        check(&pair, last_line(&pair.rpytest) == last_line(&pair.pytest), "pytest prints the banner after the counts");
    }
}

/// The last non-empty line of stdout.
fn last_line(r: &RunResult) -> String {
    r.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string()
}

/// What pytest prints under its `!!! KeyboardInterrupt !!!` banner, with the
/// temp dir's path (different per suite) reduced to the file name.
fn interrupt_lines(r: &RunResult) -> Vec<String> {
    let lines: Vec<&str> = r.stdout.lines().collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("!!!")) else { return Vec::new() };
    lines[at..(at + 3).min(lines.len())].iter().map(|l| l.rsplit('/').next().unwrap_or(l).to_string()).collect()
}

#[test]
fn keyboard_interrupt_inside_a_test_exits_2() {
    let suite = Suite::new(&[(
        "test_kbd.py",
        r#"
        def test_before():
            pass

        def test_interrupts():
            raise KeyboardInterrupt

        def test_after():
            pass
        "#,
    )]);
    for workers in ["1", "2"] {
        let pair = exit_codes_match(&suite, workers);
        check(&pair, pair.rpytest.code == 2, "KeyboardInterrupt in a test should end the run with 2");
        check(&pair, interrupt_lines(&pair.rpytest) == interrupt_lines(&pair.pytest), "the interrupt banner differs");
        if workers == "1" {
            assert_pair_same(&pair);
        }
    }
}

/// Run without `-p no:cacheprovider` so the cache plugin is active.
fn run_with_cache(program: &std::path::Path, pre: &[&str], args: &[&str], suite: &Suite) -> RunResult {
    let mut full: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
    full.extend(args.iter().map(|s| s.to_string()));
    run_command(program, &full, suite.path(), &[])
}

fn cache_suite() -> Suite {
    Suite::new(&[(
        "test_c.py",
        r#"
        import pytest

        def test_ok():
            pass

        def test_bad():
            assert 0

        @pytest.mark.parametrize("i", [1, 2, 3])
        def test_p(i):
            assert i != 2

        def test_other_ok():
            pass
        "#,
    )])
}

fn lastfailed(suite: &Suite) -> serde_json::Value {
    let p = suite.join(".pytest_cache/v/cache/lastfailed");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("no lastfailed cache at {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn lastfailed_cache_and_lf_rerun_match_pytest() {
    let (a, b) = (cache_suite(), cache_suite());
    let py = python();
    let py_s = py.to_str().unwrap();
    let pytest_pre = ["-m", "pytest"];
    let rpytest_pre = ["--python", py_s, "--color=no", "-n", "2"];
    let p1 = run_with_cache(&py, &pytest_pre, &["-v"], &a);
    let r1 = run_with_cache(&rpytest_bin(), &rpytest_pre, &[], &b);
    assert_clean_exit(&r1);
    assert_eq!(lastfailed(&a), lastfailed(&b), "lastfailed cache differs\n{}\n{}", p1.dump(), r1.dump());

    let p2 = run_with_cache(&py, &pytest_pre, &["-v", "--lf"], &a);
    let r2 = run_with_cache(&rpytest_bin(), &rpytest_pre, &["--lf"], &b);
    assert_pair_same(&Pair { pytest: p2, rpytest: r2 });
}

fn stepwise_suite() -> Suite {
    Suite::new(&[(
        "test_sw.py",
        r#"
        def test_1():
            pass

        def test_2():
            assert 0

        def test_3():
            pass

        def test_4():
            assert 0

        def test_5():
            pass
        "#,
    )])
}

/// `--sw` twice in a row: the first run stops at test_2, the second
/// skips test_1 and stops at test_4, from the cache either tool wrote.
#[test]
fn stepwise_runs_match_pytest_run_after_run() {
    let (a, b) = (stepwise_suite(), stepwise_suite());
    let py = python();
    let py_s = py.to_str().unwrap();
    for round in 0..2 {
        let pytest = run_with_cache(&py, &["-m", "pytest", "-v"], &["--sw"], &a);
        let rpytest = run_with_cache(&rpytest_bin(), &["--python", py_s, "--color=no", "-n", "2"], &["--sw"], &b);
        assert_clean_exit(&rpytest);
        let pair = Pair { pytest, rpytest };
        assert_pair_same(&pair);
        check(&pair, pair.pytest.code == 2, &format!("baseline round {round}: pytest --sw exits 2"));
        let banner = |r: &RunResult| r.stdout.lines().find(|l| l.starts_with("!!!")).map(str::to_string);
        check(&pair, banner(&pair.pytest) == banner(&pair.rpytest), "the Interrupted banner differs");
        // Edit the failure away so the next round moves on.
        if round == 0 {
            for suite in [&a, &b] {
                let text = std::fs::read_to_string(suite.join("test_sw.py")).unwrap();
                suite.write("test_sw.py", &text.replacen("assert 0", "assert 1", 1));
            }
        }
    }
}

/// A conftest's own sessionfinish hook runs once per run, as under pytest,
/// whether or not anything else needs the report sink.
#[test]
fn conftest_sessionfinish_runs_once() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            r#"
            import os

            def pytest_sessionfinish(session, exitstatus):
                if not hasattr(session.config, "workerinput"):
                    with open(os.path.join(str(session.config.rootpath), "finished.log"), "a") as f:
                        f.write(f"exit {int(exitstatus)}\n")
            "#,
        ),
        ("test_a.py", "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n"),
    ]);
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    let log = std::fs::read_to_string(suite.join("finished.log")).unwrap_or_default();
    assert_eq!(log, "exit 1\n", "sessionfinish should run once with pytest's exit status\n{}", r.dump());
}

/// pytest ends the session in the process where `pytest_configure` ran
/// (the zygote), not in a forked copy of it, and junitxml writes its file
/// there.
#[test]
fn the_session_ends_where_it_was_configured() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            r#"
            import os

            def log(line):
                with open("pids.log", "a") as f:
                    f.write(line + "\n")

            def pytest_configure(config):
                log(f"configure {os.getpid()}")

            def pytest_sessionfinish(session):
                if not hasattr(session.config, "workerinput"):
                    log(f"sessionfinish {os.getpid()}")
            "#,
        ),
        ("test_a.py", "def test_a():\n    pass\n"),
    ]);
    let r = run_rpytest(&suite, &["-n", "2", "--junitxml=j.xml"]);
    assert_clean_exit(&r);
    let log = std::fs::read_to_string(suite.join("pids.log")).unwrap_or_default();
    let pids: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(pids.len(), 2, "configure and sessionfinish once each\n{log}\n{}", r.dump());
    assert_eq!(pids[0], pids[1], "sessionfinish ran in another process than configure\n{}", r.dump());
    assert!(suite.join("j.xml").exists(), "{}", r.dump());
}
