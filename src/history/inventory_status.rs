//! `rpytest --inventory-status`: what the duration history knows, without
//! running anything.
//!
//! Scheduling quality depends on the history, so users need to see it: how
//! many tests it knows, how long the suite takes in total and how long it
//! should take on this many workers (the LPT plan, from the same arithmetic
//! as sharding), when it was last updated and where the file is. `-v` lists
//! every test, slowest first, with its last outcome and its worker's peak
//! memory. On a terminal a bar per worker shows the planned load.
//!
//! The file is found without starting Python: `--rootdir` if given, else the
//! nearest `.rpytest/history.json` at or above the current directory (the
//! rootdir of an earlier run from here or below it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::history::{self, HistoryStore, LastRun, TestHistory};
use crate::schedule::lpt;

const BAR_WIDTH: usize = 40;

/// The whole report for the command line `pytest_args` (its `--rootdir`
/// value, `rootdir_flag`, read by the caller) and `workers`.
pub fn render(cwd: &Path, rootdir_flag: Option<&str>, pytest_args: &[String], workers: usize, tty: bool) -> String {
    let path = find_history(cwd, rootdir_flag);
    if !path.exists() {
        return format!(
            "rpytest: no history yet at {}\nRun the suite with rpytest once; later runs are scheduled from its durations.\n",
            path.display()
        );
    }
    let (tests, last_run, warning) = history::snapshot(&path);
    let mut out = String::new();
    if let Some(warning) = warning {
        let _ = writeln!(out, "rpytest: warning: {warning}");
    }
    let plan = Plan::new(&tests, workers);
    out += &summary(&path, last_run.as_ref(), &tests, &plan);
    if tty && plan.total > 0.0 {
        out += &bars(&plan);
    }
    if verbosity(pytest_args) > 0 {
        out += &per_test(&tests);
    }
    out
}

/// `--rootdir` from the pytest arguments, else the nearest history above `cwd`.
fn find_history(cwd: &Path, rootdir_flag: Option<&str>) -> PathBuf {
    if let Some(rootdir) = rootdir_flag {
        return HistoryStore::path_for(&cwd.join(rootdir));
    }
    cwd.ancestors().map(HistoryStore::path_for).find(|p| p.is_file()).unwrap_or_else(|| HistoryStore::path_for(cwd))
}

/// pytest's verbosity from `-v`, `-vv`, `--verbose`, `-q`, `--verbosity=N`.
fn verbosity(args: &[String]) -> i32 {
    args.iter()
        .map(|arg| match arg.as_str() {
            "--verbose" => 1,
            "--quiet" => -1,
            a if a.starts_with("--verbosity=") => a["--verbosity=".len()..].parse().unwrap_or(0),
            a if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c == 'v') => a.len() as i32 - 1,
            a if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c == 'q') => 1 - a.len() as i32,
            _ => 0,
        })
        .sum()
}

/// The LPT plan of the known tests on `workers`.
struct Plan {
    loads: Vec<f64>,
    counts: Vec<usize>,
    total: f64,
    longest: f64,
    bound: f64,
    timed: usize,
}

impl Plan {
    fn new(tests: &[(String, TestHistory)], workers: usize) -> Plan {
        let weights: Vec<f64> = tests.iter().filter_map(|(_, t)| t.expected()).collect();
        let order = lpt::heaviest_first(&weights, |i| i);
        let (bin_of, loads) = lpt::assign(&order, &weights, workers);
        let mut counts = vec![0; loads.len()];
        bin_of.iter().for_each(|&b| counts[b] += 1);
        let total = weights.iter().sum();
        let longest = weights.iter().copied().fold(0.0, f64::max);
        let bound = lpt::lower_bound(&weights, workers);
        Plan { loads, counts, total, longest, bound, timed: weights.len() }
    }

    fn makespan(&self) -> f64 {
        self.loads.iter().copied().fold(0.0, f64::max)
    }
}

fn summary(path: &Path, last: Option<&LastRun>, tests: &[(String, TestHistory)], plan: &Plan) -> String {
    let workers = plan.loads.len();
    let mut out = String::new();
    let _ = writeln!(out, "history:        {}", path.display());
    let _ = writeln!(out, "tests known:    {} ({} with durations)", tests.len(), plan.timed);
    let _ = writeln!(out, "total time:     {:.2}s (sum of expected durations)", plan.total);
    let _ = writeln!(
        out,
        "expected wall:  {:.2}s on {workers} worker{} (LPT plan; longest test {:.2}s, lower bound {:.2}s)",
        plan.makespan(),
        if workers == 1 { "" } else { "s" },
        plan.longest,
        plan.bound
    );
    let _ = writeln!(out, "last run:       {}", last.map_or("unknown".to_string(), last_run));
    out
}

fn last_run(run: &LastRun) -> String {
    format!(
        "{} UTC: {} tests on {} worker{} in {:.2}s",
        utc_timestamp(run.finished_at),
        run.tests,
        run.workers,
        if run.workers == 1 { "" } else { "s" },
        run.wall
    )
}

/// `YYYY-MM-DD HH:MM:SS` for a Unix time (Howard Hinnant's civil_from_days).
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// One bar per worker, scaled to the fullest.
fn bars(plan: &Plan) -> String {
    let top = plan.makespan().max(f64::MIN_POSITIVE);
    let mut out = format!("planned load on {} workers:\n", plan.loads.len());
    for (worker, (load, count)) in plan.loads.iter().zip(&plan.counts).enumerate() {
        let cells = ((load / top) * BAR_WIDTH as f64).round() as usize;
        let bar: String = "█".repeat(cells) + &" ".repeat(BAR_WIDTH - cells);
        let _ = writeln!(out, "  worker {worker:<3} {bar} {load:>7.2}s  {count} tests");
    }
    out
}

/// Every test, slowest first: mean duration, runs kept, last outcome, how
/// many runs it was flaky in (`--retries`), peak memory.
fn per_test(tests: &[(String, TestHistory)]) -> String {
    let mut rows: Vec<&(String, TestHistory)> = tests.iter().collect();
    rows.sort_by(|a, b| b.1.expected().unwrap_or(-1.0).total_cmp(&a.1.expected().unwrap_or(-1.0)));
    let mut out =
        format!("\n{:>10}  {:>4}  {:<8}  {:>5}  {:>10}  test\n", "duration", "runs", "last", "flaky", "peak RSS");
    for (id, t) in rows {
        let duration = t.expected().map_or("-".to_string(), |d| format!("{d:.3}s"));
        let rss = t.peak_rss_kb.map_or("-".to_string(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0));
        let (runs, last, flaky) = (t.durations.len(), &t.last_outcome, t.flaky);
        let _ = writeln!(out, "{duration:>10}  {runs:>4}  {last:<8}  {flaky:>5}  {rss:>10}  {id}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn test(durations: &[f64], rss: Option<u64>) -> TestHistory {
        TestHistory {
            durations: durations.to_vec(),
            last_outcome: "passed".into(),
            peak_rss_kb: rss,
            flaky: 0,
            ..Default::default()
        }
    }

    #[test]
    fn verbosity_counts_like_pytest() {
        assert_eq!(verbosity(&strings(&["-v"])), 1);
        assert_eq!(verbosity(&strings(&["-vv", "--verbose"])), 3);
        assert_eq!(verbosity(&strings(&["-q", "tests"])), -1);
        assert_eq!(verbosity(&strings(&["--verbosity=2"])), 2);
    }

    #[test]
    fn plan_is_lpt_over_known_tests() {
        let tests: Vec<(String, TestHistory)> = [3.0, 3.0, 2.0, 2.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("t::{i}"), test(&[*d], None)))
            .chain([("t::crashed".to_string(), test(&[], None))])
            .collect();
        let plan = Plan::new(&tests, 2);
        assert_eq!(plan.makespan(), 7.0);
        assert_eq!((plan.total, plan.longest, plan.bound, plan.timed), (12.0, 3.0, 6.0, 5));
        assert_eq!(plan.counts, vec![3, 2]);
    }

    #[test]
    fn bars_scale_to_the_fullest_worker() {
        let plan = Plan { loads: vec![2.0, 1.0], counts: vec![1, 1], total: 3.0, longest: 2.0, bound: 2.0, timed: 2 };
        let text = bars(&plan);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].matches('█').count(), BAR_WIDTH);
        assert_eq!(lines[2].matches('█').count(), BAR_WIDTH / 2);
    }

    #[test]
    fn per_test_rows_are_slowest_first_with_memory() {
        let tests =
            vec![("a::fast".to_string(), test(&[0.1], None)), ("b::slow".to_string(), test(&[2.0], Some(2048)))];
        let text = per_test(&tests);
        assert!(text.find("b::slow").unwrap() < text.find("a::fast").unwrap());
        assert!(text.contains("2.0 MiB"), "{text}");
        let mut flaky = test(&[0.5], None);
        flaky.flaky = 2;
        let text = per_test(&[("c::flaky".to_string(), flaky)]);
        assert!(text.contains("flaky") && text.contains("passed        2"), "{text}");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(951_782_400 + 3661), "2000-02-29 01:01:01");
    }

    #[test]
    fn finds_the_nearest_history_or_the_rootdir_flag() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_history(&sub, None), HistoryStore::path_for(&sub));
        let (mut store, _) = HistoryStore::open(HistoryStore::path_for(dir.path()));
        store.save().unwrap();
        assert_eq!(find_history(&sub, None), HistoryStore::path_for(dir.path()));
        assert_eq!(find_history(&sub, Some("x")), HistoryStore::path_for(&sub.join("x")));
    }

    #[test]
    fn without_a_file_it_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(render(dir.path(), None, &[], 2, false).contains("no history yet"));
    }
}
