//! Staleness by evidence: what a warm zygote's collection depended on.
//!
//! After collecting, the zygote lists every file it imported or read
//! (modules, conftests, ini files, `.pth` files, the interpreter), every
//! directory on `sys.path`, and every directory under its collection roots,
//! each with its stat: mtime, ctime, size and inode (ctime moves on any
//! write, rename or `touch -m` back in time), or "absent". A directory's
//! mtime moves when an entry is added, removed or renamed, so the set of
//! candidate test files is covered too. Before a run takes the zygote,
//! the daemon stats them again; any difference discards it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// mtime (ns), ctime (ns), size, inode.
pub type Stat = (i64, i64, u64, u64);

/// Clock granularity allowance (the kernel stamps files from a coarse clock,
/// up to a jiffy behind): a file stamped this close to the zygote's
/// start may have been written while it was reading.
const SETTLE_NS: i64 = 10_000_000;

#[derive(Debug, Deserialize)]
pub struct Deps {
    pub entries: Vec<(PathBuf, Option<Stat>)>,
}

pub fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    let ns = |secs: i64, nsec: i64| secs * 1_000_000_000 + nsec;
    Some((ns(meta.mtime(), meta.mtime_nsec()), ns(meta.ctime(), meta.ctime_nsec()), meta.size(), meta.ino()))
}

impl Deps {
    /// The first dependency that is no longer as it was, said in words.
    pub fn changed(&self) -> Option<String> {
        self.entries.iter().find_map(|(path, then)| {
            let now = stat(path);
            (now != *then).then(|| match (then, now) {
                (None, Some(_)) => format!("{} appeared", path.display()),
                (Some(_), None) => format!("{} was removed", path.display()),
                _ => format!("{} changed", path.display()),
            })
        })
    }

    /// A dependency stamped after the zygote began reading the suite at
    /// `started_ns` (less the clock's granularity): it may have changed
    /// while being read, so the zygote cannot vouch for what it collected.
    pub fn unsettled(&self, started_ns: i64) -> Option<String> {
        self.entries.iter().find_map(|(path, stat)| {
            let (mtime, ctime, _, _) = (*stat)?;
            (mtime.max(ctime) >= started_ns - SETTLE_NS)
                .then(|| format!("{} changed while the zygote was collecting", path.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_additions_and_removals_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        let absent = dir.path().join("b.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let deps = Deps { entries: vec![(file.clone(), stat(&file)), (absent.clone(), None)] };
        assert_eq!(deps.changed(), None);
        std::fs::write(&absent, "").unwrap();
        assert!(deps.changed().unwrap().contains("appeared"));
        std::fs::remove_file(&absent).unwrap();
        std::fs::write(&file, "x = 2\n").unwrap();
        assert!(deps.changed().unwrap().contains("a.py changed"));
    }

    #[test]
    fn a_file_written_after_the_start_is_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        let now_ns = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        let before = now_ns() - 5_000_000_000;
        std::fs::write(&file, "").unwrap();
        let deps = Deps { entries: vec![(file.clone(), stat(&file))] };
        assert!(deps.unsettled(before).is_some());
        assert!(deps.unsettled(now_ns() + 5_000_000_000).is_none());
    }
}
