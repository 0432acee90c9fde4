//! Runs started at the same moment must not break each other (issue #23.1).
//!
//! Tox, nox, pants and editors start several runs at once. Each run removes
//! the socket directories dead runs left in `$TMPDIR`; a live run caught
//! between `bind` and `listen` once looked dead, lost its directory, and its
//! zygote failed to connect ("not a usable Python 3 interpreter", rc 4).
//! A hundred starts, ten at a time on a machine this small, found it every
//! time; now every run must end as pytest's does.

mod common;
use common::*;
use std::sync::Mutex;

const RUNS: usize = 100;
const AT_ONCE: usize = 10;

#[test]
fn a_hundred_runs_started_ten_at_a_time_all_succeed() {
    let suite = Suite::new(&[("test_two.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n")]);
    // `-p no:tmpdir`: concurrent pytest sessions race each other when they
    // prune old `/tmp/pytest-of-$USER` directories, and pytest itself then
    // warns `(rm_rf) error removing ...` (plain pytest does, ten at a time).
    // The suite needs no tmp_path; what is tested is rpytest's own socket.
    let pytest = run_pytest(&suite, &["-q", "-p", "no:tmpdir"]);
    assert_eq!(pytest.code, 0, "{}", pytest.dump());
    let failures = Mutex::new(Vec::new());
    for _round in 0..RUNS / AT_ONCE {
        std::thread::scope(|scope| {
            for _ in 0..AT_ONCE {
                scope.spawn(|| {
                    let run = run_rpytest(&suite, &["--no-daemon", "-n", "1", "-q", "-p", "no:tmpdir"]);
                    if run.code != pytest.code || run.final_line != pytest.final_line {
                        failures.lock().unwrap().push(run.dump());
                    }
                });
            }
        });
    }
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {RUNS} runs failed; the first:\n{}", failures.len(), failures[0]);
}

/// The moment the race needed, held still: a live run's directory whose
/// socket is bound but not yet listening. Another run must leave it alone
/// (the live run holds the directory's lock), and still clean up a
/// directory whose run is really gone.
#[test]
fn a_run_between_bind_and_listen_keeps_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("rpytest-live");
    let dead = tmp.path().join("rpytest-dead");
    // A stand-in for the live run: binds without listening, holds the lock.
    let holder = "import fcntl, os, socket, sys, time\n\
                  live, dead = sys.argv[1:]\n\
                  for d in (live, dead):\n    os.mkdir(d, 0o700)\n\
                  fd = os.open(live, os.O_RDONLY)\n\
                  fcntl.flock(fd, fcntl.LOCK_EX)\n\
                  for d in (live, dead):\n    socket.socket(socket.AF_UNIX).bind(os.path.join(d, 'engine.sock'))\n\
                  print('ready', flush=True)\n\
                  sys.stdin.read()\n";
    let mut child = std::process::Command::new(python())
        .args(["-c", holder])
        .arg(&live)
        .arg(&dead)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let suite = Suite::new(&[("test_one.py", "def test_a():\n    pass\n")]);
    let tmpdir = tmp.path().to_str().unwrap();
    let run = run_rpytest_env(&suite, &["--no-daemon", "-n", "1", "-q"], &[("TMPDIR", tmpdir)]);
    drop(child.stdin.take());
    let _ = child.wait();
    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(live.join("engine.sock").exists(), "a live run's socket directory was removed by another run");
    assert!(!dead.exists(), "a dead run's socket directory must still be cleaned up");
}
