//! `--durations=N` and `--durations-min`: pytest's "slowest durations"
//! section, rendered by rpytest from the phase durations workers report.
//! Durations differ run to run, so the comparison uses tests whose sleeps
//! dominate: the listed tests, their order and the hidden-count note must
//! match pytest's.

mod common;
use common::*;

fn suite() -> Suite {
    Suite::new(&[(
        "test_slow.py",
        r#"
        import time

        def test_slowest():
            time.sleep(0.30)

        def test_middle():
            time.sleep(0.15)

        def test_fast():
            pass
        "#,
    )])
}

/// The section's lines from its heading to the next `=` heading, with the
/// seconds column dropped (timing noise), e.g. `call     test_slow.py::test_slowest`.
fn durations_lines(stdout: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in stdout.lines() {
        if line.starts_with('=') {
            if inside {
                break;
            }
            inside = line.contains("slowest");
            if inside {
                lines.push(line.trim_matches('=').trim().to_string());
            }
            continue;
        }
        if inside && !line.is_empty() {
            let rest = line
                .split_once("s ")
                .map_or(line, |(secs, rest)| if secs.parse::<f64>().is_ok() { rest } else { line });
            lines.push(rest.to_string());
        }
    }
    lines
}

/// The heading, the two sleeping tests' lines and the hidden-count note
/// without its count: what does not depend on how fast setup ran.
fn stable_part(lines: Vec<String>) -> Vec<String> {
    let mut stable: Vec<String> = lines.iter().take(3).cloned().collect();
    if let Some(note) = lines.iter().find(|l| l.starts_with('(')) {
        stable.push(note.trim_start_matches(|c: char| c == '(' || c.is_ascii_digit()).to_string());
    }
    stable
}

fn compare(args: &[&str]) {
    for workers in ["1", "2"] {
        let pair = assert_same(&suite(), args, workers);
        let (p, r) =
            (stable_part(durations_lines(&pair.pytest.stdout)), stable_part(durations_lines(&pair.rpytest.stdout)));
        check(&pair, !p.is_empty(), "baseline: pytest printed no durations section");
        check(&pair, p == r, &format!("durations section differs:\n{p:#?}\n{r:#?}"));
    }
}

#[test]
fn durations_n_lists_the_slowest_phases() {
    compare(&["--durations=2"]);
}

#[test]
fn durations_zero_lists_all_and_counts_the_hidden() {
    compare(&["--durations=0"]);
}

#[test]
fn durations_min_hides_the_fast_ones() {
    compare(&["--durations=0", "--durations-min=0.1"]);
}
