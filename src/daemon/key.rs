//! What a warm zygote must share with a run to serve it.
//!
//! A zygote ran pytest's configuration and collection with one interpreter,
//! directory, argument list and environment, and printed pytest's header for
//! one kind of terminal. Any difference could change what it collected or
//! printed, so all of it is the key, compared exactly; the file contents it
//! read are checked separately (`deps`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Variables the shell rewrites as the user moves about (`$_`: the command
/// it ran; `$OLDPWD`: the directory before the last `cd`). They say nothing
/// about a test run, and would make every other run cold: they are left out
/// of the key (and so of a warm zygote's environment).
const SHELL_BOOKKEEPING: &[&str] = &["_", "OLDPWD"];

/// Variables only the client reads, left out of the key for the same
/// reason: `--watch`'s result file is new for every watch, and would make
/// a watch's runs miss the sessions that plain runs warmed.
const CLIENT_ONLY: &[&str] = &[crate::report::RESULT_FILE_VAR];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    pub python: PathBuf,
    pub cwd: PathBuf,
    /// pytest's arguments (rpytest's own flags are the client's business).
    pub args: Vec<String>,
    /// The whole environment (but `SHELL_BOOKKEEPING` and `CLIENT_ONLY`), sorted: any variable may be read
    /// at import time.
    pub env: Vec<(String, String)>,
    /// The client's stdout is a terminal this wide (pytest prints for it).
    pub terminal_columns: Option<u16>,
    /// stdout and stderr are one file (a terminal, `2>&1`): the zygote
    /// captures them as one stream so their order survives the replay.
    pub merged_output: bool,
}

/// Why this process cannot describe itself as a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the environment variable {0:?} is not valid UTF-8")]
    NonUtf8Env(String),
}

impl RunKey {
    /// The key of a run of `args` with `python` from this process.
    pub fn for_this_process(python: &Path, cwd: &Path, args: &[String]) -> Result<RunKey, KeyError> {
        Ok(RunKey {
            python: python.to_path_buf(),
            cwd: cwd.to_path_buf(),
            args: args.to_vec(),
            env: key_env(std::env::vars_os())?,
            terminal_columns: terminal_columns(),
            merged_output: same_file(1, 2),
        })
    }

    /// The name of the key's spare: a process with everything but the
    /// arguments (`warm_zygote::Spare`).
    pub fn spare_id(&self) -> String {
        RunKey { args: vec![], ..self.clone() }.id()
    }

    /// A short stable name for the key, for maps and logs.
    pub fn id(&self) -> String {
        let bytes = rmp_serde::to_vec(self).expect("keys always encode");
        Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// The environment as the key holds it: sorted, without the variables
/// left out.
fn key_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Result<Vec<(String, String)>, KeyError> {
    let mut env = Vec::new();
    for (name, value) in vars.filter(|(name, _)| !SHELL_BOOKKEEPING.iter().chain(CLIENT_ONLY).any(|b| name == b)) {
        let shown = name.to_string_lossy().into_owned();
        let (Ok(name), Ok(value)) = (name.into_string(), value.into_string()) else {
            return Err(KeyError::NonUtf8Env(shown));
        };
        env.push((name, value));
    }
    env.sort();
    Ok(env)
}

fn terminal_columns() -> Option<u16> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0;
    Some(if ok && size.ws_col > 0 { size.ws_col } else { 80 })
}

fn same_file(a: i32, b: i32) -> bool {
    let stat = |fd| {
        // SAFETY: fstat fills a stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_with_any_part() {
        let key = RunKey {
            python: "/py".into(),
            cwd: "/p".into(),
            args: vec!["-q".into()],
            env: vec![("A".into(), "1".into())],
            terminal_columns: None,
            merged_output: false,
        };
        let mut other = key.clone();
        other.env[0].1 = "2".into();
        assert_ne!(key.id(), other.id());
        assert_eq!(key.id(), key.clone().id());
        assert_eq!(key.id().len(), 16);
    }

    #[test]
    fn shell_bookkeeping_and_the_watchs_result_file_are_not_part_of_the_key() {
        let vars = |extra: &[(&str, &str)]| {
            let base = [("PATH", "/bin"), ("A", "1")];
            key_env(base.iter().chain(extra).map(|(k, v)| (OsString::from(k), OsString::from(v)))).unwrap()
        };
        let plain = vars(&[]);
        assert_eq!(plain, vec![("A".to_string(), "1".to_string()), ("PATH".to_string(), "/bin".to_string())]);
        let watched = vars(&[(crate::report::RESULT_FILE_VAR, "/tmp/rpytest-watch-x/result"), ("_", "/bin/rpytest")]);
        assert_eq!(watched, plain);
        assert_ne!(vars(&[("B", "2")]), plain);
    }
}
