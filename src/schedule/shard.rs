//! CI sharding: which of the selected tests this machine runs.
//!
//! Shards run on different machines, each with its own (or no) local
//! history, and no shard sees the others. A test is run exactly once only if
//! every shard computes the same partition, so the partition is a pure
//! function of inputs all shards share: the selected node ids, the shard
//! count, and optionally a committed durations file (`history/durations_file.rs`).
//! Never machine-local history.
//!
//! With durations, tests are dealt LPT over the shards (unknown tests at the
//! mean known duration), so shards finish together. Without, every test
//! weighs the same and the deal follows a stable hash of the node id, so
//! shards get equal counts (and every shard has a test while there are at
//! least as many tests as shards). Neither depends on collection order.
//! Each shard prints a fingerprint of the partition input, so shards that
//! saw different inputs stand out in CI logs.
//!
//! The shard numbers come from the flags, else `RPYTEST_SHARD` /
//! `RPYTEST_TOTAL_SHARDS`, else the parallel-job variables of the common CI
//! systems (`CI_SOURCES`), so a CI matrix needs no flags at all; the shard
//! line says which.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::errors::UsageError;
use crate::schedule::lpt;

/// Seconds per node id, sorted by node id: what a committed durations file
/// holds (`history::durations_file` reads and writes it).
pub type Durations = std::collections::BTreeMap<String, f64>;

/// `--shard K --total-shards N`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub total: usize,
}

/// Everything a shard partitions from, resolved before the run starts.
#[derive(Debug, Clone)]
pub struct ShardInput {
    pub spec: ShardSpec,
    /// The durations file and its contents; `None` splits by node-id hash.
    pub durations: Option<(PathBuf, Durations)>,
    /// Where the shard numbers came from, for the shard line.
    pub source: String,
}

/// CI systems whose parallel jobs give the shard when no flag or
/// `RPYTEST_*` variable does: name, index variable, count variable, and
/// the number of the first job.
const CI_SOURCES: &[(&str, &str, &str, usize)] = &[
    ("GitLab", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    ("CircleCI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ("Buildkite", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
];

/// The shard to run and a description of where its numbers came from:
/// flags, then `RPYTEST_SHARD`/`RPYTEST_TOTAL_SHARDS`, then the first CI
/// system in `CI_SOURCES` whose two variables are set with more than one job.
pub fn locate(
    shard: Option<usize>,
    total: Option<usize>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(ShardSpec, String)>, UsageError> {
    if let Some(spec) = ShardSpec::resolve(shard, total, &env)? {
        let source = match (shard, total) {
            (Some(_), Some(_)) => "--shard/--total-shards",
            (None, None) => "RPYTEST_SHARD/RPYTEST_TOTAL_SHARDS",
            _ => "--shard/--total-shards and RPYTEST_SHARD/RPYTEST_TOTAL_SHARDS",
        };
        return Ok(Some((spec, source.to_string())));
    }
    for &(ci, index_var, total_var, first) in CI_SOURCES {
        let (Some(index), Some(total)) = (from_env(&env, index_var)?, from_env(&env, total_var)?) else { continue };
        if total <= 1 {
            continue; // one job: the whole suite, as without sharding
        }
        if index < first || index - first >= total {
            return Err(UsageError::BadFlag(format!(
                "{index_var}={index} is out of range for {total_var}={total} ({ci} numbers its jobs from {first}); \
                 pass --shard/--total-shards to override"
            )));
        }
        let spec = ShardSpec { index: index - first, total };
        return Ok(Some((spec, format!("{ci}'s {index_var}={index}, {total_var}={total}"))));
    }
    Ok(None)
}

impl ShardSpec {
    /// Combines flags and `RPYTEST_SHARD` / `RPYTEST_TOTAL_SHARDS` (flags win).
    pub fn resolve(
        shard: Option<usize>,
        total: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ShardSpec>, UsageError> {
        let shard = shard.map_or_else(|| from_env(&env, "RPYTEST_SHARD"), |v| Ok(Some(v)))?;
        let total = total.map_or_else(|| from_env(&env, "RPYTEST_TOTAL_SHARDS"), |v| Ok(Some(v)))?;
        let bad = |m: String| Err(UsageError::BadFlag(m));
        match (shard, total) {
            (None, None) => Ok(None),
            (Some(_), None) => bad("--shard needs --total-shards N (or RPYTEST_TOTAL_SHARDS)".into()),
            (None, Some(_)) => bad("--total-shards needs --shard K (or RPYTEST_SHARD), 0-based".into()),
            (Some(_), Some(0)) => bad("--total-shards must be at least 1".into()),
            (Some(k), Some(n)) if k >= n => {
                bad(format!("--shard {k} is out of range for --total-shards {n}: shards are 0-based, 0 to {}", n - 1))
            }
            (Some(index), Some(total)) => Ok(Some(ShardSpec { index, total })),
        }
    }
}

fn from_env(env: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>, UsageError> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| UsageError::BadFlag(format!("{name}={v:?} is not a whole number >= 0"))),
    }
}

/// The partition of one selection into shards.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// The shard of each selected test, in selection order.
    pub shard_of: Vec<usize>,
    /// The planned load of each shard (seconds, or tests without durations).
    pub loads: Vec<f64>,
    /// Selected tests the durations file knows.
    pub known: usize,
    /// Short hash of the input (node ids, weights, shard count).
    pub fingerprint: String,
}

/// Partitions `ids` into `total` shards.
pub fn partition(ids: &[String], durations: Option<&Durations>, total: usize) -> Partition {
    let (weights, known) = weights(ids, durations);
    let hashes: Vec<u64> = ids.iter().map(|id| stable_hash(id)).collect();
    let order = lpt::heaviest_first(&weights, |i| (hashes[i], &ids[i]));
    let (shard_of, loads) = lpt::assign(&order, &weights, total);
    Partition { shard_of, loads, known, fingerprint: fingerprint(ids, &weights, total) }
}

/// Each test's weight: its recorded duration, else the mean recorded
/// duration of the selection; all 1.0 without durations. The mean is summed
/// in node-id order, so it does not depend on collection order.
fn weights(ids: &[String], durations: Option<&Durations>) -> (Vec<f64>, usize) {
    let Some(durations) = durations else { return (vec![1.0; ids.len()], 0) };
    let mut known: Vec<(&String, f64)> = ids.iter().filter_map(|id| durations.get(id).map(|d| (id, *d))).collect();
    known.sort_by(|a, b| a.0.cmp(b.0));
    let mean = match known.len() {
        0 => 1.0,
        n => known.iter().map(|(_, d)| d).sum::<f64>() / n as f64,
    };
    let weights = ids.iter().map(|id| durations.get(id).copied().unwrap_or(mean)).collect();
    (weights, known.len())
}

/// FNV-1a, 64-bit: fixed forever, so every machine and version agrees.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn fingerprint(ids: &[String], weights: &[f64], total: usize) -> String {
    let mut pairs: Vec<(&String, f64)> = ids.iter().zip(weights.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    hasher.update(total.to_le_bytes());
    for (id, weight) in pairs {
        hasher.update(id.as_bytes());
        hasher.update([0]);
        hasher.update(weight.to_bits().to_le_bytes());
    }
    hasher.finalize()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Partition {
    /// Indices of `shard`'s tests, in selection order.
    pub fn members(&self, shard: usize) -> Vec<usize> {
        (0..self.shard_of.len()).filter(|&i| self.shard_of[i] == shard).collect()
    }

    /// The line each shard prints, e.g. `rpytest: shard 1 of 4 (0-based):
    /// 125 of 500 tests, ~2.05s of 8.20s recorded in .test_durations (500 known);
    /// partition 1a2b3c4d`.
    pub fn describe(&self, input: &ShardInput) -> String {
        let ShardSpec { index, total } = input.spec;
        let count = self.members(index).len();
        let basis = match &input.durations {
            Some((path, _)) => format!(
                "~{:.2}s of {:.2}s recorded in {} ({} of {} known)",
                self.loads[index],
                self.loads.iter().sum::<f64>(),
                path.display(),
                self.known,
                self.shard_of.len()
            ),
            None => "split by node-id hash (no durations file)".to_string(),
        };
        format!(
            "rpytest: shard {index} of {total} (0-based, from {}): {count} of {} tests, {basis}; partition {}",
            input.source,
            self.shard_of.len(),
            self.fingerprint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tests/test_{}.py::test_{i}", i % 7)).collect()
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn flags_and_environment_combine_and_are_checked() {
        let none = env(&[]);
        assert_eq!(ShardSpec::resolve(None, None, &none).unwrap(), None);
        assert_eq!(ShardSpec::resolve(Some(1), Some(4), &none).unwrap(), Some(ShardSpec { index: 1, total: 4 }));
        let vars = env(&[("RPYTEST_SHARD", "2"), ("RPYTEST_TOTAL_SHARDS", "3")]);
        assert_eq!(ShardSpec::resolve(None, None, &vars).unwrap(), Some(ShardSpec { index: 2, total: 3 }));
        assert_eq!(ShardSpec::resolve(Some(0), None, &vars).unwrap(), Some(ShardSpec { index: 0, total: 3 }));
        for (k, n) in [(Some(4), Some(4)), (Some(0), Some(0)), (Some(1), None), (None, Some(2))] {
            assert!(ShardSpec::resolve(k, n, &none).is_err(), "{k:?} {n:?}");
        }
        let err = ShardSpec::resolve(Some(4), Some(4), &none).unwrap_err().to_string();
        assert!(err.contains("0-based"), "{err}");
        assert!(ShardSpec::resolve(None, None, env(&[("RPYTEST_SHARD", "x"), ("RPYTEST_TOTAL_SHARDS", "2")])).is_err());
    }

    #[test]
    fn ci_variables_give_the_shard_when_nothing_else_does() {
        let gitlab = env(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")]);
        let (spec, source) = locate(None, None, &gitlab).unwrap().unwrap();
        assert_eq!(spec, ShardSpec { index: 2, total: 3 });
        assert!(source.contains("GitLab") && source.contains("CI_NODE_INDEX=3"), "{source}");
        let circle = env(&[("CIRCLE_NODE_INDEX", "0"), ("CIRCLE_NODE_TOTAL", "4")]);
        assert_eq!(locate(None, None, &circle).unwrap().unwrap().0, ShardSpec { index: 0, total: 4 });
        let buildkite = env(&[("BUILDKITE_PARALLEL_JOB", "1"), ("BUILDKITE_PARALLEL_JOB_COUNT", "2")]);
        assert_eq!(locate(None, None, &buildkite).unwrap().unwrap().0, ShardSpec { index: 1, total: 2 });
        // Flags win, and say so.
        let (spec, source) = locate(Some(0), Some(2), &gitlab).unwrap().unwrap();
        assert_eq!((spec, source.as_str()), (ShardSpec { index: 0, total: 2 }, "--shard/--total-shards"));
        // One job, or only the count (GitLab always sets CI_NODE_TOTAL): no sharding.
        assert_eq!(locate(None, None, env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "1")])).unwrap(), None);
        assert_eq!(locate(None, None, env(&[("CI_NODE_TOTAL", "1")])).unwrap(), None);
        // GitLab counts from 1: index 0 is out of range.
        let err = locate(None, None, env(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "3")])).unwrap_err().to_string();
        assert!(err.contains("CI_NODE_INDEX=0") && err.contains("from 1"), "{err}");
        assert!(locate(None, None, env(&[("CIRCLE_NODE_INDEX", "x"), ("CIRCLE_NODE_TOTAL", "2")])).is_err());
    }

    #[test]
    fn without_durations_shards_get_equal_counts() {
        let p = partition(&ids(10), None, 4);
        let counts: Vec<usize> = (0..4).map(|s| p.members(s).len()).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
    }

    #[test]
    fn durations_balance_the_shards_and_unknown_tests_take_the_mean() {
        let ids = ids(4);
        let durations = Durations::from([(ids[0].clone(), 3.0), (ids[1].clone(), 1.0), (ids[2].clone(), 2.0)]);
        let p = partition(&ids, Some(&durations), 2);
        // weights 3, 1, 2, 2 (mean): 3 | 2, then 2 -> shard 1, 1 -> shard 0.
        assert_eq!(p.loads, vec![4.0, 4.0]);
        assert_eq!(p.known, 3);
        assert_eq!(p.shard_of[0], 0);
        assert_eq!(p.shard_of[1], 0);
    }

    #[test]
    fn collection_order_does_not_change_the_partition() {
        let forward = ids(50);
        let mut backward = forward.clone();
        backward.reverse();
        let (a, b) = (partition(&forward, None, 3), partition(&backward, None, 3));
        assert_eq!(a.fingerprint, b.fingerprint);
        for (i, id) in forward.iter().enumerate() {
            let j = backward.iter().position(|x| x == id).unwrap();
            assert_eq!(a.shard_of[i], b.shard_of[j]);
        }
    }

    #[test]
    fn the_fingerprint_sees_every_input() {
        let ids = ids(20);
        let base = partition(&ids, None, 4).fingerprint;
        assert_ne!(base, partition(&ids, None, 3).fingerprint);
        assert_ne!(base, partition(&ids[1..], None, 4).fingerprint);
        let durations = Durations::from([(ids[0].clone(), 2.0)]);
        assert_ne!(base, partition(&ids, Some(&durations), 4).fingerprint);
        assert_eq!(base.len(), 8);
    }

    fn suite() -> impl Strategy<Value = (Vec<f64>, usize)> {
        (prop::collection::vec(0.0f64..10.0, 1..300), 1usize..9)
    }

    proptest! {
        #[test]
        fn shards_cover_the_selection_exactly_once((weights, total) in suite()) {
            let ids = ids(weights.len());
            let durations: Durations = ids.iter().cloned().zip(weights.iter().copied()).collect();
            let p = partition(&ids, Some(&durations), total);
            let mut all: Vec<usize> = (0..total).flat_map(|s| p.members(s)).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..ids.len()).collect::<Vec<_>>());
        }

        #[test]
        fn partitions_are_deterministic((weights, total) in suite()) {
            let ids = ids(weights.len());
            let durations: Durations = ids.iter().cloned().zip(weights.iter().copied()).collect();
            prop_assert_eq!(partition(&ids, Some(&durations), total), partition(&ids, Some(&durations), total));
        }

        #[test]
        fn loads_are_within_ten_percent_when_no_test_is_large((weights, total) in suite()) {
            let sum: f64 = weights.iter().sum();
            let target = sum / total as f64;
            let longest = weights.iter().copied().fold(0.0, f64::max);
            prop_assume!(sum > 0.0 && longest <= 0.1 * target);
            let ids = ids(weights.len());
            let durations: Durations = ids.iter().cloned().zip(weights.iter().copied()).collect();
            let p = partition(&ids, Some(&durations), total);
            for load in &p.loads {
                prop_assert!((load - target).abs() <= 0.1 * target + 1e-9, "{:?} vs {}", p.loads, target);
            }
        }
    }
}
