//! `--max-memory`: the run's processes stay within a memory budget. The
//! worker count is fitted to it from the history's peak per test, and a
//! worker that takes the run over it is retired after its current test,
//! its queued tests going to the others. The memory is measured here from
//! /proc (every process of rpytest's tree), not taken from rpytest's word.

mod common;
use common::*;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// 8 tests that each hold `mib` MiB (every page touched) for half a second.
fn heavy_suite(mib: u64) -> Suite {
    let code = format!(
        "import time\nimport pytest\n\n\
         @pytest.mark.parametrize('i', range(8))\n\
         def test_heavy(i):\n    block = bytearray({mib} * 2**20)\n    block[::4096] = b'x' * len(block[::4096])\n    \
         time.sleep(0.5)\n    assert len(block) == {mib} * 2**20\n"
    );
    Suite::new(&[("test_heavy.py", &code)])
}

/// Resident bytes of `root` and all its descendants, from /proc.
fn tree_rss(root: u32) -> u64 {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(after) = stat.rfind(')').map(|at| &stat[at + 2..]) else { continue };
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        children.entry(ppid).or_default().push(pid);
    }
    let page = 4096;
    let (mut total, mut stack) = (0, vec![root]);
    while let Some(pid) = stack.pop() {
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
        total += statm.split_whitespace().nth(1).and_then(|r| r.parse::<u64>().ok()).unwrap_or(0) * page;
        stack.extend(children.get(&pid).into_iter().flatten());
    }
    total
}

/// Runs rpytest on the suite, sampling its tree's memory every 10 ms:
/// (exit code, stdout, stderr, peak bytes).
fn run_measured(suite: &Suite, args: &[&str]) -> (i32, String, String, u64) {
    let mut child = Command::new(rpytest_bin())
        .args(["--python", &python().display().to_string(), "--color=no", "--no-daemon"])
        .args(args)
        .current_dir(suite.path())
        .env_remove("PYTEST_ADDOPTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (pid, started, mut peak) = (child.id(), Instant::now(), 0);
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < timeout(), "rpytest did not finish in time");
        peak = peak.max(tree_rss(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr), peak)
}

#[test]
fn with_history_the_run_stays_within_max_memory() {
    let suite = heavy_suite(300);
    let args = ["-n", "4", "--max-memory=1000M", "-q"];
    let (code, stdout, stderr, _) = run_measured(&suite, &args);
    assert_eq!(code, 0, "first run\n{stdout}\n{stderr}");
    let (code, stdout, stderr, peak) = run_measured(&suite, &args);
    assert_eq!(code, 0, "second run\n{stdout}\n{stderr}");
    assert!(stdout.contains("8 passed"), "{stdout}");
    assert!(stderr.contains("--max-memory: 3 worker(s) instead of 4: workers peaked at"), "says why\n{stderr}");
    let limit = 1000 * MIB * 115 / 100;
    assert!(peak <= limit, "peak {} MiB > budget + 15% ({} MiB)\n{stderr}", peak / MIB, limit / MIB);
    eprintln!("peak of the tree on the second run: {} MiB (budget 1000 MiB)", peak / MIB);
}

#[test]
fn a_worker_that_takes_the_run_over_the_budget_is_retired_and_no_test_is_lost() {
    // worker_memory says 4 workers fit; the tests prove it wrong.
    let suite = heavy_suite(250);
    let (code, stdout, stderr, _) =
        run_measured(&suite, &["-n", "4", "--max-memory=600M", "--worker-memory=100M", "-q", "-p", "no:randomly"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("8 passed"), "every test ran once\n{stdout}");
    assert!(stderr.contains("over --max-memory 600 MiB; retiring worker gw"), "says so\n{stderr}");
}

#[test]
fn bad_memory_sizes_are_usage_errors() {
    let suite = Suite::new(&[("test_a.py", "def test_a():\n    pass\n")]);
    let r = run_rpytest(&suite, &["--max-memory=lots"]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("invalid size 'lots'"), "{}", r.dump());
    suite.write("pyproject.toml", "[tool.rpytest]\nworker_memory = \"-5M\"\n");
    let r = run_rpytest(&suite, &[]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("worker_memory: invalid size '-5M'"), "{}", r.dump());
}
