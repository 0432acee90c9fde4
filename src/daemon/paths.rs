//! Where the daemon's socket lives: a per-user directory only its owner
//! can enter (mode 0700), checked every time, never trusted blindly.
//!
//! `RPYTEST_RUNTIME_DIR` overrides it (tests run private daemons this way),
//! else `$XDG_RUNTIME_DIR/rpytest`, else `/tmp/rpytest-<uid>`.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error("cannot create the runtime directory {0}: {1}")]
    Create(PathBuf, std::io::Error),
    #[error("refusing the runtime directory {0}: it belongs to uid {1}, not to us")]
    NotOurs(PathBuf, u32),
    #[error("refusing the runtime directory {0}: its mode is {1:o}, others could reach the socket (want 700)")]
    TooOpen(PathBuf, u32),
}

pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RPYTEST_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("rpytest");
    }
    std::env::temp_dir().join(format!("rpytest-{}", uid()))
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("daemon.sock")
}

pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Creates the directory (0700) if needed and checks owner and mode.
pub fn ensure_private(dir: &Path) -> Result<(), RuntimeDirError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| RuntimeDirError::Create(dir.to_path_buf(), e))?;
    }
    check_private(dir)
}

/// The directory is ours and closed to everyone else.
pub fn check_private(dir: &Path) -> Result<(), RuntimeDirError> {
    let meta = std::fs::metadata(dir).map_err(|e| RuntimeDirError::Create(dir.to_path_buf(), e))?;
    if meta.uid() != uid() {
        return Err(RuntimeDirError::NotOurs(dir.to_path_buf(), meta.uid()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(RuntimeDirError::TooOpen(dir.to_path_buf(), mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_directory_and_refuses_an_open_one() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a").join("rpytest");
        ensure_private(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(ensure_private(&dir), Err(RuntimeDirError::TooOpen(..))));
    }
}
