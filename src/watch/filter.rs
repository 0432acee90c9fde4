//! Which saved files are worth a rerun, decided by name alone.
//!
//! A watch that reran on every write under the rootdir would loop on what
//! the run itself writes (`.rpytest/history.json`, `__pycache__`, a junit
//! file, coverage data) and wake for editors' swap files. So a rerun
//! needs a file a test can import or pytest reads as configuration:
//! Python sources and ini/toml/cfg files. Directories that hold caches,
//! version control or virtual environments are never walked nor watched
//! (inotify would need one watch per directory of a `.venv`). What
//! `.gitignore` names is handled by the caller (`events`), which needs the
//! files on disk.

use std::path::Path;

/// Directories skipped wherever they are: caches, installed packages and
/// the usual virtual environment's name. Any directory whose name starts
/// with a dot is skipped too (`hidden_dir`), and `events` skips any holding
/// a `pyvenv.cfg` (a virtual environment under another name).
const SKIPPED_DIRS: &[&str] = &["__pycache__", "node_modules", "venv", "site-packages", "htmlcov"];

/// Extensions of the files a rerun is for: Python sources and stubs, and
/// the configuration pytest and plugins read (pytest.ini, tox.ini,
/// setup.cfg, pyproject.toml and the like).
const RELEVANT_EXTENSIONS: &[&str] = &["py", "pyi", "ini", "toml", "cfg"];

/// Whether a directory named `name` is left out of the watch.
pub fn skipped_dir(name: &str) -> bool {
    hidden_dir(name) || SKIPPED_DIRS.contains(&name) || name.ends_with(".egg-info")
}

/// `.git`, `.rpytest`, `.pytest_cache`, `.mypy_cache`, `.tox`, `.venv`, ...:
/// no test imports from a hidden directory.
fn hidden_dir(name: &str) -> bool {
    name.starts_with('.') && name != "." && name != ".."
}

/// Whether a change to the file at `path` calls for a rerun: a relevant
/// extension, and not an editor's temporary file (`.#x.py` lock files,
/// `x.py~` backups; vim's `.swp` and `4913` have no relevant extension).
pub fn relevant_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with(".#") || name.ends_with('~') {
        return false;
    }
    path.extension().and_then(|e| e.to_str()).is_some_and(|ext| RELEVANT_EXTENSIONS.contains(&ext))
}

/// Whether `path` lies in a skipped directory below `root` (the rootdir
/// itself may be anywhere, even under a hidden directory).
pub fn under_skipped_dir(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return true;
    };
    let mut parts: Vec<_> = relative.components().collect();
    parts.pop();
    parts.iter().any(|part| part.as_os_str().to_str().is_none_or(skipped_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_and_config_files_are_relevant_editor_leftovers_are_not() {
        for name in ["a/test_x.py", "pkg/mod.pyi", "pytest.ini", "pyproject.toml", "setup.cfg", "conftest.py"] {
            assert!(relevant_file(Path::new(name)), "{name}");
        }
        for name in [
            "a/.#test_x.py",
            "a/test_x.py~",
            "a/.test_x.py.swp",
            "a/4913",
            "x.pyc",
            "data.json",
            "report.xml",
            ".coverage",
        ] {
            assert!(!relevant_file(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn caches_vcs_and_environments_are_skipped() {
        for name in [".git", ".rpytest", "__pycache__", ".pytest_cache", ".mypy_cache", ".venv", "venv", "x.egg-info"] {
            assert!(skipped_dir(name), "{name}");
        }
        for name in ["tests", "src", "pkg", "data"] {
            assert!(!skipped_dir(name), "{name}");
        }
    }

    #[test]
    fn a_file_under_a_skipped_directory_below_the_root_is_skipped() {
        let root = Path::new("/home/u/.projects/app");
        assert!(!under_skipped_dir(root, Path::new("/home/u/.projects/app/tests/test_a.py")));
        assert!(under_skipped_dir(root, Path::new("/home/u/.projects/app/.git/HEAD")));
        assert!(under_skipped_dir(root, Path::new("/home/u/.projects/app/pkg/__pycache__/m.cpython-312.pyc")));
        assert!(under_skipped_dir(root, Path::new("/elsewhere/test_a.py")));
    }
}
