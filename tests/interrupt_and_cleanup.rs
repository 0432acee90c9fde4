//! rpytest owns every Python process it starts: after a normal run, a
//! Ctrl-C, or a SIGTERM, none may survive (a leaked zygote or worker keeps
//! CI jobs and pipes alive), and Ctrl-C ends the run with pytest's exit
//! code 2 ("interrupted", DESIGN.md invariant 6) instead of hanging.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn slow_suite() -> Suite {
    Suite::new(&[(
        "test_slow.py",
        r#"
        import time
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_sleeps(i):
            time.sleep(30)

        def test_quick():
            pass
        "#,
    )])
}

/// Start rpytest in its own process group with output going to files.
fn start(suite: &Suite, args: &[&str]) -> (std::process::Child, tempfile::TempDir) {
    spawn_rpytest(suite, &[&["-p", "no:cacheprovider"][..], args].concat(), &[])
}

/// `rpytest --python <py> --color=no <args>` in its own process group,
/// with `env` added and output going to files in the returned directory.
fn spawn_rpytest(
    suite: &Suite,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let out = std::fs::File::create(logs.path().join("stdout")).unwrap();
    let err = std::fs::File::create(logs.path().join("stderr")).unwrap();
    let child = Command::new(rpytest_bin())
        .arg("--python")
        .arg(python())
        .arg("--color=no")
        .args(args)
        .current_dir(suite.path())
        .env("COLUMNS", "80")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start rpytest");
    (child, logs)
}

fn logs_text(logs: &tempfile::TempDir) -> String {
    let read = |n: &str| std::fs::read_to_string(logs.path().join(n)).unwrap_or_default();
    format!("---- stdout ----\n{}\n---- stderr ----\n{}", read("stdout"), read("stderr"))
}

fn signal(target: &str, sig: &str) {
    Command::new("kill").args([sig, "--", target]).status().expect("run kill");
}

/// Wait for exit up to `limit`; on timeout kill the group and return None.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > end {
            signal(&format!("-{}", child.id()), "-KILL");
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Give workers time to start the sleeping tests.
fn wait_until_running(suite: &Suite) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end && processes_in_dir(suite.path()).len() < 3 {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
}

fn kill_leftovers(left: &[(u32, String)]) {
    for (pid, _) in left {
        signal(&pid.to_string(), "-KILL");
    }
}

#[test]
fn normal_run_leaves_no_processes() {
    let suite = Suite::new(&[("test_t.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n")]);
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(5));
    kill_leftovers(&left);
    assert!(left.is_empty(), "processes left after a normal run: {left:#?}\n{}", r.dump());
}

#[test]
fn ctrl_c_exits_2_and_leaves_no_processes() {
    let suite = slow_suite();
    let (mut child, logs) = start(&suite, &["-n", "2"]);
    wait_until_running(&suite);
    // A terminal's Ctrl-C signals the whole foreground process group.
    signal(&format!("-{}", child.id()), "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(5));
    kill_leftovers(&left);
    let status = status.unwrap_or_else(|| panic!("rpytest ignored Ctrl-C for 20s\n{}", logs_text(&logs)));
    assert_eq!(status.code(), Some(2), "Ctrl-C should exit 2 like pytest\n{}", logs_text(&logs));
    assert!(left.is_empty(), "processes left after Ctrl-C: {left:#?}\n{}", logs_text(&logs));
}

/// A session fixture that starts a "server" and stops it in its teardown.
fn server_suite() -> Suite {
    Suite::new(&[
        (
            "conftest.py",
            r#"
            import os, subprocess, sys
            import pytest

            @pytest.fixture(scope="session")
            def server():
                proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
                yield proc
                proc.terminate()
                proc.wait()
                open(f"torn_down_{os.getpid()}", "w").close()
            "#,
        ),
        (
            "test_server.py",
            r#"
            import time
            import pytest

            def test_quick(server):
                pass

            @pytest.mark.parametrize("i", range(4))
            def test_sleeps(server, i):
                time.sleep(30)
            "#,
        ),
    ])
}

/// Ctrl-C as in pytest: the tests in flight are interrupted, fixtures are
/// torn down (the server they started is stopped), and junit and the
/// cache are written for what ran.
#[test]
fn ctrl_c_tears_down_and_writes_junit_and_cache() {
    let suite = server_suite();
    let (mut child, logs) = spawn_rpytest(&suite, &["-n", "2", "--junitxml=j.xml"], &[]);
    wait_until_running(&suite);
    let started = Instant::now();
    signal(&format!("-{}", child.id()), "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(25));
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(5));
    kill_leftovers(&left);
    let text = logs_text(&logs);
    let status = status.unwrap_or_else(|| panic!("rpytest did not end within 25s of Ctrl-C\n{text}"));
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15), "teardown took {:?}\n{text}", started.elapsed());
    assert!(left.is_empty(), "the fixture's server outlived the run: {left:#?}\n{text}");
    let torn_down = std::fs::read_dir(suite.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("torn_down_"))
        .count();
    assert!(torn_down >= 1, "no session teardown ran\n{text}");
    let junit = std::fs::read_to_string(suite.path().join("j.xml")).unwrap_or_else(|_| panic!("no j.xml\n{text}"));
    assert!(junit.contains(r#"name="test_quick""#), "{junit}\n{text}");
    assert!(suite.path().join(".pytest_cache/v/cache/nodeids").exists(), "no cache written\n{text}");
    assert!(text.contains("KeyboardInterrupt"), "{text}");
    let counts = text.lines().filter(|l| l.starts_with('=') && l.contains(" in ")).count();
    assert_eq!(counts, 1, "one counts line, nothing after it\n{text}");
}

#[test]
fn sigterm_to_rpytest_alone_leaves_no_processes() {
    let suite = slow_suite();
    let (mut child, logs) = start(&suite, &["-n", "2"]);
    wait_until_running(&suite);
    signal(&child.id().to_string(), "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(10));
    kill_leftovers(&left);
    assert!(status.is_some(), "rpytest ignored SIGTERM for 20s\n{}", logs_text(&logs));
    assert!(left.is_empty(), "workers outlived rpytest after SIGTERM: {left:#?}\n{}", logs_text(&logs));
}

#[test]
fn sigkill_to_rpytest_alone_leaves_no_processes() {
    let suite = slow_suite();
    let (mut child, logs) = start(&suite, &["-n", "2"]);
    wait_until_running(&suite);
    signal(&child.id().to_string(), "-KILL");
    let _ = child.wait();
    // Orphaned workers must notice their engine is gone (socket EOF or
    // parent-death signal) -- but a test sleeping 30s may finish first, so
    // allow that long.
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(35));
    kill_leftovers(&left);
    assert!(left.is_empty(), "workers outlived a SIGKILLed rpytest: {left:#?}\n{}", logs_text(&logs));
}

/// rpytest with `TMPDIR` set to a private directory, so the test can see
/// the engine's socket directory (`rpytest-*`) and whether it is left.
fn start_with_tmpdir(suite: &Suite, tmp: &std::path::Path) -> (std::process::Child, tempfile::TempDir) {
    spawn_rpytest(suite, &["-p", "no:cacheprovider", "-n", "2"], &[("TMPDIR", tmp.as_os_str())])
}

/// What rpytest left in the temp dir: its socket directories. (pytest's own
/// `pytest-of-<user>` basetemp is kept, as plain pytest keeps it.)
fn socket_dirs(tmp: &std::path::Path) -> Vec<String> {
    let entries = std::fs::read_dir(tmp).unwrap().flatten();
    entries.map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with("pytest-of-")).collect()
}

/// Sends `sig` to rpytest alone mid-run (as `kill`, CI cancelling a job, or
/// a closing terminal does) and checks that rpytest exits (it takes well
/// under a second on an idle machine; 10 s allows for a CI host running
/// many tests at once), no process of the run is left and its socket
/// directory is gone.
fn stop_mid_run(sig: &str) -> (std::process::ExitStatus, String) {
    let suite = slow_suite();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, logs) = start_with_tmpdir(&suite, tmp.path());
    wait_until_running(&suite);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tmp.path().join(&socket_dirs(tmp.path())[0])).unwrap().permissions(),
    );
    signal(&child.id().to_string(), sig);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    // What rpytest ends is gone before it exits; a moment for the kernel to reap.
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(2));
    let dirs = socket_dirs(tmp.path());
    kill_leftovers(&left);
    let status = status.unwrap_or_else(|| panic!("rpytest still running 10 s after {sig}\n{}", logs_text(&logs)));
    assert_eq!(mode & 0o777, 0o700, "the socket directory must admit only its owner");
    assert!(left.is_empty(), "processes left after {sig}: {left:#?}\n{}", logs_text(&logs));
    assert!(dirs.is_empty(), "left in TMPDIR after {sig}: {dirs:?}\n{}", logs_text(&logs));
    (status, logs_text(&logs))
}

#[test]
fn sigterm_interrupts_the_run_and_leaves_no_process_or_socket_dir() {
    use std::os::unix::process::ExitStatusExt;
    let (status, logs) = stop_mid_run("-TERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "rpytest should end by SIGTERM after its teardown\n{logs}");
    assert!(logs.contains("SIGTERM received: interrupting the run"), "the run should say why it stops\n{logs}");
    assert!(logs.contains("!! KeyboardInterrupt !!"), "the tests are interrupted as by Ctrl-C\n{logs}");
    assert!(logs.contains("passed") || logs.contains("no tests ran"), "the counts line is printed\n{logs}");
}

#[test]
fn sighup_interrupts_the_run_and_leaves_no_process_or_socket_dir() {
    use std::os::unix::process::ExitStatusExt;
    let (status, logs) = stop_mid_run("-HUP");
    assert_eq!(status.signal(), Some(libc::SIGHUP), "rpytest should end by SIGHUP after its teardown\n{logs}");
    assert!(logs.contains("SIGHUP received: interrupting the run"), "the run should say why it stops\n{logs}");
    assert!(logs.contains("!! KeyboardInterrupt !!"), "the tests are interrupted as by Ctrl-C\n{logs}");
}

/// SIGKILL cannot be handled: the Python processes die with rpytest
/// (PR_SET_PDEATHSIG), and the socket directory it could not remove is
/// removed by the next run in the same temp dir.
#[test]
fn sigkill_leaves_no_process_and_the_next_run_removes_its_socket_dir() {
    let suite = slow_suite();
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, logs) = start_with_tmpdir(&suite, tmp.path());
    wait_until_running(&suite);
    signal(&child.id().to_string(), "-KILL");
    let _ = child.wait();
    // Each dies with its parent (PR_SET_PDEATHSIG): soon, but on a busy host not at once.
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(10));
    kill_leftovers(&left);
    assert!(left.is_empty(), "processes left 10 s after SIGKILL: {left:#?}\n{}", logs_text(&logs));
    assert_eq!(socket_dirs(tmp.path()).len(), 1, "the killed run's socket directory\n{}", logs_text(&logs));
    let quick = Suite::new(&[("test_q.py", "def test_q():\n    pass\n")]);
    let tmpdir = tmp.path().to_str().unwrap();
    let r = run_rpytest_env(&quick, &["-n", "1"], &[("TMPDIR", tmpdir)]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(socket_dirs(tmp.path()), Vec::<String>::new(), "the next run removes a dead run's socket directory");
}

/// Ctrl-C while pytest is still collecting (a slow import): the terminal
/// shows what plain pytest shows, and the exit code is pytest's 2.
#[test]
fn ctrl_c_during_collection_prints_what_pytest_prints() {
    let suite = Suite::new(&[("test_slow_import.py", "import time\ntime.sleep(15)\n\ndef test_a():\n    pass\n")]);
    let interrupt = |mut child: std::process::Child, logs: &tempfile::TempDir| {
        std::thread::sleep(Duration::from_secs(3));
        signal(&format!("-{}", child.id()), "-INT");
        let status = wait_exit(&mut child, Duration::from_secs(10));
        let text = logs_text(logs);
        (status.unwrap_or_else(|| panic!("no exit 10 s after Ctrl-C\n{text}")), text)
    };
    let pytest_logs = tempfile::tempdir().unwrap();
    let pytest = Command::new(python())
        .args(["-m", "pytest", "--color=no", "-p", "no:cacheprovider"])
        .current_dir(suite.path())
        .env("COLUMNS", "80")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(pytest_logs.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(pytest_logs.path().join("stderr")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let (pytest_status, pytest_text) = interrupt(pytest, &pytest_logs);
    let (child, logs) = start(&suite, &["-n", "2"]);
    let (status, text) = interrupt(child, &logs);
    assert_eq!(pytest_status.code(), Some(2), "{pytest_text}");
    assert_eq!(status.code(), Some(2), "Ctrl-C during collection exits 2 like pytest\n{text}");
    for line in ["!!! KeyboardInterrupt !!!", "test_slow_import.py:2: KeyboardInterrupt", "no tests ran in"] {
        assert!(pytest_text.contains(line), "pytest prints {line:?}\n{pytest_text}");
        assert!(text.contains(line), "rpytest should print {line:?} as pytest does\n{text}\n\npytest:\n{pytest_text}");
    }
    let left = wait_no_processes_in(suite.path(), Duration::from_secs(5));
    kill_leftovers(&left);
    assert!(left.is_empty(), "processes left after Ctrl-C during collection: {left:#?}\n{text}");
}
