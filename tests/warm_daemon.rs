//! `rpytest serve`: warm runs against the real daemon, compared with
//! `python -m pytest` outcome by outcome.
//!
//! Each test starts its own daemon on a private runtime directory
//! (`RPYTEST_RUNTIME_DIR`), with the background poll off, so a stale zygote
//! can only be caught by the check at handover. `RPYTEST_TRACE=1` makes the
//! client say whether a warm zygote took the run.

mod common;
use common::daemon::{private_dir, Daemon, Stopped};
use common::*;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq)]
enum Path_ {
    Warm,
    Cold,
}

/// One rpytest run through the daemon; says whether it was warm.
fn run(suite: &Suite, daemon: &Daemon, env: &[(&str, &str)]) -> (RunResult, Path_) {
    run_in(suite.path(), daemon, env)
}

/// `run` with the invocation directory `dir`.
fn run_in(dir: &Path, daemon: &Daemon, env: &[(&str, &str)]) -> (RunResult, Path_) {
    run_with(&python(), dir, daemon, env)
}

/// `run` with the interpreter `python` in the invocation directory `dir`.
fn run_with(python: &Path, dir: &Path, daemon: &Daemon, env: &[(&str, &str)]) -> (RunResult, Path_) {
    run_args(python, dir, daemon, env, &["-n", "2"])
}

/// `run_with` and these arguments in place of `-n 2`.
fn run_args(python: &Path, dir: &Path, daemon: &Daemon, env: &[(&str, &str)], extra: &[&str]) -> (RunResult, Path_) {
    let mut all = vec![("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    all.extend_from_slice(env);
    let args: Vec<String> = ["--python", python.to_str().unwrap(), "--color=no", "-p", "no:cacheprovider"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    let result = run_command(&rpytest_bin(), &args, dir, &all);
    let path = if result.stderr.contains("daemon: warm zygote") { Path_::Warm } else { Path_::Cold };
    (result, path)
}

/// Outcomes and exit code equal `python -m pytest -v` with the same env.
fn assert_same_as_pytest(suite: &Suite, result: &RunResult, env: &[(&str, &str)], step: &str) {
    assert_same_as_pytest_in(suite.path(), result, env, step)
}

fn assert_same_as_pytest_in(dir: &Path, result: &RunResult, env: &[(&str, &str)], step: &str) {
    assert_same_as_pytest_with(&python(), dir, result, env, step)
}

fn assert_same_as_pytest_with(python: &Path, dir: &Path, result: &RunResult, env: &[(&str, &str)], step: &str) {
    let args: Vec<String> = ["-m", "pytest", "-p", "no:cacheprovider", "-v"].iter().map(|s| s.to_string()).collect();
    let pytest = run_command(python, &args, dir, env);
    assert_eq!(result.outcomes, pytest.outcomes, "{step}: outcomes differ\n{}{}", result.dump(), pytest.dump());
    assert_eq!(result.code, pytest.code, "{step}: exit codes differ\n{}{}", result.dump(), pytest.dump());
    assert!(!result.outcomes.is_empty() || result.code != 0, "{step}: nothing ran\n{}", result.dump());
}

/// After a change: the first run must not use the stale zygote (it runs
/// cold and says why), the next is warm, and both equal pytest. Leaves the
/// daemon with a settled zygote, so the next change comes after its check.
fn check_step(suite: &Suite, daemon: &Daemon, env: &[(&str, &str)], step: &str, expect_reason: &str) {
    check_step_in(suite.path(), daemon, env, step, expect_reason)
}

fn check_step_in(dir: &Path, daemon: &Daemon, env: &[(&str, &str)], step: &str, expect_reason: &str) {
    check_step_with(&python(), dir, daemon, env, step, expect_reason)
}

fn check_step_with(python: &Path, dir: &Path, daemon: &Daemon, env: &[(&str, &str)], step: &str, expect_reason: &str) {
    let (first, path) = run_with(python, dir, daemon, env);
    let rebuilt = first.stderr.contains("daemon: rebuilt the warm session");
    assert!(path == Path_::Cold || rebuilt, "{step}: a stale zygote served the run\n{}", first.dump());
    assert!(
        first.stderr.contains(expect_reason),
        "{step}: cold for another reason than {expect_reason:?}\n{}",
        first.dump()
    );
    assert_same_as_pytest_with(python, dir, &first, env, &format!("{step} (cold)"));
    let (second, path) = run_with(python, dir, daemon, env);
    assert_eq!(path, Path_::Warm, "{step}: the rebuilt zygote was not used\n{}", second.dump());
    assert_same_as_pytest_with(python, dir, &second, env, &format!("{step} (warm)"));
    daemon.wait_settled();
}

/// After a change the session can take in place: the first run is warm,
/// re-collects, and equals pytest.
fn check_refreshed(suite: &Suite, daemon: &Daemon, step: &str) {
    let (first, path) = run(suite, daemon, &[]);
    assert_eq!(path, Path_::Warm, "{step}: the session was not refreshed in place\n{}", first.dump());
    // The daemon's background check may have refreshed the session between
    // the write and this run (then the run says nothing of it); what it must
    // not have done is rebuild it, except before pytest 8 for a new file,
    // whose place in the order differs there.
    let rebuilt = first.stderr.contains("rebuilt the warm session");
    let may_rebuild = pytest_version() < (8, 0) && first.stderr.contains("orders new files otherwise");
    assert!(!rebuilt || may_rebuild, "{step}: the session was rebuilt, not refreshed\n{}", first.dump());
    assert_same_as_pytest(suite, &first, &[], &format!("{step} (refreshed)"));
    daemon.wait_settled();
}

/// After a change that may be taken in place or not: whichever the run
/// was, it equals pytest, and the next run is warm.
fn check_step_any(suite: &Suite, daemon: &Daemon, env: &[(&str, &str)], step: &str) {
    let (first, _) = run(suite, daemon, env);
    assert_same_as_pytest(suite, &first, env, &format!("{step} (first)"));
    daemon.wait_settled();
    let (second, path) = run(suite, daemon, env);
    assert_eq!(path, Path_::Warm, "{step}: the next run was not warm\n{}", second.dump());
    assert_same_as_pytest(suite, &second, env, &format!("{step} (warm)"));
    daemon.wait_settled();
}

fn suite() -> Suite {
    Suite::new(&[
        ("pytest.ini", "[pytest]\n"),
        ("helper.py", "VALUE = 1\n"),
        ("pkg/__init__.py", ""),
        ("pkg/settings.py", "FLAG = 'on'\n"),
        ("check_extra.py", "def test_extra():\n    pass\n"),
        ("data/cases.json", "[1, 2]\n"),
        (
            "test_data.py",
            "import json, pytest\n\n@pytest.mark.parametrize('n', json.load(open('data/cases.json')))\ndef test_case(n):\n    assert n < 3\n",
        ),
        (
            "conftest.py",
            r#"
            import pytest
            from pkg import settings

            @pytest.fixture
            def flag():
                return settings.FLAG
            "#,
        ),
        (
            "test_a.py",
            r#"
            import os
            import helper

            AT_IMPORT = os.environ.get("WARM_SWITCH", "unset")

            def test_value():
                assert helper.VALUE == 1

            def test_flag(flag):
                assert flag == "on"

            def test_env():
                assert AT_IMPORT == "unset"

            def test_plain():
                pass
            "#,
        ),
    ])
}

/// Replaces a "site-packages" package the way an installer does: the old
/// files and dist-info go, the new ones are written in their place.
fn install_tinypkg(site: &Path, version: &str, answer: u32) {
    for entry in std::fs::read_dir(site).unwrap().flatten() {
        std::fs::remove_dir_all(entry.path()).unwrap();
    }
    std::fs::create_dir_all(site.join("tinypkg")).unwrap();
    std::fs::write(site.join("tinypkg/__init__.py"), format!("ANSWER = {answer}\n")).unwrap();
    let info = site.join(format!("tinypkg-{version}.dist-info"));
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(info.join("METADATA"), format!("Name: tinypkg\nVersion: {version}\n")).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn warm_equals_cold_after_every_kind_of_change() {
    let suite = suite();
    let daemon = Daemon::start(&[]);
    let (first, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Cold, "{}", first.dump());
    assert_same_as_pytest(&suite, &first, &[], "first run");
    let (second, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "the second run was not warm\n{}", second.dump());
    assert_same_as_pytest(&suite, &second, &[], "unchanged");
    daemon.wait_settled();

    suite
        .write("test_a.py", &std::fs::read_to_string(suite.join("test_a.py")).unwrap().replace("pass\n", "assert 0\n"));
    check_refreshed(&suite, &daemon, "editing a test");

    suite.write("test_new.py", "def test_new():\n    pass\n");
    check_refreshed(&suite, &daemon, "adding a test file");
    std::fs::remove_file(suite.join("test_new.py")).unwrap();
    check_refreshed(&suite, &daemon, "removing a test file");

    suite.write("helper.py", "VALUE = 2\n");
    check_refreshed(&suite, &daemon, "editing an imported module");

    suite.write("pkg/settings.py", "FLAG = 'off'\n");
    check_step(
        &suite,
        &daemon,
        &[],
        "editing a module only conftest imports",
        "pkg.settings was imported while pytest configured",
    );

    suite.write("data/cases.json", "[1, 2, 3, 4]\n");
    check_refreshed(&suite, &daemon, "editing a data file read at import");

    suite.write("conftest.py", "import pytest\n\n@pytest.fixture\ndef flag():\n    return 'on'\n");
    check_step(&suite, &daemon, &[], "editing conftest.py", "module conftest was imported while pytest configured");

    suite.write("pytest.ini", "[pytest]\npython_files = test_*.py check_*.py\n");
    check_step(&suite, &daemon, &[], "changing pytest.ini", "pytest.ini changed");

    check_step(&suite, &daemon, &[("WARM_SWITCH", "set")], "an env var read at import", "no warm session");

    let site = suite.join("site");
    std::fs::create_dir_all(&site).unwrap();
    install_tinypkg(&site, "1.0", 1);
    suite.write("test_pkg.py", "import tinypkg\n\ndef test_answer():\n    assert tinypkg.ANSWER == 1\n");
    let pythonpath = [("PYTHONPATH", site.to_str().unwrap())];
    check_step(&suite, &daemon, &pythonpath, "a package on the path", "no warm session");
    install_tinypkg(&site, "2.0", 2);
    check_step_any(&suite, &daemon, &pythonpath, "installing another version");
}

#[test]
fn warm_equals_cold_after_switching_git_branches() {
    let suite = Suite::new(&[("test_one.py", "def test_one():\n    pass\n")]);
    for i in 0..8 {
        suite.write(&format!("test_m{i}.py"), &format!("def test_m{i}():\n    assert {i} < 100\n"));
    }
    git(suite.path(), &["init", "-q"]);
    git(suite.path(), &["add", "-A"]);
    git(suite.path(), &["commit", "-qm", "main"]);
    git(suite.path(), &["checkout", "-qb", "other"]);
    for i in 0..8 {
        suite.write(&format!("test_m{i}.py"), &format!("def test_m{i}():\n    assert {i} < 4\n"));
    }
    std::fs::remove_file(suite.join("test_one.py")).unwrap();
    suite.write("test_two.py", "def test_two():\n    assert False\n");
    git(suite.path(), &["add", "-A"]);
    git(suite.path(), &["commit", "-qm", "other"]);
    git(suite.path(), &["checkout", "-q", "main"]);

    let daemon = Daemon::start(&[]);
    run(&suite, &daemon, &[]);
    let (warm, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "{}", warm.dump());
    assert_same_as_pytest(&suite, &warm, &[], "on main");
    daemon.wait_settled();
    git(suite.path(), &["checkout", "-q", "other"]);
    check_step_any(&suite, &daemon, &[], "after checking out another branch");
    git(suite.path(), &["checkout", "-q", "main"]);
    check_step_any(&suite, &daemon, &[], "after checking main out again");
}

/// pytest looks for its ini file in every ancestor of the invocation
/// directory: one that appears above a suite that had none changes the
/// rootdir and the options, so the warm zygote must go.
#[test]
fn a_new_ini_file_above_the_suite_makes_the_zygote_stale() {
    let suite = Suite::new(&[("proj/test_x.py", "def test_one():\n    pass\n\ndef test_two():\n    assert 0\n")]);
    std::fs::remove_file(suite.join("pytest.ini")).unwrap();
    let proj = suite.join("proj");
    let daemon = Daemon::start(&[]);
    run_in(&proj, &daemon, &[]);
    let (warm, path) = run_in(&proj, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "{}", warm.dump());
    assert_same_as_pytest_in(&proj, &warm, &[], "without an ini file");
    daemon.wait_settled();

    suite.write("pytest.ini", "[pytest]\naddopts = -k one\n");
    check_step_in(&proj, &daemon, &[], "a pytest.ini in the parent directory", "pytest.ini");
    let (warm, _) = run_in(&proj, &daemon, &[]);
    assert_eq!(warm.outcomes.keys().collect::<Vec<_>>(), ["test_x.py::test_one"], "{}", warm.dump());
    daemon.wait_settled();

    suite.write("proj/pytest.toml", "[pytest]\naddopts = [\"-k\", \"two\"]\n");
    check_step_in(&proj, &daemon, &[], "a pytest.toml in the rootdir", "pytest.toml");
}

/// Runs `python -c code args…` and returns its stdout, trimmed; panics
/// with its stderr when it fails.
fn python_output(python: &Path, code: &str, args: &[&str]) -> String {
    let out = Command::new(python).arg("-c").arg(code).args(args).output().unwrap();
    assert!(out.status.success(), "{} -c {code}: {}", python.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn purelib(python: &Path) -> PathBuf {
    PathBuf::from(python_output(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])", &[]))
}

/// A virtualenv without pip whose site-packages also sees the test
/// interpreter's (a `.pth` file), so pytest imports there.
fn venv_seeing_pytest(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    python_output(&python(), "import sys, venv; venv.create(sys.argv[1], with_pip=False)", &[venv.to_str().unwrap()]);
    let venv_python = venv.join("bin/python");
    let site = purelib(&venv_python);
    std::fs::write(site.join("test-python-site.pth"), format!("{}\n", purelib(&python()).display())).unwrap();
    venv_python
}

/// A real wheel of `tinypkg` at `version`: the module, and a dist-info with
/// METADATA, WHEEL and a RECORD of hashes, as a build backend writes them.
const BUILD_WHEEL: &str = r#"
import base64, hashlib, sys, zipfile
out, version = sys.argv[1], sys.argv[2]
info = f"tinypkg-{version}.dist-info"
files = {
    "tinypkg/__init__.py": f"__version__ = {version!r}\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: rpytest-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(text):
    raw = hashlib.sha256(text.encode()).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
record = "".join(f"{name},{digest(text)},{len(text.encode())}\n" for name, text in files.items())
files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
path = f"{out}/tinypkg-{version}-py3-none-any.whl"
with zipfile.ZipFile(path, "w") as whl:
    for name, text in files.items():
        whl.writestr(name, text)
print(path)
"#;

/// Installs a wheel into `venv_python`'s environment with the test
/// interpreter's pip (`--python`, pip >= 22.3), offline. Without a usable
/// pip, unpacks it into site-packages as pip would (module, dist-info with
/// its RECORD, INSTALLER) after removing the previous version's files.
fn pip_install(venv_python: &Path, wheel: &str) {
    let pip = Command::new(python())
        .args(["-m", "pip", "--python", venv_python.to_str().unwrap(), "install", "--no-index", "--no-deps"])
        .args(["--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location", "-q", wheel])
        .output()
        .unwrap();
    if pip.status.success() {
        return;
    }
    eprintln!("pip unusable ({}); unpacking the wheel as pip would", String::from_utf8_lossy(&pip.stderr));
    let unpack = r#"
import glob, os, shutil, sys, zipfile
site, wheel = sys.argv[1], sys.argv[2]
for old in glob.glob(os.path.join(site, "tinypkg*")):
    shutil.rmtree(old)
with zipfile.ZipFile(wheel) as whl:
    whl.extractall(site)
    info = next(n.split("/")[0] for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
with open(os.path.join(site, info, "INSTALLER"), "w") as f:
    f.write("pip\n")
"#;
    python_output(venv_python, unpack, &[purelib(venv_python).to_str().unwrap(), wheel]);
}

/// Installing another version of a package (a real wheel, with pip) into
/// the run's virtualenv: the next warm run imports the new one.
#[test]
fn warm_equals_cold_after_installing_another_package_version() {
    let tests = "import importlib.metadata, tinypkg\n\ndef test_module_version():\n    \
                 assert tinypkg.__version__ == '1.0'\n\ndef test_dist_version():\n    \
                 assert importlib.metadata.version('tinypkg') == '1.0'\n";
    let suite = Suite::new(&[("test_pkg.py", tests)]);
    let scratch = tempfile::tempdir().unwrap();
    let venv_python = venv_seeing_pytest(scratch.path());
    let wheel = |version: &str| python_output(&python(), BUILD_WHEEL, &[scratch.path().to_str().unwrap(), version]);
    pip_install(&venv_python, &wheel("1.0"));
    let daemon = Daemon::start(&[]);
    let dir = suite.path();
    check_step_with(&venv_python, dir, &daemon, &[], "tinypkg 1.0 in a fresh venv", "no warm session");
    let (warm, _) = run_with(&venv_python, dir, &daemon, &[]);
    assert_eq!(warm.code, 0, "tinypkg 1.0 is what the suite expects\n{}", warm.dump());
    daemon.wait_settled();

    pip_install(&venv_python, &wheel("2.0"));
    let installed = python_output(&venv_python, "import tinypkg; print(tinypkg.__version__)", &[]);
    assert_eq!(installed, "2.0");
    check_step_with(
        &venv_python,
        dir,
        &daemon,
        &[],
        "after installing tinypkg 2.0",
        "since the warm session collected",
    );
    let (warm, _) = run_with(&venv_python, dir, &daemon, &[]);
    assert_eq!(warm.code, 1, "the warm run must see tinypkg 2.0\n{}", warm.dump());
}

/// Sends raw bytes, half-closes, and returns the daemon's reply bytes.
fn abuse(socket: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn frame(value: serde_json::Value) -> Vec<u8> {
    let body = rmp_serde::to_vec_named(&value).unwrap();
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend(body);
    bytes
}

fn reply_text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

#[test]
fn the_socket_survives_abuse() {
    let suite = Suite::new(&[("test_x.py", "def test_x():\n    pass\n")]);
    let mut daemon = Daemon::start(&[]);
    let socket = daemon.socket();
    // A connection that never speaks, held open while everything else happens.
    let silent = UnixStream::connect(&socket).unwrap();

    let garbage = reply_text(&abuse(&socket, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(garbage.contains("exceeds"), "{garbage}");
    let truncated = reply_text(&abuse(&socket, &[0, 0, 0, 100, 1, 2, 3]));
    assert!(truncated.contains("closed in the middle"), "{truncated}");
    let huge = reply_text(&abuse(&socket, &[0xff, 0xff, 0xff, 0xff, 0x80]));
    assert!(huge.contains("exceeds"), "{huge}");
    let not_a_map = reply_text(&abuse(&socket, &[0, 0, 0, 3, 0x93, 1, 2]));
    assert!(not_a_map.contains("bad request"), "{not_a_map}");
    let wrong_protocol = frame(serde_json::json!({"type": "status", "protocol": 999, "build": "x"}));
    let wrong_protocol = reply_text(&abuse(&socket, &wrong_protocol));
    assert!(wrong_protocol.contains("protocol 999"), "{wrong_protocol}");
    // The current daemon protocol version (src/daemon/wire.rs), with another build.
    let wrong_build = frame(serde_json::json!({"type": "prewarm", "protocol": 4, "build": "0.0.0+old"}));
    let wrong_build = reply_text(&abuse(&socket, &wrong_build));
    assert!(wrong_build.contains("restart it"), "{wrong_build}");

    // Runs go on meanwhile, and the silent connection is dropped with a reply.
    run(&suite, &daemon, &[]);
    let (warm, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "{}", warm.dump());
    assert_eq!(warm.code, 0, "{}", warm.dump());
    let mut silent = silent;
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = Vec::new();
    let _ = silent.read_to_end(&mut reply);
    assert!(reply_text(&reply).contains("no request within"), "{}", reply_text(&reply));
    assert!(daemon.alive());
}

/// Sleeps only once `.slow` exists, so the priming run is quick, and says
/// it started by writing `.started`; hidden files do not change the
/// directory's listing digest.
const SLOW_ONCE_MARKED: &str = "import os, time\n\ndef test_slow():\n    if os.path.exists('.slow'):\n        \
                                open('.started', 'w').close()\n        time.sleep(30)\n";

#[test]
fn a_client_killed_mid_run_leaves_the_daemon_healthy() {
    let suite = Suite::new(&[("test_slow.py", SLOW_ONCE_MARKED), ("test_fast.py", "def test_fast():\n    pass\n")]);
    let mut daemon = Daemon::start(&[]);
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    run(&suite, &daemon, &[]);
    daemon.wait_settled();
    suite.write(".slow", "");
    let err_file = tempfile::NamedTempFile::new().unwrap();
    let mut client = Command::new(rpytest_bin())
        .args(["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"])
        .envs(env)
        .env("COLUMNS", "80")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .current_dir(suite.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let zygote = loop {
        let text = std::fs::read_to_string(err_file.path()).unwrap();
        if let Some(rest) = text.split("daemon: warm zygote ").nth(1) {
            break rest.split_whitespace().next().unwrap().parse::<i32>().unwrap();
        }
        assert!(Instant::now() < deadline, "no warm handover: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    client.kill().unwrap();
    client.wait().unwrap();
    // The zygote and its workers end with the client's engine connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while unsafe_kill0(zygote) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!unsafe_kill0(zygote), "the orphaned zygote {zygote} is still running");
    assert!(daemon.alive());
    std::fs::remove_file(suite.join(".slow")).unwrap();
    let (after, _) = run(&suite, &daemon, &[]);
    assert_same_as_pytest(&suite, &after, &[], "after the killed client");
    let (warm, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "{}", warm.dump());
    assert_same_as_pytest(&suite, &warm, &[], "warm after the killed client");
}

fn unsafe_kill0(pid: i32) -> bool {
    // A zombie still answers signal 0; the daemon reaps promptly.
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[test]
fn warm_output_is_byte_identical_to_embedded() {
    let suite = Suite::new(&[
        ("test_a.py", "def test_a():\n    pass\n\ndef test_b():\n    assert 1 == 2\n"),
        ("conftest.py", "import warnings\nprint('conftest says hi')\n"),
    ]);
    let daemon = Daemon::start(&[]);
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir())];
    let args = ["-n", "1", "-v", "-rA"];
    let embedded = run_rpytest_env(&suite, &["--no-daemon", "-n", "1", "-v", "-rA"], &env);
    let cold = run_rpytest_env(&suite, &args, &env);
    assert!(cold.stderr.contains("running cold"), "{}", cold.dump());
    let warm = run_rpytest_env(&suite, &args, &env);
    assert!(!warm.stderr.contains("running cold"), "{}", warm.dump());
    let normalize = |text: &str| {
        text.lines().map(|l| if is_final_line(l) { normalize_final_line(l) } else { l.to_string() }).collect::<Vec<_>>()
    };
    assert_eq!(normalize(&warm.stdout), normalize(&embedded.stdout), "{}{}", warm.dump(), embedded.dump());
    assert_eq!(warm.code, 1);
}

#[test]
fn serve_status_stop_idle_timeout_and_no_daemon() {
    let dir = private_dir();
    let env = [("RPYTEST_RUNTIME_DIR", dir.path().to_str().unwrap())];
    let status = || run_command(&rpytest_bin(), &["serve".into(), "--status".into()], dir.path(), &env);
    let none = status();
    assert_ne!(none.code, 0, "{}", none.dump());
    assert!(none.stderr.contains("no daemon runs"), "{}", none.dump());

    let mut idle = Command::new(rpytest_bin())
        .args(["serve", "--idle-timeout", "1"])
        .envs(env)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while idle.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "--idle-timeout 1 did not stop the daemon");
        std::thread::sleep(Duration::from_millis(100));
    }

    let bad = run_command(&rpytest_bin(), &["serve".into(), "--status".into(), "--stop".into()], dir.path(), &env);
    assert_eq!(bad.code, 4, "{}", bad.dump());

    struct StopOnDrop<'a>(&'a [(&'a str, &'a str)], &'a Path);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            run_command(&rpytest_bin(), &["serve".into(), "--stop".into()], self.1, self.0);
        }
    }
    let _stop = StopOnDrop(&env, dir.path());
    let suite = Suite::new(&[
        ("pyproject.toml", "[tool.rpytest]\ndaemon = \"auto\"\n\n[tool.pytest.ini_options]\n"),
        ("test_x.py", "def test_x():\n    pass\n"),
    ]);
    let auto = run_rpytest_env(&suite, &["-n", "1"], &env);
    assert_eq!(auto.code, 0, "{}", auto.dump());
    assert!(auto.stderr.contains("started a daemon"), "{}", auto.dump());
    let up = status();
    assert_eq!(up.code, 0, "{}", up.dump());
    assert!(up.stdout.contains("pid") && up.stdout.contains("memory:"), "{}", up.dump());
    let forced = run_rpytest_env(&suite, &["--no-daemon", "-n", "1"], &[env[0], ("RPYTEST_TRACE", "1")]);
    assert!(!forced.stderr.contains("daemon:"), "{}", forced.dump());
    assert_eq!(forced.code, 0, "{}", forced.dump());
    let stop = run_command(&rpytest_bin(), &["serve".into(), "--stop".into()], dir.path(), &env);
    assert_eq!(stop.code, 0, "{}", stop.dump());
    assert_ne!(status().code, 0);
}

#[test]
fn ctrl_c_in_the_client_stops_a_warm_run_like_an_embedded_one() {
    let suite = Suite::new(&[("test_slow.py", SLOW_ONCE_MARKED), ("test_fast.py", "def test_fast():\n    pass\n")]);
    let daemon = Daemon::start(&[]);
    run(&suite, &daemon, &[]);
    daemon.wait_settled();
    suite.write(".slow", "");
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let err_file = tempfile::NamedTempFile::new().unwrap();
    let mut client = Command::new(rpytest_bin())
        .args(["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"])
        .envs([("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")])
        .env("COLUMNS", "80")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .current_dir(suite.path())
        .stdin(Stdio::null())
        .stdout(out_file.reopen().unwrap())
        .stderr(err_file.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Which worker holds test_fast depends on the history; wait for the slow one.
    while !suite.join(".started").exists() {
        assert!(
            Instant::now() < deadline,
            "the run did not start: {}",
            std::fs::read_to_string(err_file.path()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(client.id() as i32, libc::SIGINT) };
    let status = client.wait().unwrap();
    let stdout = std::fs::read_to_string(out_file.path()).unwrap();
    let stderr = std::fs::read_to_string(err_file.path()).unwrap();
    assert!(stderr.contains("daemon: warm zygote"), "{stderr}");
    assert_eq!(status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("KeyboardInterrupt") && !stdout.contains("test_slow PASSED"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(10), "the interrupted run took {:?}", started.elapsed());
}

#[test]
fn a_gone_or_garbled_daemon_costs_one_line_and_an_embedded_run() {
    let suite = Suite::new(&[("test_x.py", "def test_x():\n    pass\n")]);
    let dir = private_dir();
    let env = [("RPYTEST_RUNTIME_DIR", dir.path().to_str().unwrap())];
    // A socket nobody listens on: the daemon died without cleaning up.
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("daemon.sock")).unwrap());
    let gone = run_rpytest_env(&suite, &["-n", "1"], &env);
    assert_eq!(gone.code, 0, "{}", gone.dump());
    assert!(gone.stderr.contains("the daemon is gone"), "{}", gone.dump());
    let quiet = run_rpytest_env(&suite, &["-n", "1"], &env);
    assert!(!quiet.stderr.contains("daemon"), "the stale socket was not removed\n{}", quiet.dump());

    // Something that answers with garbage.
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("daemon.sock")).unwrap();
    let impostor = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(&[0, 0, 0, 2, 0xc1, 0xc1]);
    });
    let garbled = run_rpytest_env(&suite, &["-n", "1"], &env);
    impostor.join().unwrap();
    assert_eq!(garbled.code, 0, "{}", garbled.dump());
    assert_eq!(garbled.stderr.matches("daemon").count(), 1, "{}", garbled.dump());
    assert!(garbled.stderr.contains("running embedded"), "{}", garbled.dump());
}

/// A daemon that accepts connections (the kernel queues them) but never
/// answers: the client gives up after its limit, says so in one line and
/// runs embedded, with the same outcomes.
#[test]
fn a_wedged_daemon_costs_one_line_and_an_embedded_run() {
    let suite = Suite::new(&[("test_x.py", "def test_x():\n    pass\n\ndef test_y():\n    assert 0\n")]);
    let mut daemon = Daemon::start(&[]);
    let frozen = Stopped::stop(daemon.child.id());
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir())];
    let wedged = run_rpytest_env(&suite, &["-n", "2"], &env);
    assert!(!wedged.timed_out, "{}", wedged.dump());
    let lines: Vec<&str> = wedged.stderr.lines().filter(|l| l.contains("daemon")).collect();
    assert_eq!(lines.len(), 1, "{}", wedged.dump());
    assert!(lines[0].contains("did not answer within 15s") && lines[0].contains("running embedded"), "{}", lines[0]);
    assert!(wedged.elapsed < Duration::from_secs(30), "{}", wedged.dump());
    assert_same_as_pytest(&suite, &wedged, &[], "with a wedged daemon");
    drop(frozen);
    // Resumed, it answers the requests it queued meanwhile and serves on.
    assert!(daemon.alive());
    let (after, _) = run(&suite, &daemon, &[]);
    assert_same_as_pytest(&suite, &after, &[], "after the daemon resumed");
}

/// Kills a helper process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A listener that never accepts, with its accept queue full: a blocking
/// connect would wait on it forever. The client says so in one line and
/// runs embedded at once.
#[test]
fn a_daemon_that_accepts_no_more_connections_costs_one_line() {
    let suite = Suite::new(&[("test_x.py", "def test_x():\n    pass\n")]);
    let dir = private_dir();
    let socket = dir.path().join("daemon.sock");
    let never_accepts = "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n\
                         s.listen(0)\nprint('listening', flush=True)\ntime.sleep(120)\n";
    let mut stub = KillOnDrop(
        Command::new(python())
            .args(["-c", never_accepts, socket.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = [0u8; 9];
    stub.0.stdout.as_mut().unwrap().read_exact(&mut ready).unwrap();
    // The one connection a backlog of 0 queues; the next finds the queue full.
    let _queued = UnixStream::connect(&socket).unwrap();
    let args: Vec<String> = ["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let env = [("RPYTEST_RUNTIME_DIR", dir.path().to_str().unwrap())];
    let full = run_command_timeout(&rpytest_bin(), &args, suite.path(), &env, Duration::from_secs(30));
    assert!(!full.timed_out, "the client waited on a full accept queue\n{}", full.dump());
    assert_eq!(full.code, 0, "{}", full.dump());
    let lines: Vec<&str> = full.stderr.lines().filter(|l| l.contains("daemon")).collect();
    assert_eq!(
        lines,
        ["rpytest: the daemon accepts no more connections (wedged?); running embedded"],
        "{}",
        full.dump()
    );
    assert!(full.elapsed < Duration::from_secs(10), "{}", full.dump());
    // `rpytest serve` neither waits on it nor takes its socket.
    let serve = run_command_timeout(&rpytest_bin(), &["serve".into()], suite.path(), &env, Duration::from_secs(30));
    assert!(!serve.timed_out, "{}", serve.dump());
    assert_eq!(serve.code, 1, "{}", serve.dump());
    assert!(serve.stderr.contains("a daemon already serves"), "{}", serve.dump());
}

/// A warm zygote is its run's controller: it sets shared session fixtures
/// up after the handover, once per run, never while it waits.
#[test]
fn warm_runs_set_shared_fixtures_up_once_per_run() {
    let conftest = r#"
        import os, uuid, pytest

        @pytest.fixture(scope="session")
        def token():
            with open(os.path.join(os.path.dirname(__file__), "fixture.log"), "a") as f:
                f.write(f"setup {os.getpid()}\n")
            yield uuid.uuid4().hex
    "#;
    let tests: String = (0..6).map(|i| format!("def test_{i}(token):\n    assert token\n\n")).collect();
    let suite = Suite::new(&[("conftest.py", conftest), ("test_token.py", &tests)]);
    let daemon = Daemon::start(&[]);
    let share = [("RPYTEST_SHARED_SESSION_FIXTURES", "token")];
    let setups = || std::fs::read_to_string(suite.join("fixture.log")).unwrap_or_default().lines().count();
    let (first, _) = run(&suite, &daemon, &share);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(setups(), 1, "the cold run sets it up once\n{}", first.dump());
    daemon.wait_settled();
    assert_eq!(setups(), 1, "a waiting warm zygote set it up");
    let (second, path) = run(&suite, &daemon, &share);
    assert_eq!((second.code, path), (0, Path_::Warm), "{}", second.dump());
    assert_eq!(setups(), 2, "the warm run sets it up once, after the handover\n{}", second.dump());
}

/// A warm zygote is the daemon's child, so the client cannot read its exit
/// status; it asks the daemon. As a cold run does, a warm run exits with
/// the status `pytest_sessionfinish` leaves, also through `os._exit`.
#[test]
fn the_exit_status_left_by_sessionfinish_is_the_warm_runs() {
    let daemon = Daemon::start(&[]);
    for (body, expected) in
        [("session.exitstatus = 3", 3), ("raise RuntimeError('the end failed')", 1), ("import os; os._exit(7)", 7)]
    {
        let conftest = format!("def pytest_sessionfinish(session, exitstatus):\n    {body}\n");
        let tests = "def test_one():\n    pass\n\ndef test_two():\n    pass\n";
        let suite = Suite::new(&[("conftest.py", &conftest), ("test_good.py", tests)]);
        let (cold, path) = run(&suite, &daemon, &[]);
        assert_eq!((cold.code, path), (expected, Path_::Cold), "{body}: cold\n{}", cold.dump());
        daemon.wait_settled();
        let (warm, path) = run(&suite, &daemon, &[]);
        assert_eq!(path, Path_::Warm, "{body}\n{}", warm.dump());
        assert_eq!(warm.code, expected, "{body}: the warm run exits as the cold one\n{}", warm.dump());
        assert_eq!(warm.outcomes, cold.outcomes, "{body}\n{}", warm.dump());
        assert_same_as_pytest(&suite, &warm, &[], body);
    }
}

/// Two `-n auto` warm runs at once: the second takes its share of the CPUs
/// instead of all of them, and says so with `-v`.
/// A warm zygote's workers look like pytest's own process to the tests,
/// as an embedded run's do (`process_identity.rs`): the daemon's
/// variables are gone, the user's (`RPYTEST_RUNTIME_DIR`, `RPYTEST_TRACE`) stay.
#[test]
fn a_warm_worker_looks_like_pytests_own_process() {
    use common::probe::*;
    let suite = Suite::new(&[("test_probe.py", PROBE_TEST)]);
    let out_dir = tempfile::tempdir().unwrap(); // outside the suite: no change to it
    let out = out_dir.path().join("probe.json");
    let daemon = Daemon::start(&[]);
    let env = [("PROBE_OUT", out.to_str().unwrap())];
    let (first, _) = run(&suite, &daemon, &env);
    assert_eq!(first.code, 0, "{}", first.dump());
    let (second, path) = run(&suite, &daemon, &env);
    assert_eq!(path, Path_::Warm, "{}", second.dump());
    let warm = read_probe(&out, "warm rpytest");
    let env = [env[0], ("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    let args: Vec<String> = ["-m", "pytest", "--color=no", "-p", "no:cacheprovider"].map(String::from).into();
    let pytest = run_command(&python(), &args, suite.path(), &env);
    assert_eq!(pytest.code, 0, "{}", pytest.dump());
    assert_probes_match(&read_probe(&out, "pytest"), &warm, &[XDIST_IDENTITY], "warm");
    assert_xdist_identity(&warm, 2);
}

#[test]
fn concurrent_auto_runs_share_the_cpus() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        common::note_skip("one CPU leaves nothing to share");
        return;
    }
    let slow = "import os, time\n\ndef slow():\n    if os.path.exists('.slow'):\n        \
                open('.started-' + os.environ['WHICH'], 'w').close()\n        time.sleep(1.5)\n\n";
    let tests: String = (0..2 * cpus).map(|i| format!("def test_{i}():\n    slow()\n\n")).collect();
    let suite = Suite::new(&[("test_slow.py", &format!("{slow}{tests}"))]);
    let daemon = Daemon::start(&[]);
    let auto = ["-n", "auto", "-v"];
    let run_as = |which: &str| run_args(&python(), suite.path(), &daemon, &[("WHICH", which)], &auto);
    run_as("first");
    run_as("second");
    daemon.wait_settled();
    // Without history, `auto` is every CPU (the history may fit it lower).
    std::fs::remove_dir_all(suite.join(".rpytest")).unwrap();
    suite.write(".slow", "");
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| run_as("first"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !suite.join(".started-first").exists() {
            assert!(Instant::now() < deadline, "the first run did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = run_as("second");
        (first.join().unwrap(), second)
    });
    let workers = |result: &RunResult| result.workers.values().flatten().collect::<BTreeSet<_>>().len();
    assert_eq!(first.1, Path_::Warm, "{}", first.0.dump());
    assert_eq!(second.1, Path_::Warm, "{}", second.0.dump());
    assert!(!first.0.stderr.contains("share the CPUs"), "{}", first.0.dump());
    assert!(second.0.stderr.contains("1 other warm run(s) of the daemon share the CPUs"), "{}", second.0.dump());
    assert_eq!(workers(&second.0), (cpus / 2).max(1), "{}", second.0.dump());
    assert!(workers(&first.0) > workers(&second.0), "{}", first.0.dump());
    assert_eq!((first.0.code, second.0.code), (0, 0));
}

/// A warm zygote is the daemon's child, not rpytest's: what a crashed
/// worker's test left detached (setsid, double fork) must still end with
/// the run, not live on under the daemon.
#[test]
fn a_crashed_workers_detached_child_does_not_outlive_a_warm_run() {
    let marker = format!("rpytest-warm-orphan-{}", std::process::id());
    let code = format!(
        "import os, sys\n\nCHILD = [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}']\n\n\
         def test_detach_then_crash():\n    pid = os.fork()\n    if pid == 0:\n        os.setsid()\n        \
         if os.fork() == 0:\n            os.execv(sys.executable, CHILD)\n        os._exit(0)\n    os.waitpid(pid, 0)\n    \
         os._exit(3)\n\ndef test_fine():\n    pass\n"
    );
    let suite = Suite::new(&[("test_crash.py", &code)]);
    let daemon = Daemon::start(&[]);
    let (_, _) = run(&suite, &daemon, &[]);
    daemon.wait_settled();
    let (r, path) = run(&suite, &daemon, &[]);
    assert_eq!(path, Path_::Warm, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 1 passed"), "{}", r.dump());
    assert_eq!(none_left(&marker), [], "a crashed test's detached process outlived the warm run\n{}", r.dump());
}

/// A pre-warmed zygote writes nothing into the project before a run takes
/// it over (issue #24.3). A plugin that stores a value in pytest's cache
/// while configuring (pytest-randomly's seed) once changed
/// `.pytest_cache` seconds after every warm run, when the daemon prepared
/// the next zygote; `--randomly-seed=last` then replayed a seed no run used.
#[test]
fn a_prewarmed_zygote_writes_pytests_cache_only_when_a_run_takes_it() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            "import random\n\ndef pytest_configure(config):\n    config.cache.set('demo/seed', random.random())\n",
        ),
        ("test_one.py", "def test_a():\n    pass\n"),
    ]);
    let daemon = Daemon::start(&[]);
    let seed_file = suite.join(".pytest_cache/v/demo/seed");
    let seed = || std::fs::read_to_string(&seed_file).unwrap_or_default();
    let args: Vec<String> =
        ["--python", python().to_str().unwrap(), "--color=no", "-n", "2"].map(String::from).to_vec();
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    let mut warm_runs = 0;
    for round in 0..3 {
        let run = run_command(&rpytest_bin(), &args, suite.path(), &env);
        assert_eq!(run.code, 0, "{}", run.dump());
        warm_runs += usize::from(run.stderr.contains("daemon: warm zygote"));
        let written = seed();
        assert!(!written.is_empty(), "round {round}: the run wrote no seed\n{}", run.dump());
        daemon.wait_settled();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(seed(), written, "round {round}: the seed changed after the run, with no run");
    }
    assert!(warm_runs >= 2, "the later runs were to be warm ({warm_runs} were)");
}
