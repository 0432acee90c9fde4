//! Finding the Python interpreter that runs pytest.
//!
//! `--python PATH`, else the active virtualenv, else `python3` on PATH. A
//! missing interpreter is a usage error that says where we looked and how to
//! fix it; a missing pytest is detected by the zygote itself (it exits with
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
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let python = Path::new(&venv).join("bin").join("python");
        if is_executable(&python) {
            return Ok(python);
        }
    }
    find_on_path("python3").ok_or_else(|| {
        UsageError::Interpreter(
            "no Python interpreter found: VIRTUAL_ENV is not set and python3 is not on PATH.\n\
             Install Python 3 with pytest, activate a virtualenv, or pass --python PATH"
                .to_string(),
        )
    })
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
