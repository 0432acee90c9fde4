//! A daemon that stops answering while a run asks it for a warm zygote.
//!
//! The run gives up after `RPYTEST_DAEMON_TIMEOUT` and runs embedded. The
//! daemon must not hold the client's output meanwhile (whoever reads the
//! client's pipe sees its end when the client exits), and once resumed it
//! must not run the request the client gave up on: the stale run would
//! write a second session into the dead client's output.

mod common;
use common::daemon::{Daemon, Stopped};
use common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

const SUITE: &str = "def test_a():\n    pass\n\ndef test_b():\n    pass\n\ndef test_c():\n    assert 0\n";

/// One run with stdout and stderr into one pipe, as `rpytest ... 2>&1 | cat`.
struct Piped {
    code: Option<i32>,
    /// What the reader got, once it saw the end of the pipe (within 10 s
    /// of the client's exit), else `None`.
    output: Option<String>,
}

fn run_piped(dir: &Path, daemon: &Daemon) -> Piped {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut cmd = Command::new(rpytest_bin());
    cmd.args(["--python", python().to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"])
        .current_dir(dir)
        .env_remove("PYTEST_ADDOPTS")
        .env("RPYTEST_RUNTIME_DIR", daemon.runtime_dir())
        .env("RPYTEST_DAEMON_TIMEOUT", "2")
        .env("RPYTEST_TRACE", "1")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // it holds our copies of the pipe's write end
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let deadline = Instant::now() + timeout();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Piped { code, output: rx.recv_timeout(Duration::from_secs(10)).ok() }
}

/// Every file and directory under `dir` with its size and mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            }
            found.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    found
}

/// The pid of the key's warm zygote, once the daemon has one.
fn warm_pid(daemon: &Daemon) -> String {
    daemon.wait_settled();
    let status = daemon.status();
    let line = status.stdout.lines().find(|l| l.ends_with(": warm"));
    let pid = line.and_then(|l| l.split(" pid ").nth(1)).and_then(|rest| rest.split(':').next());
    pid.unwrap_or_else(|| panic!("no warm zygote\n{}", status.dump())).to_string()
}

fn outcome_lines(output: &str) -> Vec<&str> {
    output.lines().filter(|l| !l.starts_with("rpytest trace")).collect()
}

#[test]
fn a_stopped_daemon_neither_holds_nor_later_writes_the_clients_output() {
    let suite = Suite::new(&[("test_x.py", SUITE)]);
    let daemon = Daemon::start(&[]);
    let cold = run_piped(suite.path(), &daemon);
    let cold_output = cold.output.expect("the reader saw no end of the cold run's output");
    assert_eq!(cold.code, Some(1), "{cold_output}");
    let zygote = warm_pid(&daemon);

    let frozen = Stopped::stop(daemon.child.id());
    let started = Instant::now();
    let fallback = run_piped(suite.path(), &daemon);
    let output = fallback.output.unwrap_or_else(|| {
        panic!("the client exited ({:?}) but its output stayed open: the stopped daemon holds it", fallback.code)
    });
    assert_eq!(fallback.code, Some(1), "{output}");
    assert!(started.elapsed() < Duration::from_secs(20), "{output}");
    assert!(output.contains("rpytest: the daemon did not answer within 2s (wedged?); running embedded"), "{output}");
    let lines = outcome_lines(&output);
    assert_eq!(lines.iter().filter(|l| l.contains("test session starts")).count(), 1, "{output}");
    assert!(lines.last().is_some_and(|l| l.contains("1 failed, 2 passed in")), "{output}");

    // Resumed, the daemon finds the request's client gone: nothing runs,
    // nothing is written, and the warm zygote stays for the next run.
    let before = snapshot(suite.path());
    drop(frozen);
    assert_eq!(warm_pid(&daemon), zygote, "the daemon used its warm zygote for a client that had left");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(snapshot(suite.path()), before, "the project changed after the daemon resumed");

    let warm = run_piped(suite.path(), &daemon);
    let warm_output = warm.output.expect("the reader saw no end of the warm run's output");
    // A fork of the same warm session (it serves run after run) took it.
    assert!(warm_output.contains("took the run"), "{warm_output}");
    assert_eq!(warm_pid(&daemon), zygote, "the warm session was replaced");
    assert_eq!(warm.code, Some(1), "{warm_output}");
    assert!(outcome_lines(&warm_output).last().is_some_and(|l| l.contains("1 failed, 2 passed in")), "{warm_output}");
    drop(daemon);
    assert_eq!(wait_no_processes_in(suite.path(), Duration::from_secs(5)), [], "processes left behind");
}
