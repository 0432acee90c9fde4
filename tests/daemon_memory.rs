//! `daemon_max_memory`: the daemon's warm sessions stay under a memory cap
//! (their summed PSS). Past it the least recently used session ends, never
//! the one that just became warm for the run that asked for it, unless it
//! alone is over the cap; `serve --status` names each eviction. Runs stay
//! correct either way: warm or cold, they equal `python -m pytest`.
//!
//! Each suite's conftest holds a ballast of touched private memory, so a
//! session's size is known to within the interpreter's few tens of MiB.

mod common;
use common::daemon::Daemon;
use common::*;

/// A suite whose collected session holds `ballast_mib` MiB more than a
/// bare pytest session.
fn suite(ballast_mib: u32) -> Suite {
    Suite::new(&[
        ("conftest.py", &format!("BALLAST = b'\\x01' * ({ballast_mib} << 20)\n")),
        (
            "test_memory.py",
            "import conftest\n\n\ndef test_ballast_is_there():\n    assert len(conftest.BALLAST) > 0\n\n\n\
             def test_fails():\n    assert 1 == 2\n\n\ndef test_passes():\n    pass\n",
        ),
    ])
}

fn rpytest_via(daemon: &Daemon, suite: &Suite) -> RunResult {
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    run_rpytest_env(suite, &["-v", "-n", "1"], &env)
}

fn warm(result: &RunResult) -> bool {
    result.stderr.contains("daemon: warm zygote")
}

/// Runs the suite through the daemon, requires it warm or cold as said,
/// and the same outcomes and exit code as pytest.
fn run_and_compare(daemon: &Daemon, suite: &Suite, want_warm: bool) -> RunResult {
    let rpytest = rpytest_via(daemon, suite);
    assert_eq!(warm(&rpytest), want_warm, "warm: expected {want_warm}\n{}", rpytest.dump());
    let pair = Pair { pytest: run_pytest(suite, &["-v"]), rpytest };
    assert_pair_same(&pair);
    assert_eq!(pair.rpytest.code, 1, "one test fails\n{}", pair.dump());
    pair.rpytest
}

fn name(suite: &Suite) -> String {
    suite.path().file_name().unwrap().to_string_lossy().into_owned()
}

/// The status line of `suite`'s session, if the daemon holds one.
fn session_line(status: &str, suite: &Suite) -> Option<String> {
    let project = name(suite);
    status.lines().find(|l| l.starts_with("  /") && l.contains(&project) && !l.contains(": spare")).map(str::to_string)
}

fn evictions(status: &str) -> Vec<&str> {
    status.lines().filter(|l| l.starts_with("  evicted ")).collect()
}

#[test]
fn a_second_projects_warm_session_evicts_the_least_recently_used_over_the_cap() {
    // Each session: 60 MiB of ballast and a bare pytest (20-30 MiB), so one
    // fits in 120 MiB and two do not.
    let (first, second) = (suite(60), suite(60));
    let daemon = Daemon::start_env(&[], &[("RPYTEST_DAEMON_MAX_MEMORY", "120MiB")]);
    run_and_compare(&daemon, &first, false);
    daemon.wait_settled();
    run_and_compare(&daemon, &first, true);
    let status = daemon.status().stdout;
    assert!(session_line(&status, &first).is_some_and(|l| l.ends_with(": warm")), "{status}");
    assert!(evictions(&status).is_empty(), "one session fits\n{status}");

    run_and_compare(&daemon, &second, false);
    daemon.wait_settled();
    let status = daemon.status().stdout;
    assert!(session_line(&status, &second).is_some_and(|l| l.ends_with(": warm")), "{status}");
    assert_eq!(session_line(&status, &first), None, "the first session was evicted\n{status}");
    let evicted = evictions(&status);
    assert_eq!(evicted.len(), 1, "{status}");
    assert!(evicted[0].contains(&name(&first)), "{status}");
    assert!(evicted[0].ends_with("s ago: over daemon_max_memory 120 MiB"), "{status}");
    assert!(status.contains("of daemon_max_memory 120 MiB"), "the cap is shown\n{status}");

    // Both projects keep running correctly: the evicted one cold, then its
    // new session (just warm: kept) evicts the other, now the older.
    run_and_compare(&daemon, &second, true);
    let status = daemon.status().stdout;
    let details = status.lines().skip_while(|l| !l.contains(&name(&second))).nth(1).unwrap_or_default();
    let last_run = details.split("last run ").nth(1).unwrap_or_default();
    assert!(details.contains("PSS ") && last_run.ends_with("s ago: --color=no -p no:cacheprovider -v"), "{status}");
    run_and_compare(&daemon, &first, false);
    daemon.wait_settled();
    run_and_compare(&daemon, &first, true);
    let status = daemon.status().stdout;
    let evicted = evictions(&status);
    assert_eq!(evicted.len(), 2, "{status}");
    assert!(evicted[1].contains(&name(&second)), "the latest eviction is listed last\n{status}");
    assert_eq!(session_line(&status, &second), None, "{status}");
}

#[test]
fn a_session_alone_over_the_cap_is_evicted_and_its_runs_say_why() {
    let big = suite(80);
    let daemon = Daemon::start_env(&[], &[("RPYTEST_DAEMON_MAX_MEMORY", "50MiB")]);
    run_and_compare(&daemon, &big, false);
    daemon.wait_settled();
    let status = daemon.status().stdout;
    let line = session_line(&status, &big).unwrap_or_default();
    assert!(
        line.contains(": evicted: its warm session (") && line.contains("alone is over daemon_max_memory 50 MiB"),
        "{status}"
    );
    assert_eq!(evictions(&status).len(), 1, "{status}");

    let cold = run_and_compare(&daemon, &big, false);
    assert!(cold.stderr.contains("alone is over daemon_max_memory 50 MiB"), "the cold run says why\n{}", cold.dump());
    daemon.wait_settled();
    let status = daemon.status().stdout;
    assert_eq!(evictions(&status).len(), 1, "not rebuilt only to be evicted again\n{status}");
}

#[test]
fn serve_max_memory_overrides_the_setting_and_status_shows_it() {
    let daemon = Daemon::start_env(&["--max-memory", "2GiB"], &[("RPYTEST_DAEMON_MAX_MEMORY", "1GiB")]);
    let status = daemon.status();
    assert!(status.stdout.contains("of daemon_max_memory 2.0 GiB"), "{}", status.dump());
    let daemon = Daemon::start_env(&[], &[("RPYTEST_DAEMON_MAX_MEMORY", "1073741824")]);
    let status = daemon.status();
    assert!(status.stdout.contains("of daemon_max_memory 1.0 GiB"), "{}", status.dump());
}

#[test]
fn a_bad_daemon_max_memory_is_a_usage_error_with_an_example() {
    let dir = common::daemon::private_dir();
    let runtime = dir.path().to_str().unwrap();
    let flag = run_command(
        &rpytest_bin(),
        &["serve".into(), "--max-memory".into(), "lots".into()],
        dir.path(),
        &[("RPYTEST_RUNTIME_DIR", runtime)],
    );
    assert_eq!(flag.code, 4, "{}", flag.dump());
    assert!(flag.stderr.contains("--max-memory") && flag.stderr.contains("512MiB"), "{}", flag.dump());
    let env = run_command(
        &rpytest_bin(),
        &["serve".into(), "--idle-timeout".into(), "1".into()],
        dir.path(),
        &[("RPYTEST_RUNTIME_DIR", runtime), ("RPYTEST_DAEMON_MAX_MEMORY", "12 parsecs")],
    );
    assert_eq!(env.code, 4, "{}", env.dump());
    assert!(env.stderr.contains("RPYTEST_DAEMON_MAX_MEMORY") && env.stderr.contains("512MiB"), "{}", env.dump());
}
