//! Files rpytest rewrites keep their permissions (issue #23, defect 8).
//!
//! The history, `--store-durations`' file and the extracted pyworker are
//! replaced atomically (temp file + rename). The temp file must not carry
//! its 0600 into place: a committed 0644 `.test_durations` read by a shard
//! of another uid would become unreadable. An existing file keeps its mode;
//! a new one gets what any new file gets, 0666 (0777 for a directory) less
//! the umask. The umask is set for the rpytest process alone, through `sh`.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn suite() -> Suite {
    Suite::new(&[("test_m.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n")])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `rpytest --store-durations` in the suite, under `umask`, with the
/// pyworker extracted to `cache`.
fn run_under_umask(suite: &Suite, umask: &str, cache: &Path) -> RunResult {
    let py = python();
    let script = format!("umask {umask} && exec \"$0\" \"$@\"");
    let args: Vec<String> = [
        "-c",
        &script,
        rpytest_bin().to_str().unwrap(),
        "--python",
        py.to_str().unwrap(),
        "--color=no",
        "-p",
        "no:cacheprovider",
        "--store-durations",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = run_command(Path::new("sh"), &args, suite.path(), &[("RPYTEST_CACHE_DIR", cache.to_str().unwrap())]);
    assert_clean_exit(&r);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("2 passed")), "{}", r.dump());
    r
}

fn pyworker_dir(cache: &Path) -> std::path::PathBuf {
    let packages = cache.join("site-packages");
    let found = std::fs::read_dir(&packages)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("pyworker-"));
    found.unwrap_or_else(|| panic!("no pyworker-* in {}", cache.display())).path()
}

#[test]
fn rewritten_files_keep_their_mode() {
    for kept in [0o644, 0o640] {
        let suite = suite();
        let cache = tempfile::tempdir().unwrap();
        run_under_umask(&suite, "022", cache.path());
        let files = [suite.join(".test_durations"), suite.join(".rpytest/history.json")];
        for file in &files {
            set_mode(file, kept);
        }
        let r = run_under_umask(&suite, "022", cache.path());
        for file in &files {
            assert_eq!(mode(file), kept, "{} was {kept:o} before the run\n{}", file.display(), r.dump());
        }
    }
}

#[test]
fn new_files_get_the_mode_the_umask_gives() {
    for (umask, file_mode, dir_mode) in [("027", 0o640, 0o750), ("022", 0o644, 0o755)] {
        let suite = suite();
        let cache = tempfile::tempdir().unwrap();
        let r = run_under_umask(&suite, umask, cache.path());
        for file in [suite.join(".test_durations"), suite.join(".rpytest/history.json")] {
            assert_eq!(mode(&file), file_mode, "{} under umask {umask}\n{}", file.display(), r.dump());
        }
        let pyworker = pyworker_dir(cache.path());
        assert_eq!(mode(&pyworker), dir_mode, "{} under umask {umask}\n{}", pyworker.display(), r.dump());
    }
}
