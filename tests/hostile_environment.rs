//! The environment rpytest starts in is not always kind (issue #23.2, .7):
//! a variable or an argument that is not UTF-8, a home directory that
//! cannot be written. Each run must still match pytest's, or say clearly
//! what is wrong.

mod common;
use common::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};

fn suite() -> Suite {
    Suite::new(&[("test_env.py", "def test_a():\n    pass\n\ndef test_b():\n    assert 1 == 2\n")])
}

fn not_utf8() -> OsString {
    OsString::from_vec(b"caf\xe9-\xff".to_vec())
}

/// rpytest with the harness's arguments, and `env` set as raw bytes.
fn rpytest_with(suite: &Suite, args: &[&str], env: &[(&str, OsString)]) -> std::process::Output {
    let mut cmd = Command::new(rpytest_bin());
    cmd.args(["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "--no-daemon"])
        .args(args)
        .current_dir(suite.path())
        .stdin(Stdio::null())
        .env_remove("PYTEST_ADDOPTS");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn variables_that_are_not_utf8_are_passed_over_as_pytest_does() {
    let suite = suite();
    let pytest = run_pytest(&suite, &["-q"]);
    let run = rpytest_with(&suite, &["-n", "2", "-q"], &[("BADVAR", not_utf8()), ("OLDPWD", not_utf8())]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(pytest.code), "{stdout}\n{stderr}");
    assert_eq!(parse_final_line(&stdout), pytest.final_line, "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_setting_that_is_not_utf8_is_a_usage_error_naming_it() {
    let run = rpytest_with(&suite(), &["-q"], &[("RPYTEST_RETRIES", not_utf8())]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("RPYTEST_RETRIES") && stderr.contains("UTF-8"), "{stderr}");
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_naming_it() {
    let suite = suite();
    let mut cmd = Command::new(rpytest_bin());
    cmd.args(["--python", python().to_str().unwrap(), "--no-daemon"]).arg(not_utf8()).current_dir(suite.path());
    let run = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("argument 4") && stderr.contains("UTF-8") && !stderr.contains("panicked"), "{stderr}");
}

/// HOME names a file: nothing can be created under it, not even by root
/// (CI runs as root, where a read-only directory would not stop a write).
/// The worker package goes to a private directory instead, said once.
#[test]
fn an_unwritable_home_falls_back_to_a_private_directory_and_says_so_once() {
    let suite = suite();
    let pytest = run_pytest(&suite, &["-q"]);
    let home = tempfile::NamedTempFile::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("HOME", OsString::from(home.path())),
        ("XDG_CACHE_HOME", OsString::new()),
        ("RPYTEST_CACHE_DIR", OsString::new()),
        ("TMPDIR", OsString::from(tmp.path())),
    ];
    let notes: Vec<usize> = (0..2)
        .map(|_| {
            let run = rpytest_with(&suite, &["-n", "2", "-q"], &env);
            let stdout = String::from_utf8_lossy(&run.stdout);
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(pytest.code), "{stdout}\n{stderr}");
            assert_eq!(parse_final_line(&stdout), pytest.final_line, "{stdout}\n{stderr}");
            stderr.matches("using the private directory").count()
        })
        .collect();
    assert_eq!(notes, [1, 0], "the fallback is said by the first run that fills it, and only then");
}
