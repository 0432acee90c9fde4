//! `--pdb`, `--trace` and `-s`: the runs where the terminal matters.
//!
//! The debugger must get the user's terminal (rpytest runs such a run in one
//! worker and says so) rather than hang on a worker without stdin; `-s`
//! output must reach rpytest's stdout rather than be swallowed, as
//! pytest-xdist swallows it. The debugger is driven through a pipe, as pdb
//! reads commands from any stdin.

mod common;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args` in the suite with `input` on stdin; kills it after
/// the harness timeout so a hang fails the test instead of blocking it.
fn run_with_input(program: &std::path::Path, args: &[&str], suite: &Suite, input: &str) -> (i32, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(suite.path())
        .env("COLUMNS", "80")
        .env_remove("PYTEST_ADDOPTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let pid = child.id();
    let limit = timeout();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn debug_suite() -> Suite {
    Suite::new(&[(
        "test_dbg.py",
        r#"
        def test_ok():
            pass

        def test_fails():
            secret = 6 * 7
            assert secret == 0

        def test_later():
            pass
        "#,
    )])
}

fn both(args: &[&str], input: &str) -> ((i32, String), (i32, String)) {
    let suite_a = debug_suite();
    let suite_b = debug_suite();
    let py = python();
    let mut pargs = vec!["-m", "pytest", "-p", "no:cacheprovider", "--color=no"];
    pargs.extend_from_slice(args);
    let pytest = run_with_input(&py, &pargs, &suite_a, input);
    let py_s = py.display().to_string();
    let mut rargs = vec!["--python", py_s.as_str(), "-p", "no:cacheprovider", "--color=no", "-n", "4"];
    rargs.extend_from_slice(args);
    let rpytest = run_with_input(&rpytest_bin(), &rargs, &suite_b, input);
    (pytest, rpytest)
}

#[test]
fn pdb_opens_the_debugger_on_the_failure_and_continues() {
    let ((pcode, pout), (rcode, rout)) = both(&["--pdb"], "p secret + 1000\nc\n");
    for (who, out) in [("pytest", &pout), ("rpytest", &rout)] {
        assert!(out.contains("(Pdb)"), "{who} showed no pdb prompt:\n{out}");
        assert!(out.contains("1042"), "{who}'s debugger did not evaluate in the failing frame:\n{out}");
        assert!(out.contains("1 failed, 2 passed"), "{who} did not finish the run:\n{out}");
    }
    assert_eq!(pcode, rcode, "exit codes differ\n--- pytest\n{pout}\n--- rpytest\n{rout}");
    assert!(rout.contains("running the tests one at a time"), "rpytest did not say it runs serially:\n{rout}");
}

#[test]
fn quitting_the_debugger_ends_the_run_as_pytest_does() {
    let ((pcode, pout), (rcode, rout)) = both(&["--pdb"], "q\n");
    assert_eq!(pcode, 2, "baseline: pytest exits 2 when the debugger quits\n{pout}");
    assert_eq!(rcode, pcode, "exit codes differ\n--- pytest\n{pout}\n--- rpytest\n{rout}");
    assert!(rout.contains("Quitting debugger"), "{rout}");
    assert!(!rout.contains("test_later PASSED"), "tests ran after the debugger quit:\n{rout}");
}

#[test]
fn trace_stops_at_the_start_of_each_test() {
    let ((pcode, pout), (rcode, rout)) = both(&["--trace", "-k", "test_ok or test_later"], "c\nc\n");
    for (who, out) in [("pytest", &pout), ("rpytest", &rout)] {
        assert_eq!(out.matches("(Pdb)").count(), 2, "{who} should stop once per test:\n{out}");
    }
    assert_eq!(pcode, rcode, "exit codes differ\n--- pytest\n{pout}\n--- rpytest\n{rout}");
}

#[test]
fn capture_no_output_reaches_stdout_from_every_worker() {
    let suite = Suite::new(&[(
        "test_print.py",
        r#"
        import pytest

        @pytest.mark.parametrize("i", range(8))
        def test_says(i):
            print(f"said-by-test-{i}")
        "#,
    )]);
    for flag in ["-s", "--capture=no"] {
        // pytest -v -s prints the output between the node id and its word,
        // so per-test lines cannot be compared; counts and exit code can.
        let pair = Pair { pytest: run_pytest(&suite, &[flag]), rpytest: run_rpytest(&suite, &["-n", "4", flag]) };
        assert_clean_exit(&pair.rpytest);
        check(&pair, pair.pytest.code == pair.rpytest.code, "exit codes differ");
        check(&pair, pair.pytest.final_line == pair.rpytest.final_line, "final lines differ");
        for i in 0..8 {
            let line = format!("said-by-test-{i}");
            check(&pair, pair.pytest.stdout.contains(&line), "baseline: pytest -s shows the output");
            check(&pair, pair.rpytest.stdout.contains(&line), &format!("{flag}: {line} was swallowed"));
        }
    }
}

/// A passing test that prints 70 MiB stays a pass: its captured output
/// travels once per phase and the run's reports go back to the zygote in
/// chunks, so no frame crosses the limit (it used to be ~4 copies in one
/// 293 MB frame, reported as a crash). junit still gets the test.
#[test]
fn a_test_printing_70_mib_passes_and_reaches_junit() {
    let tests = "import sys\n\ndef test_loud():\n    sys.stdout.write('x' * (70 * 1024 * 1024))\n\n\
                 def test_quiet():\n    pass\n";
    let suite = Suite::new(&[("test_loud.py", tests)]);
    let pytest = run_pytest(&suite, &["-q"]);
    let r = run_rpytest(&suite, &["-n", "2", "-q", "--junitxml=j.xml"]);
    assert_clean_exit(&r);
    assert_eq!((r.code, r.final_line.as_deref()), (pytest.code, pytest.final_line.as_deref()), "{}", r.dump());
    assert_eq!(r.outcomes, pytest.outcomes);
    let junit = std::fs::read_to_string(suite.path().join("j.xml")).expect("junit written");
    assert!(junit.contains(r#"name="test_loud""#) && junit.contains(r#"name="test_quiet""#));
}

/// To a pipe the progress goes out a line at a time, never after what the
/// session's end prints: a partial line of progress (`-x` stopped the run)
/// comes before a conftest's `pytest_sessionfinish` output, as under pytest.
#[test]
fn progress_to_a_pipe_comes_before_what_the_session_end_prints() {
    let conftest = "def pytest_sessionfinish(session):\n    print('SESSIONFINISH')\n";
    let tests = "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n\ndef test_c():\n    pass\n";
    let suite = Suite::new(&[("conftest.py", conftest), ("test_x.py", tests)]);
    let pytest = run_pytest(&suite, &["-x", "-s", "-q"]);
    assert!(pytest.stdout.starts_with(".FSESSIONFINISH\n"), "pytest itself\n{}", pytest.dump());
    for workers in ["1", "2"] {
        let r = run_rpytest(&suite, &["-x", "-s", "-q", "-n", workers]);
        // With two workers test_c may run before the stop: ".F." or "..F".
        let first = r.stdout.lines().next().unwrap_or_default();
        let progress = first.strip_suffix("SESSIONFINISH").unwrap_or_default();
        let is_progress = progress.contains('F') && progress.chars().all(|c| c == '.' || c == 'F');
        assert!(is_progress, "-n {workers}\n{}", r.dump());
    }
}

/// With `-s` tests print between the progress characters, so each one is
/// flushed as it comes even to a pipe: the output interleaves as pytest's.
#[test]
fn with_capture_off_progress_interleaves_with_test_output_as_in_pytest() {
    let test = |n: usize| format!("def test_{n}():\n    time.sleep(0.1)\n    print('hello{n}')\n\n");
    let tests = format!("import time\n\n{}", (0..3).map(test).collect::<String>());
    let suite = Suite::new(&[("test_s.py", &tests)]);
    let expected = "hello0\n.hello1\n.hello2\n.";
    let pytest = run_pytest(&suite, &["-s", "-q"]);
    assert!(pytest.stdout.starts_with(expected), "pytest itself\n{}", pytest.dump());
    let r = run_rpytest(&suite, &["-s", "-q", "-n", "1"]);
    assert!(r.stdout.starts_with(expected), "{}", r.dump());
}
