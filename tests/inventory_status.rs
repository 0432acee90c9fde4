//! `rpytest --inventory-status` shows what the duration history knows: tests
//! known, total and expected wall time for the worker count, the last run,
//! the file's location; `-v` every test slowest first with its worker's peak
//! memory; a bar per worker on a terminal. It runs no tests.

mod common;
use common::*;

use std::path::Path;

fn suite() -> Suite {
    Suite::new(&[(
        "test_inv.py",
        r#"
        import time

        def test_slow():
            time.sleep(0.3)

        def test_fast():
            pass

        def test_big_memory():
            global keep
            keep = bytearray(150 * 1024 * 1024)
            keep[::4096] = b"x" * len(keep[::4096])
        "#,
    )])
}

fn status(suite: &Suite, args: &[&str]) -> RunResult {
    let mut all = vec!["--inventory-status"];
    all.extend_from_slice(args);
    let r = run_rpytest(suite, &all);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(!r.stdout.contains("PASSED") && !r.stdout.contains("test session starts"), "ran tests\n{}", r.dump());
    r
}

/// The value after `label:` on its line.
fn field<'a>(r: &'a RunResult, label: &str) -> &'a str {
    let line = r.stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label}\n{}", r.dump()));
    line[label.len()..].trim_start_matches(':').trim()
}

#[test]
fn without_history_it_says_so() {
    let suite = suite();
    let r = status(&suite, &[]);
    assert!(r.stdout.contains("no history yet"), "{}", r.dump());
    assert!(!suite.join(".rpytest").exists(), "--inventory-status must not create the history");
}

#[test]
fn after_a_run_it_summarizes_the_history() {
    let suite = suite();
    let run = run_rpytest(&suite, &["-n", "2"]);
    assert_eq!(run.code, 0, "{}", run.dump());
    let r = status(&suite, &["-n", "2"]);
    assert!(field(&r, "history").ends_with(".rpytest/history.json"), "{}", r.dump());
    assert_eq!(field(&r, "tests known"), "3 (3 with durations)", "{}", r.dump());
    assert!(field(&r, "expected wall").contains("on 2 workers"), "{}", r.dump());
    assert!(field(&r, "last run").contains("3 tests on 2 workers"), "{}", r.dump());
    let total: f64 = field(&r, "total time").split('s').next().unwrap().parse().unwrap();
    assert!(total >= 0.3, "total {total} should include the 0.3 s test\n{}", r.dump());
    assert!(!r.stdout.contains("planned load"), "no bars off a terminal\n{}", r.dump());
    assert!(!r.stdout.contains("test_inv.py::test_slow"), "per-test rows only with -v\n{}", r.dump());
}

#[test]
fn verbose_lists_tests_slowest_first_with_peak_memory() {
    let suite = suite();
    run_rpytest(&suite, &["-n", "1"]);
    let r = status(&suite, &["-v"]);
    let rows: Vec<&str> = r.stdout.lines().filter(|l| l.contains("test_inv.py::")).collect();
    assert_eq!(rows.len(), 3, "{}", r.dump());
    assert!(rows[0].ends_with("test_inv.py::test_slow"), "{}", r.dump());
    let big = rows.iter().find(|l| l.ends_with("test_big_memory")).unwrap();
    let mib: f64 = big.split(" MiB").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(mib >= 150.0, "peak memory of the worker that allocated 150 MiB: {big}");
}

#[test]
fn a_corrupt_history_is_reported_not_a_crash() {
    let suite = suite();
    std::fs::create_dir_all(suite.join(".rpytest")).unwrap();
    std::fs::write(suite.join(".rpytest/history.json"), "{\"format\": 1, \"tes").unwrap();
    let r = status(&suite, &[]);
    assert!(r.stdout.contains("corrupt"), "{}", r.dump());
    assert_eq!(field(&r, "tests known"), "0 (0 with durations)", "{}", r.dump());
}

/// Runs `--inventory-status` under `script`, which gives it a terminal.
fn status_on_a_terminal(dir: &Path, args: &str) -> RunResult {
    let command = format!("cd '{}' && '{}' --inventory-status {args}", dir.display(), rpytest_bin().display());
    let args = ["-qec".to_string(), command, "/dev/null".to_string()];
    run_command(Path::new("script"), &args, dir, &[])
}

#[test]
fn on_a_terminal_it_draws_the_planned_load_per_worker() {
    let suite = suite();
    run_rpytest(&suite, &["-n", "2"]);
    let r = status_on_a_terminal(suite.path(), "-n 2");
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.contains("planned load on 2 workers"), "{}", r.dump());
    let bars: Vec<&str> = r.stdout.lines().filter(|l| l.contains('█')).collect();
    assert_eq!(bars.len(), 2, "{}", r.dump());
}
