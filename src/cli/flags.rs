//! rpytest's own flags as clap parses them and writes them into `--help`.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{WorkerCount, WorkerStart};
use crate::schedule::dist::DistMode;

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
    #[arg(long, value_name = "ORDER", value_parser = crate::schedule::run_queue::Order::parse)]
    pub test_order: Option<crate::schedule::run_queue::Order>,

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

    /// Run only the tests a change can have affected: those whose recorded
    /// dependencies (test file, conftests, project modules imported, files
    /// read) changed since they last passed, and those that failed or never
    /// ran. The closing line counts the rest as `N deselected (unaffected)`.
    /// See docs/affected.md.
    #[arg(long)]
    pub affected: bool,

    /// Run in this process even when a warm daemon (`rpytest serve`) runs.
    #[arg(long)]
    pub no_daemon: bool,

    /// After the run, run each failed test again alone in a fresh worker;
    /// one that passes alone is reported as order-dependent, naming the
    /// tests that ran before it on its worker.
    #[arg(long)]
    pub rerun_isolated: bool,

    /// Stay running: rerun the tests on every save under the rootdir, with
    /// keys to run all (a), the failed (f), filter by path (p) or name (t),
    /// rerun (Enter) and quit (q). See docs/watch.md.
    #[arg(long)]
    pub watch: bool,
}
