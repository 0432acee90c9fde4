//! The command line: rpytest's own flags, split from pytest's.
//!
//! `rpytest` takes pytest's command line plus a few flags of its own. We take
//! ours out (validating them with clap, which also writes `--help`) and pass
//! everything else to pytest untouched, so pytest parses and validates its
//! own options exactly as it would alone. Flags that rpytest cannot honour
//! yet are refused here with a reason, never accepted and ignored.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{WorkerCount, WorkerStart};
use crate::dist::DistMode;
use crate::errors::UsageError;

/// rpytest's own flags. Everything else on the command line is pytest's.
#[derive(Debug, Parser)]
#[command(
    name = "rpytest",
    disable_version_flag = true,
    about = "Run a pytest suite in parallel on warm, forked workers.",
    after_help = "All other arguments (paths, node ids, -k, -m, -v, -q, --tb, --junitxml, ...) \
                  are pytest's and are passed to pytest unchanged; see `python -m pytest --help`.\n\
                  `rpytest serve` runs the warm daemon; see `rpytest serve --help` and docs/daemon.md."
)]
pub struct OwnFlags {
    /// Worker processes: a number or `auto` (CPUs available to this process).
    /// Default: [tool.rpytest] default_workers in pyproject.toml, else 1.
    #[arg(short = 'n', long = "numprocesses", value_name = "N|auto", value_parser = WorkerCount::parse)]
    pub workers: Option<WorkerCount>,

    /// As in pytest-xdist: the most workers `-n auto` may start.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub maxprocesses: Option<u32>,

    /// Python interpreter that runs pytest. Default: $VIRTUAL_ENV/bin/python, else python3 on PATH.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// How workers start: `fork` from the collected zygote, or `spawn` fresh interpreters.
    #[arg(long, value_name = "MODE")]
    pub worker_start: Option<WorkerStart>,

    /// Print rpytest's version and the version of pytest it would run.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// Colour: yes, no or auto (also passed on to pytest).
    #[arg(long, value_name = "WHEN", value_parser = ["yes", "no", "auto"])]
    pub color: Option<String>,

    /// What must run together on one worker: load (default; each test
    /// alone, longest first), loadscope (module or class), loadfile,
    /// loadgroup (@pytest.mark.xdist_group), worksteal (= load), no (one
    /// worker, collection order).
    #[arg(long, value_name = "MODE", value_parser = DistMode::parse)]
    pub dist: Option<DistMode>,

    /// Run only shard K (0-based) of --total-shards N. Also RPYTEST_SHARD.
    #[arg(long, value_name = "K")]
    pub shard: Option<usize>,

    /// How many shards the selection is split into. Also RPYTEST_TOTAL_SHARDS.
    #[arg(long, value_name = "N")]
    pub total_shards: Option<usize>,

    /// After the run, merge each test's duration into the durations file
    /// (pytest-split's format) that shards balance from.
    #[arg(long)]
    pub store_durations: bool,

    /// The durations file shards read and --store-durations writes.
    /// Default: .test_durations in the current directory.
    #[arg(long, value_name = "PATH")]
    pub durations_path: Option<PathBuf>,

    /// Run a failed test again, up to N times; one that then passes is
    /// reported FLAKY. Default: [tool.rpytest] retries, else 0.
    #[arg(long, value_name = "N", value_parser = crate::config::parse_retries)]
    pub retries: Option<u32>,

    /// The order each worker runs its tests in: `collection` (pytest's,
    /// order-safe) or `longest` (longest first). Default: [tool.rpytest]
    /// test_order, else collection.
    #[arg(long, value_name = "ORDER", value_parser = crate::run_queue::Order::parse)]
    pub test_order: Option<crate::run_queue::Order>,

    /// Merge the durations parts that shards wrote with --store-durations
    /// (the files given as arguments) into the durations file, then exit.
    #[arg(long)]
    pub merge_durations: bool,

    /// Print what the duration history knows (with -v: every test, slowest
    /// first) and the planned load per worker, then exit.
    #[arg(long)]
    pub inventory_status: bool,

    /// Fail a test that runs longer than SECS (0: no limit): its worker dumps
    /// every thread's stack, is stopped (SIGTERM, then SIGKILL) and replaced.
    /// A test's @pytest.mark.timeout(N) wins. Default: [tool.rpytest] timeout.
    #[arg(long, value_name = "SECS", value_parser = crate::config::parse_timeout)]
    pub timeout: Option<f64>,

    /// Say on stderr when a test has run longer than SECS (a SLOW line, as
    /// nextest; 0: never). Default: [tool.rpytest] slow_timeout (60).
    #[arg(long, value_name = "SECS", value_parser = crate::config::parse_timeout)]
    pub slow_timeout: Option<f64>,

    /// As in pytest-xdist: how many crashed workers are replaced before the
    /// run gives up (0: none); the tests left are reported as not run.
    /// Default: 4 x the worker count.
    #[arg(long, value_name = "N")]
    pub max_worker_restart: Option<u32>,

    /// The memory the run's processes may use together (e.g. 1000M, 8G):
    /// caps the worker count by the history's peak per test, and a worker
    /// is retired when the run goes over it. Default: [tool.rpytest] max_memory.
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_max_memory_flag)]
    pub max_memory: Option<crate::config::MaxMemory>,

    /// The memory one worker is assumed to need until the history has seen
    /// its tests. Default: [tool.rpytest] worker_memory (256M).
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_memory)]
    pub worker_memory: Option<u64>,

    /// Run in this process even when a warm daemon (`rpytest serve`) runs.
    #[arg(long)]
    pub no_daemon: bool,

    /// After the run, run each failed test again alone in a fresh worker;
    /// one that passes alone is reported as order-dependent, naming the
    /// tests that ran before it on its worker.
    #[arg(long)]
    pub rerun_isolated: bool,
}

/// The command line, split.
#[derive(Debug)]
pub struct CommandLine {
    pub own: OwnFlags,
    pub pytest_args: Vec<String>,
}

/// pytest flags rpytest refuses until it can honour them across workers.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("--setup-show", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-show`"),
    ("--setup-only", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-only`"),
    ("--setup-plan", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-plan`"),
    ("--pastebin", "pytest sends to the pastebin from its terminal summary, which rpytest renders itself"),
    ("--tx", "xdist's remote distribution is not supported"),
    ("--px", "xdist's remote distribution is not supported"),
    ("--rsyncdir", "xdist's remote distribution is not supported"),
    ("--rsyncignore", "xdist's remote distribution is not supported"),
    ("--looponfail", "xdist's loop-on-fail mode is not supported"),
    ("-f", "xdist's loop-on-fail mode is not supported"),
    ("--maxschedchunk", "rpytest sizes its batches from the queue and recorded durations; see docs/architecture.md"),
    ("--loadscope-reorder", "rpytest orders --dist loadscope groups longest first from history"),
    ("--no-loadscope-reorder", "rpytest orders --dist loadscope groups longest first from history"),
];

/// pytest options whose value may follow as a separate argument.
const TAKES_VALUE: &[&str] = &[
    "-k",
    "-m",
    "-p",
    "-c",
    "-o",
    "-r",
    "-W",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--rootdir",
    "--basetemp",
    "--junitxml",
    "--junit-xml",
    "--junitprefix",
    "--junit-prefix",
    "--tb",
    "--capture",
    "--import-mode",
    "--confcutdir",
    "--override-ini",
    "--show-capture",
    "--log-level",
    "--log-format",
    "--log-date-format",
    "--log-cli-level",
    "--log-cli-format",
    "--log-cli-date-format",
    "--log-file",
    "--log-file-level",
    "--log-file-format",
    "--log-file-date-format",
    "--log-file-mode",
    "--pythonwarnings",
    "--inifile",
    "--config-file",
    "--cache-show",
    "--doctest-glob",
    "--doctest-report",
    "--verbosity",
    "--assert",
];

/// Splits `args` (without the program name) into rpytest's flags and pytest's.
pub fn parse(args: Vec<String>) -> Result<CommandLine, ClapOrUsage> {
    let mut own = vec!["rpytest".to_string()];
    let mut pytest_args = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let next = args.get(i + 1);
        match own_flag(arg) {
            Some(OwnKind::WithValue(inline)) => {
                own.push(arg.clone());
                if inline.is_none() {
                    let value =
                        next.ok_or_else(|| ClapOrUsage::Usage(UsageError::BadFlag(format!("{arg} needs a value"))))?;
                    own.push(value.clone());
                    i += 1;
                }
                if arg.starts_with("--color") {
                    pytest_args.push(arg.clone());
                    if inline.is_none() {
                        pytest_args.push(args[i].clone());
                    }
                }
            }
            Some(OwnKind::Flag) => own.push(arg.clone()),
            // xdist's `-d` is its shortcut for `--dist=load`.
            None if arg == "-d" => own.push("--dist=load".to_string()),
            None => {
                reject_unsupported(arg)?;
                pytest_args.push(arg.clone());
                if TAKES_VALUE.contains(&arg.as_str()) {
                    if let Some(value) = next {
                        pytest_args.push(value.clone());
                        i += 1;
                    }
                }
            }
        }
        i += 1;
    }
    let own = OwnFlags::try_parse_from(own).map_err(ClapOrUsage::Clap)?;
    Ok(CommandLine { own, pytest_args })
}

/// Either clap's own report (help, version, bad value) or our usage error.
#[derive(Debug)]
pub enum ClapOrUsage {
    Clap(clap::Error),
    Usage(UsageError),
}

enum OwnKind {
    /// A flag with a value; `Some` when written inline (`-n4`, `--python=x`).
    WithValue(Option<String>),
    Flag,
}

fn own_flag(arg: &str) -> Option<OwnKind> {
    if matches!(
        arg,
        "-h" | "--help"
            | "-V"
            | "--version"
            | "--store-durations"
            | "--inventory-status"
            | "--merge-durations"
            | "--no-daemon"
            | "--rerun-isolated"
    ) {
        return Some(OwnKind::Flag);
    }
    const WITH_VALUE: [&str; 16] = [
        "--numprocesses",
        "--python",
        "--worker-start",
        "--color",
        "--dist",
        "--shard",
        "--total-shards",
        "--durations-path",
        "--maxprocesses",
        "--retries",
        "--test-order",
        "--timeout",
        "--max-worker-restart",
        "--max-memory",
        "--worker-memory",
        "--slow-timeout",
    ];
    for long in WITH_VALUE {
        if arg == long {
            return Some(OwnKind::WithValue(None));
        }
        if let Some(value) = arg.strip_prefix(long).and_then(|rest| rest.strip_prefix('=')) {
            return Some(OwnKind::WithValue(Some(value.to_string())));
        }
    }
    if arg == "-n" {
        return Some(OwnKind::WithValue(None));
    }
    if let Some(value) = arg.strip_prefix("-n") {
        if !value.starts_with('-') {
            return Some(OwnKind::WithValue(Some(value.trim_start_matches('=').to_string())));
        }
    }
    None
}

fn reject_unsupported(arg: &str) -> Result<(), ClapOrUsage> {
    let name = arg.split('=').next().unwrap_or(arg);
    let bundle = short_bundle(arg);
    let refused =
        UNSUPPORTED.iter().find(|(flag, _)| *flag == name || (flag.len() == 2 && bundle.contains(&flag[1..])));
    match refused {
        Some((flag, why)) => {
            Err(ClapOrUsage::Usage(UsageError::Unsupported { flag: flag.to_string(), why: why.to_string() }))
        }
        None => Ok(()),
    }
}

/// The flag letters of `-vx`-style bundles, as argparse allows them. Stops at
/// a flag that takes a value (`-rfE` is -r with value "fE": no flags).
fn short_bundle(arg: &str) -> String {
    if !arg.starts_with('-') || arg.starts_with("--") || arg.len() <= 2 {
        return String::new();
    }
    let letters: String = arg[1..].chars().take_while(|c| !"kmpcorWn".contains(*c)).collect();
    if letters.chars().all(|c| "vqsxlf".contains(c)) {
        letters
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> CommandLine {
        match parse(args.iter().map(|s| s.to_string()).collect()) {
            Ok(cl) => cl,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn takes_own_flags_and_passes_the_rest() {
        let cl = split(&["tests", "-n", "4", "-k", "-n", "--python=/x/python", "-v"]);
        assert_eq!(cl.own.workers, Some(WorkerCount::Exactly(4)));
        assert_eq!(cl.own.python, Some(PathBuf::from("/x/python")));
        assert_eq!(cl.pytest_args, ["tests", "-k", "-n", "-v"]);
    }

    #[test]
    fn inline_worker_counts() {
        assert_eq!(split(&["-n2"]).own.workers, Some(WorkerCount::Exactly(2)));
        assert_eq!(split(&["-nauto"]).own.workers, Some(WorkerCount::Auto));
        assert_eq!(split(&["--numprocesses=3"]).own.workers, Some(WorkerCount::Exactly(3)));
    }

    #[test]
    fn color_is_ours_and_pytests() {
        let cl = split(&["--color", "no"]);
        assert_eq!(cl.own.color.as_deref(), Some("no"));
        assert_eq!(cl.pytest_args, ["--color", "no"]);
    }

    #[test]
    fn bad_worker_counts_are_refused() {
        assert!(parse(vec!["-n".into(), "abc".into()]).is_err());
        assert!(parse(vec!["-n".into()]).is_err());
    }

    #[test]
    fn unsupported_flags_are_refused_even_bundled() {
        for args in [vec!["--looponfail"], vec!["-vf"], vec!["--tx=popen"]] {
            let args = args.into_iter().map(String::from).collect();
            assert!(matches!(parse(args), Err(ClapOrUsage::Usage(UsageError::Unsupported { .. }))));
        }
        // -rfE is -r with a value, not -f.
        assert!(parse(vec!["-rfE".into()]).is_ok());
    }

    #[test]
    fn scheduling_flags_are_ours() {
        let cl = split(&["--dist", "loadfile", "--shard=1", "--total-shards", "4", "--store-durations", "-v"]);
        assert_eq!(cl.own.dist, Some(DistMode::LoadFile));
        assert_eq!((cl.own.shard, cl.own.total_shards), (Some(1), Some(4)));
        assert!(cl.own.store_durations);
        assert_eq!(cl.pytest_args, ["-v"]);
        let cl = split(&["--durations-path=d.json", "--inventory-status", "--dist=worksteal"]);
        assert_eq!(cl.own.durations_path, Some(PathBuf::from("d.json")));
        assert!(cl.own.inventory_status);
        assert_eq!(cl.own.dist, Some(DistMode::Load));
        let cl = split(&["--retries", "2", "--reruns", "1"]);
        assert_eq!(cl.own.retries, Some(2));
        assert_eq!(cl.pytest_args, ["--reruns", "1"]);
        assert!(parse(vec!["--retries=-1".into()]).is_err());
    }

    #[test]
    fn timeout_and_restart_budget_are_ours() {
        let cl = split(&["--timeout=2.5", "--max-worker-restart", "3", "-v"]);
        assert_eq!((cl.own.timeout, cl.own.max_worker_restart), (Some(2.5), Some(3)));
        assert_eq!(cl.pytest_args, ["-v"]);
        for bad in [["--timeout", "soon"], ["--timeout", "-1"], ["--max-worker-restart", "-2"]] {
            assert!(matches!(parse(bad.map(String::from).to_vec()), Err(ClapOrUsage::Clap(_))), "{bad:?}");
        }
    }

    #[test]
    fn xdist_d_is_dist_load() {
        assert_eq!(split(&["-d", "-v"]).own.dist, Some(DistMode::Load));
    }

    #[test]
    fn bad_dist_modes_are_refused() {
        for mode in ["each", "roundrobin"] {
            assert!(matches!(parse(vec!["--dist".into(), mode.into()]), Err(ClapOrUsage::Clap(_))));
        }
        assert!(parse(vec!["--shard".into(), "-1".into()]).is_err());
    }
}
