//! Replacing a file atomically without changing who may read it.
//!
//! The files rpytest rewrites (the history, the committed durations file)
//! are written to a temp file beside them and renamed over, so a killed run
//! never leaves half a file (DESIGN.md invariant 4). `tempfile` creates its
//! files 0600, as suits secrets: renamed into place, a 0644
//! `.test_durations` would become 0600 and a shard run by another uid could
//! no longer read it. So the temp file takes the mode of the file it
//! replaces, or, for a new file, what `open(2)` gives any new file: 0666
//! less the umask (asked of the kernel at creation, never read with
//! `umask(2)`, which would change it for every thread while it is read).
//! Every such write in rpytest goes through here.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The mode a new file gets before the umask, as `open(2)` callers use.
const NEW_FILE: u32 = 0o666;
/// The mode a new directory gets before the umask.
const NEW_DIR: u32 = 0o777;

/// Replaces `path` with `bytes`: the data is on disk before the rename, so
/// a crash leaves the old file or the new one, never a torn one.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// `write` for contents too big to hold twice: `fill` writes them to the
/// temp file (buffered), e.g. by serializing straight into it.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let kept = std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777);
    let mut tmp = tempfile::Builder::new().permissions(PermissionsExt::from_mode(NEW_FILE)).tempfile_in(dir)?;
    if let Some(mode) = kept {
        tmp.as_file().set_permissions(PermissionsExt::from_mode(mode))?;
    }
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
    fill(&mut buffered)?;
    buffered.flush()?;
    drop(buffered);
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A temporary directory in `root` to fill and then rename into place,
/// with the mode a directory made by `mkdir` would have (0777 less the
/// umask) instead of `tempfile`'s 0700.
pub fn staging_dir(root: &Path, prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).permissions(PermissionsExt::from_mode(NEW_DIR)).tempdir_in(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_replaced_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for wanted in [0o644, 0o640, 0o600] {
            std::fs::write(&path, b"old").unwrap();
            std::fs::set_permissions(&path, PermissionsExt::from_mode(wanted)).unwrap();
            write(&path, b"new").unwrap();
            assert_eq!((mode(&path), std::fs::read(&path).unwrap()), (wanted, b"new".to_vec()));
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file is left behind");
    }

    #[test]
    fn a_new_file_is_not_narrowed_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        write(&path, b"x").unwrap();
        // The umask of the test process is unknown, but it never masks the
        // owner's read and write; 0600 is what tempfile alone would give.
        assert_eq!(mode(&path) & 0o600, 0o600);
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        assert_eq!(mode(&path), mode(&probe), "the same mode as any new file");
    }
}
