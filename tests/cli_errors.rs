//! Usage errors must end with pytest's exit code 4 and a message a user can
//! act on (DESIGN.md invariant 6), never a hang, a panic trace, or clap's
//! default exit code 2 (which pytest reserves for "interrupted").
//!
//! Covers rpytest's own options (`--python`, `-n`, `--worker-start`) and
//! options rpytest passes through to pytest that pytest rejects.

mod common;
use common::*;
use std::path::PathBuf;

fn tiny_suite() -> Suite {
    Suite::new(&[("test_tiny.py", "def test_ok():\n    pass\n")])
}

/// A panic message or Rust backtrace on stderr is never a clear message.
fn assert_no_panic(r: &RunResult) {
    assert!(
        !r.stderr.contains("panicked at") && !r.stderr.contains("RUST_BACKTRACE"),
        "rpytest panicked instead of reporting a usage error\n{}",
        r.dump()
    );
}

#[test]
fn nonexistent_python_exits_4_and_names_the_path() {
    let suite = tiny_suite();
    let r = run_rpytest_raw(suite.path(), &["--python", "/nonexistent/bin/python3", "-n", "1"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("/nonexistent/bin/python3"), "stderr should name the path\n{}", r.dump());
    assert!(
        r.stderr.contains("--python"),
        "stderr should say how to fix it (point --python at an interpreter)\n{}",
        r.dump()
    );
}

#[test]
fn python_that_is_not_executable_exits_4() {
    let suite = tiny_suite();
    let fake = suite.join("not_python.txt");
    std::fs::write(&fake, "just text").unwrap();
    let r = run_rpytest_raw(suite.path(), &["--python", fake.to_str().unwrap()]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("not_python.txt"), "{}", r.dump());
}

/// A fresh venv without pip (hence without pytest), made from the test Python.
fn python_without_pytest(dir: &std::path::Path) -> PathBuf {
    let venv = dir.join("bare-venv");
    let out = std::process::Command::new(python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("run python -m venv");
    assert!(out.status.success(), "cannot create bare venv: {}", String::from_utf8_lossy(&out.stderr));
    let py = venv.join("bin/python");
    let check = std::process::Command::new(&py).args(["-c", "import pytest"]).output().unwrap();
    assert!(!check.status.success(), "bare venv unexpectedly has pytest");
    py
}

#[test]
fn python_without_pytest_exits_4_and_says_how_to_install() {
    let suite = tiny_suite();
    let tmp = tempfile::tempdir().unwrap();
    let py = python_without_pytest(tmp.path());
    let r = run_rpytest_raw(suite.path(), &["--python", py.to_str().unwrap(), "-n", "1"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    let err = r.stderr.to_lowercase();
    assert!(err.contains("pytest"), "stderr should say pytest is missing\n{}", r.dump());
    assert!(err.contains("pip install"), "stderr should say how to install pytest\n{}", r.dump());
}

#[test]
fn unknown_pytest_option_exits_4_with_pytests_message() {
    let suite = tiny_suite();
    let pytest = run_pytest(&suite, &["--no-such-flag"]);
    assert_eq!(pytest.code, 4, "baseline\n{}", pytest.dump());
    let r = run_rpytest(&suite, &["-n", "2", "--no-such-flag"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(
        r.stderr.contains("unrecognized arguments: --no-such-flag"),
        "stderr should carry pytest's own message\npytest said:\n{}\n{}",
        pytest.stderr,
        r.dump()
    );
    // pytest's usage text, naming the program the user ran.
    assert!(r.stderr.contains("usage: rpytest [options]"), "{}", r.dump());
    assert!(!r.stderr.contains("pytest.main()"), "{}", r.dump());
}

#[test]
fn bad_value_for_pytest_option_exits_4() {
    let suite = tiny_suite();
    let pytest = run_pytest(&suite, &["--tb=bogus"]);
    assert_eq!(pytest.code, 4, "baseline\n{}", pytest.dump());
    let r = run_rpytest(&suite, &["-n", "2", "--tb=bogus"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("bogus"), "{}", r.dump());
}

fn assert_bad_worker_count(value: &str) {
    let suite = tiny_suite();
    let r = run_rpytest(&suite, &["-n", value]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "-n {value} should be a usage error (exit 4)\n{}", r.dump());
    assert!(r.stderr.contains("-n") || r.stderr.contains("worker"), "message should name the option\n{}", r.dump());
    assert!(r.stderr.contains(value), "message should show the bad value {value:?}\n{}", r.dump());
}

/// xdist's `-n 0` (no distribution), which users pass to override an
/// `-n auto` in addopts: one worker, pytest's outcomes.
#[test]
fn worker_count_zero_is_one_worker_as_in_xdist() {
    let suite = tiny_suite();
    let pair = assert_same_with(&suite, &[], &["-n", "0", "-v"]);
    assert!(pair.rpytest.workers.values().flatten().all(|w| *w == 0), "{}", pair.rpytest.dump());
}

#[test]
fn worker_count_not_a_number_exits_4() {
    assert_bad_worker_count("abc");
}

#[test]
fn worker_count_negative_exits_4() {
    let suite = tiny_suite();
    let r = run_rpytest(&suite, &["-n", "-3"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("-3"), "{}", r.dump());
}

#[test]
fn bad_worker_start_mode_exits_4() {
    let suite = tiny_suite();
    let r = run_rpytest(&suite, &["-n", "1", "--worker-start=teleport"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("teleport"), "{}", r.dump());
}

#[test]
fn bad_color_value_exits_4() {
    let suite = tiny_suite();
    let r = run_rpytest_raw(suite.path(), &["--python", python().to_str().unwrap(), "--color=rainbow"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
}

#[test]
fn n_auto_runs_tests() {
    let suite = tiny_suite();
    let r = run_rpytest(&suite, &["-n", "auto"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 passed"), "{}", r.dump());
}

#[test]
fn help_exits_0_and_mentions_own_options() {
    let suite = tiny_suite();
    let r = run_rpytest_raw(suite.path(), &["--help"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    for opt in ["--python", "--worker-start", "-n"] {
        assert!(r.stdout.contains(opt), "--help lacks {opt}\n{}", r.dump());
    }
}

#[test]
fn version_prints_rpytest_and_pytest_versions() {
    let suite = tiny_suite();
    let py = python();
    let r = run_rpytest_raw(suite.path(), &["--version", "--python", py.to_str().unwrap()]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    let probe =
        std::process::Command::new(&py).args(["-c", "import pytest; print(pytest.__version__)"]).output().unwrap();
    let pytest_version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert!(r.stdout.contains(&format!("rpytest {}", env!("CARGO_PKG_VERSION"))), "{}", r.dump());
    assert!(r.stdout.contains(&format!("pytest {pytest_version}")), "{}", r.dump());
}

#[test]
fn version_with_a_python_without_pytest_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let py = python_without_pytest(dir.path());
    let r = run_rpytest_raw(dir.path(), &["-V", "--python", py.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stdout.contains("rpytest "), "{}", r.dump());
    assert!(r.stderr.contains("pip install pytest"), "{}", r.dump());
}

#[test]
fn environment_sets_the_worker_count_between_pyproject_and_flags() {
    let suite = Suite::new(&[
        ("pyproject.toml", "[tool.rpytest]\ndefault_workers = 1\n"),
        ("test_w.py", "import os\n\ndef test_count():\n    print(os.environ['PYTEST_XDIST_WORKER_COUNT'])\n    assert os.environ['PYTEST_XDIST_WORKER_COUNT'] == os.environ['EXPECTED']\n"),
    ]);
    let r = run_rpytest_env(&suite, &[], &[("RPYTEST_DEFAULT_WORKERS", "2"), ("EXPECTED", "2")]);
    assert_eq!(r.code, 0, "the environment should override pyproject.toml\n{}", r.dump());
    let r = run_rpytest_env(&suite, &["-n", "3"], &[("RPYTEST_DEFAULT_WORKERS", "2"), ("EXPECTED", "3")]);
    assert_eq!(r.code, 0, "-n should override the environment\n{}", r.dump());
}

#[test]
fn bad_environment_setting_exits_4_and_names_the_variable() {
    let suite = tiny_suite();
    let r = run_rpytest_env(&suite, &[], &[("RPYTEST_WORKER_START", "clone")]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("RPYTEST_WORKER_START") && r.stderr.contains("spawn"), "{}", r.dump());
}

/// An executable that is not Python ends before rpytest's code in it
/// starts: a usage error naming it (exit 4), not exit 1 ("tests failed").
#[test]
fn python_that_is_not_python_exits_4_and_says_so() {
    let suite = tiny_suite();
    let r = run_rpytest_raw(suite.path(), &["--python", "/bin/false"]);
    assert_clean_exit(&r);
    assert_no_panic(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("/bin/false exited with code 1"), "{}", r.dump());
    assert!(r.stderr.contains("not a usable Python 3 interpreter") && r.stderr.contains("--python"), "{}", r.dump());
}

/// A stale `VIRTUAL_ENV` (the venv was deleted) is named before rpytest
/// falls back to `python3` on PATH, which here is the test Python.
#[test]
fn a_virtual_env_without_python_is_named_before_falling_back() {
    let suite = tiny_suite();
    let bin = python().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let args: Vec<String> = ["--color=no", "-p", "no:cacheprovider"].map(String::from).to_vec();
    let env = [("VIRTUAL_ENV", "/nonexistent"), ("PATH", path.as_str())];
    let r = run_command(&rpytest_bin(), &args, suite.path(), &env);
    assert_no_panic(&r);
    assert_eq!(r.code, 0, "the fallback python3 has pytest\n{}", r.dump());
    assert!(r.stderr.contains("warning: VIRTUAL_ENV") && r.stderr.contains("/nonexistent/bin/python"), "{}", r.dump());
    assert!(r.stderr.contains(&format!("using {}", bin.join("python3").display())), "{}", r.dump());
}
