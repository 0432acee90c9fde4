//! The committed durations file: the shared input CI shards balance from.
//!
//! Shards run on different machines, so they cannot balance from each
//! machine's own history (see `shard.rs`). Instead a durations file is
//! written on purpose (`--store-durations`), committed, and read by every
//! shard (`--durations-path`, default `.test_durations` in the current
//! directory). The format is pytest-split's, so its users can keep theirs:
//! a JSON object `{"node id": seconds}`, keys sorted, 4-space indent. The
//! older pytest-split form, a list of `[node id, seconds]` pairs, is read
//! too. A file that cannot be trusted is a usage error that says how to fix
//! it: a partition computed from garbage would silently skip tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::atomic_file;
use super::dir_lock::DirLock;
pub use crate::schedule::shard::Durations;

/// pytest-split's default file name, looked for in the current directory.
pub const DEFAULT_NAME: &str = ".test_durations";

/// Where the durations file is: `--durations-path`, else `./.test_durations`.
pub fn resolve_path(flag: Option<&Path>, cwd: &Path) -> PathBuf {
    cwd.join(flag.unwrap_or(Path::new(DEFAULT_NAME)))
}

/// Where shard K of N stores its part of the durations with
/// `--store-durations`: beside the shared file, `.test_durations.shard-K-of-N`.
pub fn part_path(path: &Path, index: usize, total: usize) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".shard-{index}-of-{total}"));
    path.with_file_name(name)
}

/// Merges durations parts into the file at `target` (parts win over the
/// file, later parts over earlier ones). Returns (tests in the parts,
/// tests in the file now). A part that cannot be read is an error and
/// nothing is written.
pub fn merge_parts(target: &Path, parts: &[PathBuf]) -> Result<(usize, usize), String> {
    if parts.is_empty() {
        return Err("--merge-durations needs the parts to merge, e.g. .test_durations.shard-*".to_string());
    }
    let mut run = HashMap::new();
    for part in parts {
        run.extend(read(part)?);
    }
    if target.exists() {
        read(target)?;
    }
    let total = merge_and_save(target, &run).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok((run.len(), total))
}

/// Reads and validates a durations file; the error says what is wrong.
pub fn read(path: &Path) -> Result<Durations, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the durations file {}: {e}; create it with `rpytest --store-durations` on a full run, \
             or leave out --durations-path to split by node-id hash",
            path.display()
        )
    })?;
    parse(&bytes).map_err(|problem| {
        format!(
            "the durations file {} is not usable: {problem}; regenerate it with \
             `rpytest --store-durations --durations-path {}` on a full run, or delete it to split by node-id hash",
            path.display(),
            path.display()
        )
    })
}

/// With `--store-durations`, a file that cannot be used is no obstacle: the
/// run replaces it. The warning to show for one, if it is such a file.
pub fn replaced_warning(path: &Path) -> Option<String> {
    let problem = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => e.to_string(),
        Ok(bytes) => parse(&bytes).err()?,
    };
    Some(format!(
        "the durations file {} is not usable ({problem}); --store-durations replaces it with this run's durations",
        path.display()
    ))
}

/// Parses either pytest-split form; every duration must be a finite number >= 0.
pub fn parse(bytes: &[u8]) -> Result<Durations, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON ({e})"))?;
    let pairs: Vec<(String, &serde_json::Value)> = match &value {
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        serde_json::Value::Array(list) => list.iter().map(pair).collect::<Result<_, _>>()?,
        _ => return Err("expected a JSON object {\"node id\": seconds}".to_string()),
    };
    let mut durations = Durations::new();
    for (id, seconds) in pairs {
        match seconds.as_f64() {
            Some(s) if s.is_finite() && s >= 0.0 => durations.insert(id, s),
            _ => return Err(format!("the duration of '{id}' is {seconds}, not a number of seconds >= 0")),
        };
    }
    Ok(durations)
}

fn pair(entry: &serde_json::Value) -> Result<(String, &serde_json::Value), String> {
    match entry.as_array().map(Vec::as_slice) {
        Some([serde_json::Value::String(id), seconds]) => Ok((id.clone(), seconds)),
        _ => Err(format!("expected [\"node id\", seconds] pairs, found {entry}")),
    }
}

/// Merges this run's durations into the file (this run wins) and writes it
/// atomically, keeping the file's mode (other users' shards read it). An existing file that no longer parses is replaced. The
/// directory is locked from the read to the rename, so two runs storing at
/// the same time both keep their tests (see `dir_lock.rs`).
pub fn merge_and_save(path: &Path, run: &HashMap<String, f64>) -> std::io::Result<usize> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let _lock = DirLock::exclusive(dir)?;
    let mut durations = std::fs::read(path).ok().and_then(|b| parse(&b).ok()).unwrap_or_default();
    durations.extend(run.iter().map(|(id, s)| (id.clone(), *s)));
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(&durations, &mut serializer)?;
    text.push(b'\n');
    atomic_file::write(path, &text)?;
    Ok(durations.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_pytest_split_forms() {
        let dict = parse(br#"{"a.py::t": 1.5, "b.py::u": 0}"#).unwrap();
        assert_eq!(dict["a.py::t"], 1.5);
        let list = parse(br#"[["a.py::t", 1.5], ["b.py::u", 2]]"#).unwrap();
        assert_eq!(list["b.py::u"], 2.0);
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        assert!(parse(b"{truncated").unwrap_err().contains("invalid JSON"));
        assert!(parse(b"42").unwrap_err().contains("JSON object"));
        assert!(parse(br#"{"a": -1}"#).unwrap_err().contains("'a'"));
        assert!(parse(br#"{"a": "slow"}"#).is_err());
        assert!(parse(br#"[["a"]]"#).is_err());
    }

    #[test]
    fn read_errors_say_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test_durations");
        std::fs::write(&path, b"[1, 2").unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.contains("--store-durations") && err.contains("delete it"), "{err}");
        assert!(read(&dir.path().join("missing")).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn store_durations_warns_about_a_file_it_will_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test_durations");
        assert_eq!(replaced_warning(&path), None, "no file, nothing to say");
        std::fs::write(&path, b"{\"a::t\": 1}").unwrap();
        assert_eq!(replaced_warning(&path), None);
        std::fs::write(&path, b"{\"a::t\": ").unwrap();
        let warning = replaced_warning(&path).unwrap();
        assert!(warning.contains("invalid JSON") && warning.contains("replaces it"), "{warning}");
        merge_and_save(&path, &HashMap::from([("b::t".to_string(), 2.0)])).unwrap();
        assert_eq!(read(&path).unwrap(), Durations::from([("b::t".to_string(), 2.0)]));
    }

    #[test]
    fn parts_sit_beside_the_file_and_merge_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(".test_durations");
        assert_eq!(part_path(&target, 1, 3), dir.path().join(".test_durations.shard-1-of-3"));
        merge_and_save(&target, &HashMap::from([("old::t".to_string(), 1.0), ("a::t".to_string(), 9.0)])).unwrap();
        let parts = [part_path(&target, 0, 2), part_path(&target, 1, 2)];
        merge_and_save(&parts[0], &HashMap::from([("a::t".to_string(), 2.0)])).unwrap();
        merge_and_save(&parts[1], &HashMap::from([("b::t".to_string(), 3.0)])).unwrap();
        assert_eq!(merge_parts(&target, &parts).unwrap(), (2, 3));
        let merged = read(&target).unwrap();
        assert_eq!((merged["a::t"], merged["b::t"], merged["old::t"]), (2.0, 3.0, 1.0));
        std::fs::write(&parts[1], b"{broken").unwrap();
        assert!(merge_parts(&target, &parts).unwrap_err().contains("shard-1-of-2"));
        assert!(merge_parts(&target, &[]).is_err());
    }

    #[test]
    fn merge_keeps_other_tests_and_writes_sorted_pretty_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(".test_durations");
        merge_and_save(&path, &HashMap::from([("b::t".to_string(), 1.0), ("a::t".to_string(), 2.0)])).unwrap();
        merge_and_save(&path, &HashMap::from([("b::t".to_string(), 3.0)])).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\n    \"a::t\": 2.0,\n    \"b::t\": 3.0\n}\n");
    }
}
