//! pytest's rootdir, found before pytest runs, the way pytest finds it.
//!
//! `[tool.rpytest]` belongs to the project pytest runs in, which is not
//! always the directory rpytest was started from: `rpytest ../other/tests`,
//! or a nested `pyproject.toml` under a repository whose `pytest.ini` sits
//! at the top. The settings are needed before the zygote starts, so this is
//! pytest's `determine_setup` in small: `--rootdir`, `-c`, the common
//! ancestor of the path arguments, then the first directory at or above it
//! with a pytest configuration file, else one with `setup.py`. The zygote
//! reports the rootdir pytest really chose; a warning says when the two
//! disagree (`settings_mismatch`), so the user learns which settings
//! applied.

use std::path::{Path, PathBuf};

/// Config files in the order pytest looks for them in each directory, and
/// whether one counts without a pytest section (pytest.ini always does).
const CONFIG_FILES: &[&str] =
    &["pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"];

/// Where pytest will run, as far as the command line and files tell.
pub fn pytest_rootdir(cwd: &Path, pytest_args: &[String]) -> PathBuf {
    if let Some(dir) = option_value(pytest_args, &["--rootdir"]) {
        return cwd.join(dir);
    }
    if let Some(file) = option_value(pytest_args, &["-c", "--config-file"]) {
        if let Some(parent) = cwd.join(file).parent() {
            return parent.to_path_buf();
        }
    }
    let dirs = path_dirs(cwd, pytest_args);
    let ancestor = common_ancestor(cwd, &dirs);
    if let Some(found) = configured_dir(&ancestor) {
        return found;
    }
    if let Some(found) = ancestor.ancestors().find(|d| d.join("setup.py").is_file()) {
        return found.to_path_buf();
    }
    if let Some(found) = dirs.iter().find_map(|d| configured_dir(d)) {
        return found;
    }
    let top = common_ancestor(cwd, &[cwd.to_path_buf(), ancestor.clone()]);
    if top.parent().is_none() {
        ancestor
    } else {
        top
    }
}

/// The value of the first of `names` on the command line (`--name value`
/// or `--name=value`), stopping at `--`.
pub fn option_value<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut args = args.iter().take_while(|a| *a != "--");
    while let Some(arg) = args.next() {
        for name in names {
            if arg == name {
                return args.next().map(String::as_str);
            }
            if let Some(value) = arg.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
                return Some(value);
            }
        }
    }
    None
}

/// The directories of the arguments that name existing paths (a node id's
/// `::` part dropped), as pytest's `get_dirs_from_args`.
fn path_dirs(cwd: &Path, args: &[String]) -> Vec<PathBuf> {
    args.iter()
        .filter(|a| !a.starts_with('-'))
        .map(|a| cwd.join(a.split("::").next().unwrap_or(a)))
        .filter(|p| p.exists())
        .map(|p| if p.is_dir() { p } else { p.parent().map(Path::to_path_buf).unwrap_or(p) })
        .collect()
}

fn common_ancestor(cwd: &Path, dirs: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for dir in dirs {
        common = Some(match common {
            None => dir.clone(),
            Some(c) => c.ancestors().find(|a| dir.starts_with(a)).map(Path::to_path_buf).unwrap_or(c),
        });
    }
    common.unwrap_or_else(|| cwd.to_path_buf())
}

/// The first directory at or above `start` holding a pytest configuration
/// file; a pyproject.toml without a pytest table counts only if nothing else
/// is found (pytest >= 8.1).
fn configured_dir(start: &Path) -> Option<PathBuf> {
    let mut bare_pyproject = None;
    for dir in start.ancestors() {
        for name in CONFIG_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            if configures_pytest(&path) {
                return Some(dir.to_path_buf());
            }
            if *name == "pyproject.toml" && bare_pyproject.is_none() {
                bare_pyproject = Some(dir.to_path_buf());
            }
        }
    }
    bare_pyproject
}

fn configures_pytest(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    match name {
        "pytest.ini" | ".pytest.ini" => true,
        "pytest.toml" | ".pytest.toml" => true,
        "pyproject.toml" => text
            .parse::<toml::Table>()
            .ok()
            .and_then(|doc| doc.get("tool").and_then(|t| t.get("pytest")).cloned())
            .is_some(),
        "tox.ini" => has_ini_section(&text, "pytest"),
        "setup.cfg" => has_ini_section(&text, "tool:pytest"),
        _ => false,
    }
}

fn has_ini_section(text: &str, section: &str) -> bool {
    text.lines().any(|line| line.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')) == Some(section))
}

/// A warning when the rootdir pytest chose is not the one the settings were
/// looked up for, and settings were involved (read, or missed there).
pub fn settings_mismatch(assumed: &Path, read_settings: bool, actual: &Path) -> Option<String> {
    let same =
        |a: &Path, b: &Path| a == b || a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(x, y)| x == y);
    if same(assumed, actual) || !(read_settings || has_rpytest_table(&actual.join("pyproject.toml"))) {
        return None;
    }
    Some(format!(
        "rpytest: warning: [tool.rpytest] was looked up for {} but pytest's rootdir is {}; \
         pass --rootdir to make them agree",
        assumed.display(),
        actual.display()
    ))
}

fn has_rpytest_table(pyproject: &Path) -> bool {
    let doc = std::fs::read_to_string(pyproject).ok().and_then(|text| text.parse::<toml::Table>().ok());
    doc.is_some_and(|doc| doc.get("tool").and_then(|t| t.get("rpytest")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_ini_file_above_a_nested_pyproject_wins() {
        let t =
            tree(&[("pytest.ini", "[pytest]\n"), ("pkg/pyproject.toml", "[project]\nname='x'\n"), ("pkg/t/a.py", "")]);
        assert_eq!(pytest_rootdir(&t.path().join("pkg/t"), &[]), t.path());
    }

    #[test]
    fn path_arguments_decide_not_the_current_directory() {
        let t = tree(&[("a/pyproject.toml", "[tool.pytest.ini_options]\n"), ("a/tests/test_x.py", ""), ("b/x", "")]);
        let root = pytest_rootdir(&t.path().join("b"), &args(&["-q", "../a/tests/test_x.py::test_one"]));
        assert_eq!(root.canonicalize().unwrap(), t.path().join("a").canonicalize().unwrap());
    }

    #[test]
    fn sections_decide_for_tox_and_setup_cfg() {
        let t = tree(&[("setup.cfg", "[tool:pytest]\n"), ("sub/tox.ini", "[tox]\n"), ("sub/d/x", "")]);
        assert_eq!(pytest_rootdir(&t.path().join("sub/d"), &[]), t.path());
    }

    #[test]
    fn a_bare_pyproject_counts_when_nothing_else_does() {
        let t = tree(&[("pyproject.toml", "[project]\nname='x'\n"), ("t/x", "")]);
        assert_eq!(pytest_rootdir(&t.path().join("t"), &[]), t.path());
    }

    #[test]
    fn rootdir_and_config_file_options_are_honoured() {
        let t = tree(&[("pytest.ini", "[pytest]\n"), ("cfg/my.ini", "[pytest]\n"), ("r/x", "")]);
        assert_eq!(pytest_rootdir(t.path(), &args(&["--rootdir=r"])), t.path().join("r"));
        assert_eq!(pytest_rootdir(t.path(), &args(&["-c", "cfg/my.ini"])), t.path().join("cfg"));
    }

    #[test]
    fn a_different_rootdir_is_noted_when_settings_are_involved() {
        let t = tree(&[("a/x", ""), ("b/pyproject.toml", "[tool.rpytest]\nretries = 1\n")]);
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        assert!(settings_mismatch(t.path(), true, t.path()).is_none());
        assert!(settings_mismatch(t.path(), true, &a).is_some_and(|n| n.contains("rootdir")));
        assert!(settings_mismatch(t.path(), false, &a).is_none(), "no settings anywhere");
        assert!(settings_mismatch(t.path(), false, &b).is_some(), "settings missed at the real rootdir");
    }
}
