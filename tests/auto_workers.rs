//! `-n auto` that knows when parallelism does not pay: with history, a
//! suite whose tests take too little time to share runs on fewer workers,
//! and `-v` says why. An explicit `-n N` is always obeyed.

mod common;
use common::*;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn trivial_suite(tests: usize, sleep: f64) -> Suite {
    let mut text = String::from("import time\n");
    for i in 0..tests {
        text += &format!("\ndef test_{i}():\n    time.sleep({sleep})\n");
    }
    Suite::new(&[("test_small.py", &text)])
}

/// The worker count the last run used, from the history it wrote.
fn last_run_workers(suite: &Suite) -> u64 {
    let text = std::fs::read_to_string(suite.join(".rpytest/history.json")).expect("history written");
    let history: serde_json::Value = serde_json::from_str(&text).unwrap();
    history["last_run"]["workers"].as_u64().expect("last_run.workers")
}

const WHY: &str = "too little for more workers to pay off";

#[test]
fn a_small_suite_with_history_gets_one_worker_and_says_why() {
    if cpus() < 2 {
        return common::note_skip("one CPU, -n auto is already one worker");
    }
    let suite = trivial_suite(10, 0.0);
    let first = run_rpytest(&suite, &["-n", "auto", "-v"]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert!(!first.stderr.contains(WHY), "no history yet, so no reason to shrink\n{}", first.dump());
    let second = run_rpytest(&suite, &["-n", "auto", "-v"]);
    assert_eq!((second.code, second.final_line.as_deref()), (0, Some("10 passed")), "{}", second.dump());
    assert!(second.stderr.contains(&format!("-n auto: 1 worker(s) instead of {}", cpus())), "{}", second.dump());
    assert!(second.stderr.contains(WHY), "{}", second.dump());
    assert_eq!(last_run_workers(&suite), 1);
    // Without -v the choice is the same, and silent.
    let quiet = run_rpytest(&suite, &["-n", "auto"]);
    assert!(!quiet.stderr.contains(WHY), "{}", quiet.dump());
    assert_eq!(last_run_workers(&suite), 1);
}

#[test]
fn an_explicit_worker_count_is_obeyed_even_for_a_small_suite() {
    let suite = trivial_suite(10, 0.0);
    for _ in 0..2 {
        let r = run_rpytest(&suite, &["-n", "2", "-v"]);
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(!r.stderr.contains(WHY), "{}", r.dump());
        assert_eq!(last_run_workers(&suite), 2, "{}", r.dump());
    }
}

#[test]
fn a_suite_with_enough_work_keeps_every_cpu() {
    if cpus() < 2 {
        return common::note_skip("one CPU");
    }
    let suite = trivial_suite(4, 0.3);
    for _ in 0..2 {
        let r = run_rpytest(&suite, &["-n", "auto", "--maxprocesses", "2", "-v"]);
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(!r.stderr.contains(WHY), "{}", r.dump());
        assert_eq!(last_run_workers(&suite), 2, "{}", r.dump());
    }
}
