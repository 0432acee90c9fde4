//! `-x` / `--maxfail`: the run stops at the failure budget, across workers.
//!
//! With one worker rpytest must match pytest exactly (same tests run, same
//! banner, same counts). With several, tests already running on other
//! workers finish, but nothing queued starts: the issue asks for better than
//! pytest-xdist, whose workers run everything they prefetched.

mod common;
use common::*;

/// The `!!! ... !!!` lines of an output, decoration removed.
fn banners(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("!!!") && l.ends_with("!!!"))
        .map(|l| l.trim_matches('!').trim().to_string())
        .collect()
}

fn early_failure_suite() -> Suite {
    Suite::new(&[(
        "test_stop.py",
        r#"
        import pytest

        def test_a():
            pass

        def test_b():
            assert 0, "first failure"

        def test_c():
            pass

        def test_d():
            assert 0, "second failure"

        @pytest.mark.parametrize("i", range(6))
        def test_e(i):
            pass
        "#,
    )])
}

#[test]
fn exitfirst_on_one_worker_matches_pytest() {
    for flag in ["-x", "--exitfirst"] {
        let suite = early_failure_suite();
        let pair = assert_same(&suite, &[flag], "1");
        check(&pair, pair.rpytest.code == 1, "-x ends with exit code 1");
        check(
            &pair,
            banners(&pair.rpytest.stdout) == ["stopping after 1 failures"],
            "rpytest prints pytest's stopping banner",
        );
        check(&pair, banners(&pair.pytest.stdout) == banners(&pair.rpytest.stdout), "banners differ");
    }
}

#[test]
fn maxfail_on_one_worker_matches_pytest() {
    let suite = early_failure_suite();
    let pair = assert_same(&suite, &["--maxfail=2"], "1");
    check(&pair, pair.rpytest.words("test_stop.py::test_d") == ["FAILED"], "the second failure is reported");
    check(&pair, banners(&pair.rpytest.stdout) == ["stopping after 2 failures"], "banner");
    // The quiet form prints the same banner and the bare counts line.
    let pair = Pair {
        pytest: run_pytest(&suite, &["-q", "--maxfail", "2"]),
        rpytest: run_rpytest(&suite, &["-n", "1", "-q", "--maxfail", "2"]),
    };
    check(&pair, pair.pytest.final_line == pair.rpytest.final_line, "-q final line");
    check(&pair, banners(&pair.pytest.stdout) == banners(&pair.rpytest.stdout), "-q banner");
}

#[test]
fn maxfail_larger_than_the_failures_changes_nothing() {
    let suite = early_failure_suite();
    for workers in ["1", "2", "4"] {
        let pair = assert_same(&suite, &["--maxfail=3"], workers);
        check(&pair, banners(&pair.rpytest.stdout).is_empty(), "no banner when the budget is not spent");
    }
}

/// Many slow tests and one failure, on four workers: after the failure only
/// what was already running may finish; nothing queued starts. Each test
/// logs when it starts, so "started after the failure" is measured, not
/// guessed from timing.
#[test]
fn exitfirst_stops_dispatch_on_every_worker() {
    let suite = Suite::new(&[(
        "test_many.py",
        r#"
        import os
        import time
        import pytest

        LOG = os.path.join(os.path.dirname(__file__), "starts.log")

        def log(what):
            with open(LOG, "a") as f:
                f.write(f"{what} {time.time()}\n")

        @pytest.mark.parametrize("i", range(200))
        def test_slow(i):
            log("start")
            time.sleep(0.05)
            if i == 20:
                log("fail")
                assert 0
        "#,
    )]);
    let r = run_rpytest(&suite, &["-n", "4", "-x", "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    assert_eq!(r.words("test_many.py::test_slow[20]"), ["FAILED"], "{}", r.dump());
    assert_eq!(banners(&r.stdout), ["stopping after 1 failures"], "{}", r.dump());
    let log = std::fs::read_to_string(suite.join("starts.log")).unwrap();
    let time_of = |line: &str| line.split(' ').nth(1).unwrap().parse::<f64>().unwrap();
    let failed_at = log.lines().find(|l| l.starts_with("fail")).map(time_of).unwrap();
    let started: Vec<f64> = log.lines().filter(|l| l.starts_with("start")).map(time_of).collect();
    let late = started.iter().filter(|&&t| t > failed_at).count();
    // Each of the three other workers may finish its running test and start
    // at most one more before the stop reaches it.
    assert!(late <= 6, "{late} tests started after the failure\n{}", r.dump());
    assert_eq!(r.outcomes.len(), started.len(), "every test that started is reported\n{}", r.dump());
    assert!(started.len() < 200, "the run did not stop\n{}", r.dump());
}

/// The failure budget counts failures from all workers together.
#[test]
fn maxfail_counts_failures_across_workers() {
    let suite = Suite::new(&[(
        "test_budget.py",
        r#"
        import time
        import pytest

        @pytest.mark.parametrize("i", range(40))
        def test_f(i):
            time.sleep(0.02)
            assert i % 4 != 0
        "#,
    )]);
    let r = run_rpytest(&suite, &["-n", "2", "--maxfail=3"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 1, "{}", r.dump());
    let failed = r.counts().get("failed").copied().unwrap_or(0);
    assert!((3..=4).contains(&failed), "{failed} failures reported with --maxfail=3 on 2 workers\n{}", r.dump());
    let ran = r.outcomes.len();
    assert!(ran < 40, "the run did not stop: {ran} of 40 tests ran\n{}", r.dump());
    assert_eq!(banners(&r.stdout).len(), 1, "{}", r.dump());
}
