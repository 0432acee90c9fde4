//! The live status on a terminal: a progress bar (done/total) on stdout,
//! and under it failures so far, the time the history expects is left, and
//! each worker's running test with how long it has run. The Reporter actor
//! keeps the bar and redraws the text.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Running tests listed under the bar; the rest are counted.
const STATUS_ROWS: usize = 8;

/// What the Scheduler last said is running.
pub struct Running<'a> {
    /// (worker, node id, started at) of each running test.
    pub tests: &'a [(usize, String, Instant)],
    /// Expected seconds of work left, from the history (0: unknown).
    pub expected_left: f64,
    pub workers: usize,
}

/// The bar, drawn on stdout, for `total` tests.
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
    let template = "{elapsed_precise} [{bar:30}] {pos}/{len} tests{msg}";
    bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    bar
}

/// The bar's message: ` · N failed`, ` · ~Ns left`, then a row per running
/// test (`  gwN path::test 1.2s`), cut to `width`, sorted by worker.
pub fn status_text(failed: usize, running: Option<&Running>, width: usize, now: Instant) -> String {
    let mut text = String::new();
    if failed > 0 {
        text += &format!(" · {failed} failed");
    }
    let Some(running) = running else { return text };
    if running.expected_left > 0.0 {
        text += &format!(" · ~{:.0}s left", (running.expected_left / running.workers as f64).ceil());
    }
    let mut tests: Vec<&(usize, String, Instant)> = running.tests.iter().collect();
    tests.sort_by_key(|(w, _, _)| *w);
    for (worker, nodeid, since) in tests.iter().take(STATUS_ROWS) {
        let line = format!("  gw{worker} {nodeid} {:.1}s", now.saturating_duration_since(*since).as_secs_f64());
        text += &format!("\n{}", console::truncate_str(&line, width.saturating_sub(1), "…"));
    }
    if tests.len() > STATUS_ROWS {
        text += &format!("\n  … and {} more", tests.len() - STATUS_ROWS);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failures_alone_before_the_first_status() {
        assert_eq!(status_text(0, None, 80, Instant::now()), "");
        assert_eq!(status_text(2, None, 80, Instant::now()), " · 2 failed");
    }

    #[test]
    fn running_tests_by_worker_with_their_time_and_the_time_left() {
        let now = Instant::now();
        let tests = [(1, "t.py::b".to_string(), now - Duration::from_millis(300)), (0, "t.py::a".to_string(), now)];
        let running = Running { tests: &tests, expected_left: 9.0, workers: 2 };
        assert_eq!(
            status_text(1, Some(&running), 80, now),
            " · 1 failed · ~5s left\n  gw0 t.py::a 0.0s\n  gw1 t.py::b 0.3s"
        );
    }

    #[test]
    fn long_rows_are_cut_and_extra_tests_counted() {
        let now = Instant::now();
        let tests: Vec<_> = (0..10).map(|w| (w, format!("t.py::test_{w}_with_a_long_name"), now)).collect();
        let running = Running { tests: &tests, expected_left: 0.0, workers: 10 };
        let text = status_text(0, Some(&running), 21, now);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[1], "  gw0 t.py::test_0_…");
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[9], "  … and 2 more");
    }
}
