//! Tests of the split: which flags are rpytest's, which pytest's, and
//! which are refused.

use std::path::PathBuf;

use super::*;
use crate::config::WorkerCount;
use crate::schedule::dist::DistMode;

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
