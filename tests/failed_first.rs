//! `--ff`/`--nf` under LPT: the tests that failed last time (`--ff`) or that
//! the history has never run (`--nf`) are dispatched before the rest, even
//! when the rest is longer, so they finish first, as pytest's reordering
//! promises; without the flag the longest tests start first.

mod common;
use common::*;

const SUITE: &str = r#"
    import time
    import pytest

    @pytest.mark.parametrize("i", range(4))
    def test_long(i):
        time.sleep(0.4)

    def test_short_failure():
        assert False
"#;

/// rpytest with pytest's cache plugin on (`--ff`/`--nf` are its options).
fn run_with_cache(suite: &Suite, args: &[&str]) -> RunResult {
    let mut full = vec!["--python".to_string(), python().display().to_string(), "--color=no".into()];
    full.extend(args.iter().map(|a| a.to_string()));
    run_command(&rpytest_bin(), &full, suite.path(), &[])
}

/// The node ids in the order their progress lines appeared.
fn finish_order(r: &RunResult) -> Vec<String> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("test_") && l.contains("::"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn suite_with_history() -> Suite {
    let suite = Suite::new(&[("test_a.py", SUITE)]);
    // Two runs: durations recorded, the short test failed last time.
    for _ in 0..2 {
        assert_eq!(run_with_cache(&suite, &["-n", "2"]).code, 1);
    }
    suite
}

#[test]
fn failed_first_runs_last_failures_first_even_when_they_are_short() {
    let suite = suite_with_history();
    let plain = run_with_cache(&suite, &["-n", "2"]);
    assert_ne!(
        finish_order(&plain)[0],
        "test_a.py::test_short_failure",
        "LPT starts long tests first: {}",
        plain.dump()
    );
    let ff = run_with_cache(&suite, &["-n", "2", "--ff"]);
    assert_eq!(ff.code, 1, "{}", ff.dump());
    assert_eq!(finish_order(&ff)[0], "test_a.py::test_short_failure", "{}", ff.dump());
    assert_eq!(finish_order(&ff).len(), 5, "{}", ff.dump());
}

#[test]
fn new_first_runs_tests_the_history_has_not_seen_first() {
    let suite = suite_with_history();
    suite.write("test_b.py", "def test_new():\n    pass\n");
    let nf = run_with_cache(&suite, &["-n", "2", "--nf"]);
    assert_eq!(finish_order(&nf)[0], "test_b.py::test_new", "{}", nf.dump());
    assert_eq!(finish_order(&nf).len(), 6, "{}", nf.dump());
}
