//! CI sharding (`--shard K --total-shards N`): shards that run separately,
//! as on different CI machines, must together run every selected test
//! exactly once, balance by the committed durations file, report the tests
//! they skip as "deselected" exactly as pytest does for `--deselect`, and
//! refuse bad combinations with exit code 4.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};

const FILES: usize = 5;
const PER_FILE: usize = 40;

/// 200 trivial tests: `test_m{f}.py::test_p[{i}]`.
fn suite() -> Suite {
    let files: Vec<(String, String)> = (0..FILES)
        .map(|f| {
            let body = "import pytest\n\n@pytest.mark.parametrize('i', range(40))\ndef test_p(i):\n    assert i >= 0\n";
            (format!("test_m{f}.py"), body.to_string())
        })
        .collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
    Suite::new(&refs)
}

fn all_ids() -> BTreeSet<String> {
    (0..FILES).flat_map(|f| (0..PER_FILE).map(move |i| format!("test_m{f}.py::test_p[{i}]"))).collect()
}

/// A committed durations file: 10 to 90 ms, no test near 10% of a shard.
fn write_durations(suite: &Suite) -> BTreeMap<String, f64> {
    let durations: BTreeMap<String, f64> =
        all_ids().into_iter().enumerate().map(|(n, id)| (id, 0.01 * (1 + n % 9) as f64)).collect();
    std::fs::write(suite.join(".test_durations"), serde_json::to_string_pretty(&durations).unwrap()).unwrap();
    durations
}

fn args<'a>(k: &'a str, n: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["-n", "2", "--shard", k, "--total-shards", n];
    v.extend_from_slice(extra);
    v
}

/// The node ids a junit file reports (top-level modules: `mod.py::name`).
fn junit_ids(path: &std::path::Path) -> Vec<String> {
    parse_junit(path).cases.into_iter().map(|(class, name, _)| format!("{class}.py::{name}")).collect()
}

/// The `rpytest: shard ...` line every shard prints.
fn shard_line(r: &RunResult) -> String {
    r.stdout
        .lines()
        .find(|l| l.starts_with("rpytest: shard"))
        .unwrap_or_else(|| panic!("no shard line\n{}", r.dump()))
        .to_string()
}

fn fingerprint(r: &RunResult) -> String {
    shard_line(r).rsplit("partition ").next().unwrap().to_string()
}

fn collected_line(r: &RunResult) -> String {
    let text = strip_ansi(&r.stdout);
    let line = text.lines().find(|l| l.contains("collected ")).unwrap_or("");
    line.trim_start_matches("collecting ... ").to_string()
}

#[test]
fn four_shards_with_junitxml_cover_every_test_exactly_once_and_balance() {
    let suite = suite();
    let durations = write_durations(&suite);
    let mut seen: Vec<String> = Vec::new();
    let mut prints = BTreeSet::new();
    let total: f64 = durations.values().sum();
    for k in 0..4 {
        let xml = format!("--junitxml=shard-{k}.xml");
        let r = run_rpytest(&suite, &args(&k.to_string(), "4", &[&xml]));
        assert_clean_exit(&r);
        assert_eq!(r.code, 0, "{}", r.dump());
        let ids = junit_ids(&suite.join(&format!("shard-{k}.xml")));
        let counts = r.counts();
        assert_eq!(counts["passed"] as usize, ids.len(), "{}", r.dump());
        assert_eq!(counts["deselected"] as usize, 200 - ids.len(), "{}", r.dump());
        let load: f64 = ids.iter().map(|id| durations[id]).sum();
        assert!((load - total / 4.0).abs() <= 0.1 * total / 4.0, "shard {k} load {load:.3} vs {:.3}", total / 4.0);
        assert!(shard_line(&r).contains("200 of 200 known"), "{}", r.dump());
        prints.insert(fingerprint(&r));
        seen.extend(ids);
    }
    assert_eq!(prints.len(), 1, "shards printed different partition fingerprints: {prints:?}");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a test ran in two shards");
    assert_eq!(unique, all_ids(), "the shards together did not run every test");
}

#[test]
fn a_shard_reports_like_pytest_with_the_equivalent_deselects() {
    let suite = suite();
    write_durations(&suite);
    let rpytest = run_rpytest(&suite, &args("1", "3", &["-v"]));
    let mine: BTreeSet<String> = rpytest.outcomes.keys().cloned().collect();
    assert!(!mine.is_empty() && mine.len() < 200, "{}", rpytest.dump());
    let others: Vec<String> = all_ids().difference(&mine).cloned().collect();
    let mut pytest_args = vec!["-v"];
    for id in &others {
        pytest_args.extend(["--deselect", id.as_str()]);
    }
    let pytest = run_pytest(&suite, &pytest_args);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    let (p, r) = (collected_line(&pair.pytest), collected_line(&pair.rpytest));
    check(&pair, !p.is_empty() && p == r, &format!("collected line: pytest {p:?} vs rpytest {r:?}"));
}

#[test]
fn without_a_durations_file_shards_split_by_hash_into_equal_counts() {
    let suite = suite();
    let mut seen = Vec::new();
    for k in 0..3 {
        let r = run_rpytest(&suite, &args(&k.to_string(), "3", &["-v"]));
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(shard_line(&r).contains("node-id hash"), "{}", r.dump());
        let n = r.outcomes.len();
        assert!((66..=67).contains(&n), "shard {k} ran {n} tests\n{}", r.dump());
        seen.extend(r.outcomes.into_keys());
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!((unique.len(), unique), (seen.len(), all_ids()));
}

#[test]
fn shards_partition_the_selection_not_the_whole_suite() {
    let suite = suite();
    write_durations(&suite);
    let mut seen = BTreeSet::new();
    for k in ["0", "1"] {
        let r = run_rpytest(&suite, &args(k, "2", &["-v", "-k", "test_m0 or test_m1"]));
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(shard_line(&r).contains("of 80 tests"), "{}", r.dump());
        seen.extend(r.outcomes.into_keys());
    }
    let wanted: BTreeSet<String> =
        all_ids().into_iter().filter(|id| id.starts_with("test_m0") || id.starts_with("test_m1")).collect();
    assert_eq!(seen, wanted);
}

#[test]
fn shard_and_total_can_come_from_the_environment() {
    let suite = suite();
    let env = [("RPYTEST_SHARD", "1"), ("RPYTEST_TOTAL_SHARDS", "2")];
    let r = run_rpytest_env(&suite, &["-n", "2"], &env);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(shard_line(&r).contains("shard 1 of 2"), "{}", r.dump());
    assert_eq!(r.counts()["passed"] + r.counts()["deselected"], 200, "{}", r.dump());
}

#[test]
fn store_durations_writes_a_file_that_shards_then_balance_from() {
    let suite = suite();
    let r = run_rpytest(&suite, &["-n", "2", "--store-durations"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.contains("Stored test durations in"), "{}", r.dump());
    let text = std::fs::read_to_string(suite.join(".test_durations")).unwrap();
    let stored: BTreeMap<String, f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), all_ids());
    assert!(stored.values().all(|d| *d >= 0.0));
    let r = run_rpytest(&suite, &args("0", "2", &[]));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(shard_line(&r).contains(".test_durations (200 of 200 known)"), "{}", r.dump());
}

#[test]
fn spawned_workers_run_the_same_shard() {
    let suite = suite();
    write_durations(&suite);
    let forked = run_rpytest(&suite, &args("0", "2", &["-v"]));
    let spawned = run_rpytest(&suite, &args("0", "2", &["-v", "--worker-start", "spawn"]));
    assert_eq!(spawned.code, 0, "{}", spawned.dump());
    assert_eq!(forked.outcomes, spawned.outcomes, "{}\n{}", forked.dump(), spawned.dump());
}

fn assert_usage_error(suite: &Suite, args: &[&str], env: &[(&str, &str)], says: &[&str]) {
    let r = run_rpytest_env(suite, args, env);
    assert_clean_exit(&r);
    assert_eq!(r.code, 4, "{args:?} should be a usage error\n{}", r.dump());
    assert!(!r.stderr.contains("panicked"), "{}", r.dump());
    for text in says {
        assert!(r.stderr.contains(text), "{args:?}: stderr should mention {text:?}\n{}", r.dump());
    }
}

#[test]
fn bad_shard_combinations_exit_4_and_say_why() {
    let suite = suite();
    assert_usage_error(&suite, &["--shard", "4", "--total-shards", "4"], &[], &["0-based", "0 to 3"]);
    assert_usage_error(&suite, &["--shard", "0", "--total-shards", "0"], &[], &["at least 1"]);
    assert_usage_error(&suite, &["--shard", "1"], &[], &["--total-shards"]);
    assert_usage_error(&suite, &["--total-shards", "2"], &[], &["--shard"]);
    assert_usage_error(&suite, &[], &[("RPYTEST_SHARD", "one"), ("RPYTEST_TOTAL_SHARDS", "2")], &["RPYTEST_SHARD"]);
    assert_usage_error(&suite, &["--shard", "x", "--total-shards", "2"], &[], &["--shard"]);
}

#[test]
fn unusable_durations_files_exit_4_and_say_how_to_fix() {
    let suite = suite();
    std::fs::write(suite.join(".test_durations"), "{\"test_m0.py::test_p[0]\": ").unwrap();
    let shard = ["--shard", "0", "--total-shards", "2"];
    assert_usage_error(&suite, &shard, &[], &[".test_durations", "--store-durations", "delete it"]);
    let missing = ["--shard", "0", "--total-shards", "2", "--durations-path", "nope.json"];
    assert_usage_error(&suite, &missing, &[], &["nope.json", "--store-durations"]);
}

/// The fix every other command's error recommends must work: with
/// `--store-durations` a corrupt file is a warning and this run replaces it.
#[test]
fn store_durations_replaces_a_corrupt_file_with_a_warning() {
    let suite = suite();
    std::fs::write(suite.join(".test_durations"), "{\"test_m0.py::test_p[0]\": ").unwrap();
    let r = run_rpytest(&suite, &["-n", "2", "--store-durations"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("warning") && r.stderr.contains(".test_durations"), "{}", r.dump());
    assert!(r.stderr.contains("replaces it"), "{}", r.dump());
    let text = std::fs::read_to_string(suite.join(".test_durations")).unwrap();
    let stored: BTreeMap<String, f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), all_ids());
    // Now shards balance from it, with no error.
    let r = run_rpytest(&suite, &args("0", "2", &[]));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(shard_line(&r).contains(".test_durations (200 of 200 known)"), "{}", r.dump());
}

/// The node ids `shard-{k}.xml` ran, after shard k's run in `suite`.
fn shard_ids(suite: &Suite, r: &RunResult, k: usize) -> Vec<String> {
    assert_eq!(r.code, 0, "{}", r.dump());
    junit_ids(&suite.join(&format!("shard-{k}.xml")))
}

#[test]
fn gitlab_parallel_variables_shard_the_run_and_cover_every_test_once() {
    let suite = suite();
    let mut seen: Vec<String> = Vec::new();
    for node in 1..=3usize {
        let index = node.to_string();
        let env = [("CI_NODE_INDEX", index.as_str()), ("CI_NODE_TOTAL", "3")];
        let xml = format!("--junitxml=shard-{node}.xml");
        let r = run_rpytest_env(&suite, &["-n", "2", &xml], &env);
        let line = shard_line(&r);
        assert!(line.contains(&format!("shard {} of 3", node - 1)), "{line}");
        assert!(line.contains(&format!("GitLab's CI_NODE_INDEX={node}, CI_NODE_TOTAL=3")), "{line}");
        seen.extend(shard_ids(&suite, &r, node));
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a test ran in two shards");
    assert_eq!(unique, all_ids(), "the shards together did not run every test");
}

#[test]
fn flags_win_over_ci_variables_and_bad_ci_values_are_refused() {
    let suite = suite();
    let env = [("CIRCLE_NODE_INDEX", "1"), ("CIRCLE_NODE_TOTAL", "4")];
    let r = run_rpytest_env(&suite, &["--shard", "0", "--total-shards", "2"], &env);
    assert!(shard_line(&r).contains("shard 0 of 2 (0-based, from --shard/--total-shards)"), "{}", r.dump());
    let r = run_rpytest_env(&suite, &[], &env);
    assert!(shard_line(&r).contains("shard 1 of 4 (0-based, from CircleCI's"), "{}", r.dump());
    let r = run_rpytest_env(&suite, &[], &[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "2")]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("CI_NODE_INDEX=0"), "{}", r.dump());
}

#[test]
fn shards_store_durations_parts_and_one_command_merges_them() {
    let suite = suite();
    for k in 0..2 {
        let r = run_rpytest(&suite, &args(&k.to_string(), "2", &["--store-durations"]));
        assert_eq!(r.code, 0, "{}", r.dump());
        let part = format!(".test_durations.shard-{k}-of-2");
        assert!(
            r.stdout.contains(&format!("Stored test durations in {}", suite.join(&part).display())),
            "{}",
            r.dump()
        );
        assert!(!suite.join(".test_durations").exists(), "a shard wrote the shared file");
    }
    let r = run_rpytest_raw(
        suite.path(),
        &["--merge-durations", ".test_durations.shard-0-of-2", ".test_durations.shard-1-of-2"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.contains("merged 2 parts (200 tests)"), "{}", r.dump());
    let text = std::fs::read_to_string(suite.join(".test_durations")).unwrap();
    let stored: BTreeMap<String, f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), all_ids());
    let r = run_rpytest_raw(suite.path(), &["--merge-durations", "missing-part"]);
    assert_eq!(r.code, 4, "{}", r.dump());
}
