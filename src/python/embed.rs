//! The embedded Python half of rpytest.
//!
//! The binary carries `pyworker/rpytest_worker` and writes it, once, to a
//! cache directory named by the hash of its contents. The Rust and Python
//! halves therefore always match: a new binary never runs an old worker.
//! Writes go to a temporary directory that is renamed into place, so a
//! killed run never leaves a half-written package behind.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::errors::EngineError;

const FILES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../pyworker/rpytest_worker/__init__.py")),
    ("bootstrap.py", include_str!("../../pyworker/rpytest_worker/bootstrap.py")),
    ("pristine.py", include_str!("../../pyworker/rpytest_worker/pristine.py")),
    ("protocol.py", include_str!("../../pyworker/rpytest_worker/protocol.py")),
    ("msgpack_fallback.py", include_str!("../../pyworker/rpytest_worker/msgpack_fallback.py")),
    ("identity.py", include_str!("../../pyworker/rpytest_worker/identity.py")),
    ("pytest_internals.py", include_str!("../../pyworker/rpytest_worker/pytest_internals.py")),
    ("prctl.py", include_str!("../../pyworker/rpytest_worker/prctl.py")),
    ("collection.py", include_str!("../../pyworker/rpytest_worker/collection.py")),
    ("reports.py", include_str!("../../pyworker/rpytest_worker/reports.py")),
    ("xdist_compat.py", include_str!("../../pyworker/rpytest_worker/xdist_compat.py")),
    ("fixtures.py", include_str!("../../pyworker/rpytest_worker/fixtures.py")),
    ("plugin_compat.py", include_str!("../../pyworker/rpytest_worker/plugin_compat.py")),
    ("shared_fixtures.py", include_str!("../../pyworker/rpytest_worker/shared_fixtures.py")),
    ("spread.py", include_str!("../../pyworker/rpytest_worker/spread.py")),
    ("zygote.py", include_str!("../../pyworker/rpytest_worker/zygote.py")),
    ("fixture_order.py", include_str!("../../pyworker/rpytest_worker/fixture_order.py")),
    ("warm.py", include_str!("../../pyworker/rpytest_worker/warm.py")),
    ("checkpoint.py", include_str!("../../pyworker/rpytest_worker/checkpoint.py")),
    ("spare.py", include_str!("../../pyworker/rpytest_worker/spare.py")),
    ("selection.py", include_str!("../../pyworker/rpytest_worker/selection.py")),
    ("cache_plugins.py", include_str!("../../pyworker/rpytest_worker/cache_plugins.py")),
    ("recollect.py", include_str!("../../pyworker/rpytest_worker/recollect.py")),
    ("quick_exit.py", include_str!("../../pyworker/rpytest_worker/quick_exit.py")),
    ("fork_safety.py", include_str!("../../pyworker/rpytest_worker/fork_safety.py")),
    ("spawned.py", include_str!("../../pyworker/rpytest_worker/spawned.py")),
    ("worker.py", include_str!("../../pyworker/rpytest_worker/worker.py")),
    ("sink.py", include_str!("../../pyworker/rpytest_worker/sink.py")),
    ("terminal_summary.py", include_str!("../../pyworker/rpytest_worker/terminal_summary.py")),
    ("affected.py", include_str!("../../pyworker/rpytest_worker/affected.py")),
    ("deps_record.py", include_str!("../../pyworker/rpytest_worker/deps_record.py")),
];

/// The `python -c` program that starts a zygote or a spawned worker.
pub fn bootstrap(dir: &Path) -> String {
    format!(
        "import sys, time\nsys.rpytest_started_ns = time.time_ns()\n\
         try:\n    import pytest\nexcept ImportError:\n    sys.exit(97)\n\
         sys.path.insert(0, {dir:?}); from rpytest_worker.bootstrap import main; sys.exit(main())",
        dir = dir.display().to_string()
    )
}

/// Makes sure the package is on disk; returns the directory to put on sys.path.
///
/// The cache lives under `RPYTEST_CACHE_DIR`, else `$XDG_CACHE_HOME/rpytest`,
/// else `~/.cache/rpytest`. When the last two cannot be written (a service
/// account whose HOME is `/nonexistent`, a read-only home in a container),
/// a private directory in `$TMPDIR` serves instead, and the first run that
/// fills it says so. A `RPYTEST_CACHE_DIR` that cannot be written is an
/// error: the user chose it.
pub fn install() -> Result<PathBuf, EngineError> {
    let (root, chosen) = cache_root();
    let failure = match install_in(&root) {
        Ok((dir, _)) => return Ok(dir),
        Err(failure) if chosen => return Err(failure),
        Err(failure) => failure,
    };
    let fallback = private_fallback().map_err(|source| EngineError::PyworkerCache { dir: root.clone(), source })?;
    let (dir, fresh) = install_in(&fallback)?;
    if fresh {
        eprintln!(
            "rpytest: note: {failure}; using the private directory {} instead \
             (set RPYTEST_CACHE_DIR or XDG_CACHE_HOME to choose another)",
            fallback.display()
        );
    }
    Ok(dir)
}

/// The package's directory under `root`, and whether this call wrote it.
fn install_in(root: &Path) -> Result<(PathBuf, bool), EngineError> {
    // Under a `site-packages` directory, like any installed library: tools
    // that tell the user's own code from libraries by path (Hypothesis
    // harvests string constants from every "local" module it finds in
    // sys.modules) must not take rpytest's worker for the user's code.
    let root = &root.join("site-packages");
    let dir = root.join(format!("pyworker-{}", content_hash()));
    if dir.join("rpytest_worker").join("sink.py").is_file() {
        return Ok((dir, false));
    }
    write_atomically(root, &dir).map_err(|source| EngineError::PyworkerCache { dir: dir.clone(), source })?;
    Ok((dir, true))
}

fn write_atomically(root: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    // Readable as any directory the user makes: a shared RPYTEST_CACHE_DIR
    // serves every uid, not only the one that wrote it.
    let staging = crate::history::atomic_file::staging_dir(root, ".pyworker-")?;
    let package = staging.path().join("rpytest_worker");
    std::fs::create_dir(&package)?;
    for (name, text) in FILES {
        std::fs::write(package.join(name), text)?;
    }
    match std::fs::rename(staging.path(), dir) {
        Ok(()) => {
            std::mem::forget(staging);
            Ok(())
        }
        // Another rpytest won the race: its copy is identical.
        Err(_) if dir.join("rpytest_worker").join("sink.py").is_file() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The cache root, and whether the user chose it (`RPYTEST_CACHE_DIR`).
fn cache_root() -> (PathBuf, bool) {
    if let Some(dir) = std::env::var_os("RPYTEST_CACHE_DIR").filter(|d| !d.is_empty()) {
        return (PathBuf::from(dir), true);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    (base.join("rpytest"), false)
}

/// `$TMPDIR/rpytest-cache-<uid>`, 0700. The temporary directory is shared
/// with every user, so one that exists is used only if it is a real
/// directory of ours that nobody else can write into: the package in it
/// is code that rpytest runs.
fn private_fallback() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("rpytest-cache-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => return Ok(dir),
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} exists but is not a private directory of this user (mode 0700); remove it",
            dir.display()
        )));
    }
    Ok(dir)
}

pub fn content_hash() -> String {
    let mut hasher = Sha256::new();
    for (name, text) in FILES {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(content_hash(), content_hash());
        assert_eq!(content_hash().len(), 16);
    }

    #[test]
    fn installs_every_file_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pyworker-x");
        write_atomically(root.path(), &dir).unwrap();
        for (name, text) in FILES {
            assert_eq!(std::fs::read_to_string(dir.join("rpytest_worker").join(name)).unwrap(), *text);
        }
        write_atomically(root.path(), &dir).unwrap();
    }

    /// The engine's variables never reach the code under test: identity.py
    /// removes each one the engine or the daemon sets (a new one must be added there).
    #[test]
    fn identity_knows_every_variable_the_engine_sets() {
        let identity = include_str!("../../pyworker/rpytest_worker/identity.py");
        let sources = [
            include_str!("../supervise/launch.rs"),
            include_str!("../daemon/warm_zygote.rs"),
            include_str!("../daemon/client.rs"),
        ];
        let mut seen = 0;
        for source in sources {
            for pattern in ["env(\"RPYTEST_", "push((\"RPYTEST_"] {
                for (at, _) in source.match_indices(pattern) {
                    let start = at + pattern.len() - "RPYTEST_".len();
                    let name = &source[start..start + source[start..].find('"').unwrap()];
                    assert!(identity.contains(&format!("\"{name}\":")), "identity.py does not remove {name}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 10, "found only {seen} variables: has the way the engine sets them changed?");
    }

    #[test]
    fn embeds_every_module_of_the_package() {
        let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("pyworker/rpytest_worker");
        for entry in std::fs::read_dir(package).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".py") {
                assert!(FILES.iter().any(|(embedded, _)| *embedded == name), "{name} is not embedded in FILES");
            }
        }
    }
}
