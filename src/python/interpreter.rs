//! Finding the Python interpreter that runs pytest.
//!
//! `--python PATH`, else the active virtualenv, else `python3` on PATH. A
//! missing interpreter is a usage error that says where we looked and how to
//! fix it; a `VIRTUAL_ENV` without an interpreter (a deleted venv) is named
//! in a warning before falling back, never skipped silently; an interpreter
//! that exits before rpytest's code starts in it is a usage error too; a missing pytest is detected by the zygote itself (it exits with
//! a reserved status) so the common path costs no extra interpreter start.

use std::path::{Path, PathBuf};

use crate::errors::UsageError;

pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, UsageError> {
    if let Some(path) = explicit {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(UsageError::Interpreter(format!(
                "the interpreter given by --python does not exist or is not executable: {}\n\
                 Pass the path of a Python 3 interpreter that has pytest installed, e.g. --python .venv/bin/python",
                path.display()
            )))
        };
    }
    let venv = std::env::var_os("VIRTUAL_ENV").filter(|v| !v.is_empty()).map(PathBuf::from);
    let stale = match venv.map(|venv| venv.join("bin").join("python")) {
        Some(python) if is_executable(&python) => return Ok(python),
        Some(python) => Some(python),
        None => None,
    };
    let fallback = find_on_path("python3");
    if let Some(missing) = &stale {
        if let Some(found) = &fallback {
            eprintln!("rpytest: warning: {}", stale_venv(missing, found));
        }
    }
    fallback.ok_or_else(|| UsageError::Interpreter(not_found(stale.as_deref())))
}

/// The warning for a `VIRTUAL_ENV` whose interpreter is gone.
fn stale_venv(missing: &Path, fallback: &Path) -> String {
    format!(
        "VIRTUAL_ENV is set but {} does not exist or is not executable (a deleted or moved venv?); \
         using {} from PATH instead. Activate a working venv, unset VIRTUAL_ENV, or pass --python PATH",
        missing.display(),
        fallback.display()
    )
}

fn not_found(stale: Option<&Path>) -> String {
    let looked = match stale {
        Some(missing) => format!("VIRTUAL_ENV points to a missing interpreter ({})", missing.display()),
        None => "VIRTUAL_ENV is not set".to_string(),
    };
    format!(
        "no Python interpreter found: {looked} and python3 is not on PATH.\n\
         Install Python 3 with pytest, activate a virtualenv, or pass --python PATH"
    )
}

/// The message for an interpreter that ended before rpytest's code in it
/// said hello (`--python /bin/false`, not a Python 3): it cannot run pytest.
pub fn unusable(python: &Path, how: &str) -> UsageError {
    UsageError::Interpreter(format!(
        "{} {how} before rpytest could start pytest in it: it is not a usable Python 3 interpreter.\n\
         Pass --python with the path of a Python 3 interpreter that has pytest, e.g. --python .venv/bin/python",
        python.display()
    ))
}

/// The message for an interpreter that runs but cannot import pytest.
pub fn missing_pytest(python: &Path) -> UsageError {
    UsageError::Interpreter(format!(
        "pytest is not installed for {py}.\nInstall it with: {py} -m pip install pytest\n\
         (or pass --python with an interpreter that has pytest)",
        py = python.display()
    ))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// "pytest 9.2.0 (Python 3.11.7 at /venv/bin/python)", for `--version`.
pub fn pytest_version(python: &Path) -> Result<String, String> {
    const PROBE: &str = "import sys, pytest; print(pytest.__version__, sys.version.split()[0])";
    let output = std::process::Command::new(python)
        .args(["-c", PROBE])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(missing_pytest(python).to_string());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [pytest, py] => Ok(format!("pytest {pytest} (Python {py} at {})", python.display())),
        _ => Err(format!("{} printed an unexpected version line: {text}", python.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_was_looked_at() {
        let warning = stale_venv(Path::new("/gone/bin/python"), Path::new("/usr/bin/python3"));
        assert!(warning.contains("VIRTUAL_ENV") && warning.contains("/gone/bin/python"), "{warning}");
        assert!(warning.contains("/usr/bin/python3"), "{warning}");
        assert!(not_found(Some(Path::new("/gone/bin/python"))).contains("VIRTUAL_ENV points to"));
        assert!(not_found(None).contains("VIRTUAL_ENV is not set"));
        let error = unusable(Path::new("/bin/false"), "exited with code 1").to_string();
        assert!(error.contains("/bin/false exited with code 1") && error.contains("--python"), "{error}");
    }
}
