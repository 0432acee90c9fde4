//! The daemon rebuilds on its own, in the background: after an edit that a
//! session cannot take in place, the most recently used session is built
//! first and one at a time; a session whose build saw a file change under
//! it is built again, without a run having to ask.

mod common;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::*;

/// Collecting takes a while (a slow import), so a build can be watched;
/// the import touches `$COLLECTING_MARK` (outside the suite) as it starts.
fn slow_suite() -> Suite {
    Suite::new(&[
        ("conftest.py", "import pytest\n"),
        (
            "test_slow.py",
            "import os\nimport time\n\nopen(os.environ['COLLECTING_MARK'], 'a').close()\ntime.sleep(0.6)\n\n\
             def test_slow():\n    pass\n",
        ),
        ("test_quick.py", "def test_quick():\n    pass\n"),
    ])
}

fn mark(suite: &Suite) -> std::path::PathBuf {
    suite.path().with_extension("collecting")
}

fn run_via(daemon: &Daemon, suite: &Suite, args: &[&str]) -> RunResult {
    let all: Vec<String> =
        ["--python", python().to_str().unwrap(), "-n", "1"].iter().chain(args).map(|s| s.to_string()).collect();
    let mark = mark(suite);
    let env = [
        ("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()),
        ("RPYTEST_TRACE", "1"),
        ("COLLECTING_MARK", mark.to_str().unwrap()),
    ];
    run_command(&rpytest_bin(), &all, suite.path(), &env)
}

/// `serve --status`'s session lines: `(arguments, state)`, e.g. `("[-q]", "warm")`.
fn sessions(daemon: &Daemon) -> Vec<(String, String)> {
    let status = daemon.status().stdout;
    status
        .lines()
        .filter(|line| line.starts_with("  /") && line.contains(" pid "))
        .filter_map(|line| {
            let args = line[line.find('[')?..=line.find(']')?].to_string();
            let state = line.rsplit_once(": ")?.1.to_string();
            Some((args, state))
        })
        .collect()
}

/// Polls the status until `done` holds; panics with the last status after `limit`.
fn wait_for(
    daemon: &Daemon,
    limit: Duration,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let now = sessions(daemon);
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: {now:?}\n{}", daemon.status().dump());
        std::thread::sleep(Duration::from_millis(15));
    }
}

fn state_of<'a>(now: &'a [(String, String)], args: &str) -> Option<&'a str> {
    now.iter().find(|(a, _)| a == args).map(|(_, state)| state.as_str())
}

#[test]
fn a_conftest_edit_rebuilds_the_most_recently_used_session_first_one_at_a_time() {
    let suite = slow_suite();
    let daemon = Daemon::start_polling("1");
    for args in [&["-q"][..], &["-v"]] {
        run_via(&daemon, &suite, args);
        daemon.wait_settled();
    }
    let warm_run = run_via(&daemon, &suite, &["-v"]);
    assert!(warm_run.stderr.contains("daemon: warm zygote"), "{}", warm_run.dump());
    // `-v` was used last. The edit adds a hook: no session takes it in place.
    suite.write(
        "conftest.py",
        "def pytest_terminal_summary(terminalreporter):\n    terminalreporter.write_line('edited')\n",
    );
    let first = wait_for(&daemon, timeout(), "no session was rebuilt after the conftest edit", |now| {
        now.iter().any(|(_, state)| state == "collecting")
    });
    assert_eq!(state_of(&first, "[-v]"), Some("collecting"), "the most recently used goes first: {first:?}");
    assert_ne!(state_of(&first, "[-q]"), Some("collecting"), "one rebuild at a time: {first:?}");
    wait_for(&daemon, timeout(), "the other session was not rebuilt after the first", |now| {
        state_of(now, "[-q]") == Some("collecting")
    });
    wait_for(&daemon, timeout(), "both sessions warm again", |now| {
        state_of(now, "[-q]") == Some("warm") && state_of(now, "[-v]") == Some("warm")
    });
    // Rebuilt in the background, so the next run of each is warm and sees the edit.
    for args in [&["-q"][..], &["-v"]] {
        let run = run_via(&daemon, &suite, args);
        assert!(run.stderr.contains("daemon: warm zygote"), "{}", run.dump());
        assert!(run.stdout.contains("edited"), "{}", run.dump());
    }
    let _ = std::fs::remove_file(mark(&suite));
}

#[test]
fn a_session_that_saw_a_file_change_while_collecting_is_built_again_unasked() {
    let suite = slow_suite();
    let daemon = Daemon::start_polling("1");
    run_via(&daemon, &suite, &["-q"]);
    std::fs::remove_file(mark(&suite)).unwrap();
    // The session the run asked for has read conftest.py and is in test_slow.py's slow import.
    let deadline = Instant::now() + timeout();
    while !mark(&suite).exists() {
        assert!(Instant::now() < deadline, "the first run asked for no session\n{}", daemon.status().dump());
        std::thread::sleep(Duration::from_millis(10));
    }
    let collecting = pid_of(&daemon.status().stdout, "[-q]");
    suite.write(
        "conftest.py",
        "def pytest_terminal_summary(terminalreporter):\n    terminalreporter.write_line('edited')\n",
    );
    wait_for(&daemon, timeout(), "the session was not built again", |now| state_of(now, "[-q]") == Some("warm"));
    let rebuilt = pid_of(&daemon.status().stdout, "[-q]");
    assert_ne!(collecting, rebuilt, "the session that saw the edit mid-way was kept\n{}", daemon.status().dump());
    let run = run_via(&daemon, &suite, &["-q"]);
    assert!(run.stderr.contains("daemon: warm zygote"), "{}", run.dump());
    assert!(run.stdout.contains("edited"), "{}", run.dump());
    assert_eq!(run.counts().get("passed"), Some(&2), "{}", run.dump());
    let _ = std::fs::remove_file(mark(&suite));
}

/// The pid `serve --status` gives the session with these arguments.
fn pid_of(status: &str, args: &str) -> Option<String> {
    let line = status.lines().find(|line| line.starts_with("  /") && line.contains(&format!("{args} pid ")))?;
    Some(line.split(" pid ").nth(1)?.split(':').next()?.to_string())
}
