//! Staleness by evidence: what a warm zygote's collection depended on.
//!
//! After collecting, the zygote lists every file it imported or read
//! (modules, conftests, ini files, `.pth` files, the interpreter) with its
//! stat: mtime, ctime, size and inode (ctime moves on any write, rename or
//! `touch -d` back in time), or "absent". Absent entries include every file
//! pytest's rootdir and inifile discovery would look for in the ancestors
//! of the rootdir, the invocation directory and the path arguments, so a
//! `pytest.ini` created above the suite is seen. It also lists every
//! directory on `sys.path` and under its collection roots with a digest of
//! its visible entry names, so a test file or module added, removed or
//! renamed anywhere there is seen too, while caches and reports that come
//! and go as hidden files (`.pytest_cache`, `.coverage`) are not. Before a
//! run takes the zygote, the daemon checks them all again; any difference
//! discards it.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The list as the zygote sends it (`src/protocol/warm.rs`).
pub use crate::protocol::warm::{Deps, Stat};

/// Clock granularity allowance (the kernel stamps files from a coarse clock,
/// up to a jiffy behind): a file stamped this close to the zygote's
/// start may have been written while it was reading.
pub const SETTLE_NS: i64 = 10_000_000;

pub fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    let ns = |secs: i64, nsec: i64| secs * 1_000_000_000 + nsec;
    Some((ns(meta.mtime(), meta.mtime_nsec()), ns(meta.ctime(), meta.ctime_nsec()), meta.size(), meta.ino()))
}

/// The digest `warm.py`'s `listing_digest` computes: sha256 of the sorted
/// visible names joined by NUL, first 32 hex digits.
pub fn listing_digest(dir: &Path) -> Option<String> {
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().as_bytes().to_vec())
        .filter(|name| !name.starts_with(b".") && name != b"__pycache__")
        .collect();
    names.sort();
    let digest = Sha256::digest(names.join(&0u8));
    Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// What changed since a collection: files whose stat differs, and the
/// directories whose listing did (a file added, removed or renamed there).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// How long until a collection that starts then cannot be confused with
    /// one that read the changed files while they were being written (see
    /// `Deps::unsettled`): the newest stamp plus the clock's granularity.
    pub fn settling_time(&self) -> std::time::Duration {
        let stamps = self.files.iter().chain(&self.dirs).filter_map(|path| stat(path)).map(|(m, c, _, _)| m.max(c));
        let newest = stamps.max().unwrap_or(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        std::time::Duration::from_nanos((newest + SETTLE_NS + 1_000_000 - now).max(0) as u64)
    }
}

impl Deps {
    /// Every dependency that is no longer as it was.
    pub fn changes(&self) -> Changes {
        let files =
            self.files.iter().filter(|(path, then)| stat(path) != *then).map(|(path, _)| path.clone()).collect();
        let dirs =
            self.dirs.iter().filter(|(dir, then, _)| listing_digest(dir) != *then).map(|(dir, _, _)| dir.clone());
        Changes { files, dirs: dirs.collect() }
    }

    /// A dependency stamped after the zygote began reading the suite at
    /// `started_ns` (less the clock's granularity): it may have changed
    /// while being read, so the zygote cannot vouch for what it collected.
    pub fn unsettled(&self, started_ns: i64) -> Option<String> {
        let late = |stamp: i64| stamp >= started_ns - SETTLE_NS;
        let file = self.files.iter().find(|(_, stat)| stat.is_some_and(|(mtime, ctime, _, _)| late(mtime.max(ctime))));
        let dir = || self.dirs.iter().find(|(_, _, mtime)| late(*mtime));
        let path = file.map(|(path, _)| path).or_else(|| dir().map(|(path, _, _)| path))?;
        Some(format!("{} changed while the zygote was collecting", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps_of(dir: &Path, files: &[&Path]) -> Deps {
        Deps {
            files: files.iter().map(|f| (f.to_path_buf(), stat(f))).collect(),
            dirs: vec![(dir.to_path_buf(), listing_digest(dir), 0)],
        }
    }

    #[test]
    fn edits_additions_and_removals_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        let absent = dir.path().join("b.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let deps = deps_of(dir.path(), &[&file, &absent]);
        assert!(deps.changes().is_empty());
        std::fs::write(&absent, "").unwrap();
        assert_eq!(deps.changes().files, std::slice::from_ref(&absent));
        std::fs::remove_file(&absent).unwrap();
        std::fs::write(&file, "x = 2\n").unwrap();
        assert_eq!(deps.changes().files, std::slice::from_ref(&file));
    }

    #[test]
    fn new_visible_files_count_and_hidden_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let deps = deps_of(dir.path(), &[]);
        std::fs::write(dir.path().join(".coverage"), "").unwrap();
        std::fs::create_dir(dir.path().join("__pycache__")).unwrap();
        assert!(deps.changes().is_empty());
        std::fs::write(dir.path().join("test_new.py"), "").unwrap();
        assert_eq!(deps.changes(), Changes { files: vec![], dirs: vec![dir.path().to_path_buf()] });
    }

    #[test]
    fn a_file_written_after_the_start_is_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        let now_ns = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        let before = now_ns() - 5_000_000_000;
        std::fs::write(&file, "").unwrap();
        let deps = deps_of(dir.path(), &[&file]);
        assert!(deps.unsettled(before).is_some());
        assert!(deps.unsettled(now_ns() + 5_000_000_000).is_none());
    }
}
