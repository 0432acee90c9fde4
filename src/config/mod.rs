//! rpytest's settings file: `[tool.rpytest]` in the project's pyproject.toml.
//!
//! Defaults live in `config/defaults.toml` (embedded), the project file
//! overrides them, `RPYTEST_<KEY>` environment variables override that, and
//! command-line flags override everything. An unknown key or a
//! bad value is a usage error naming the file, the key and what is accepted,
//! because a silently ignored setting is worse than none.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::errors::UsageError;
use values::{fixture_list, fixture_names, parse_max_memory};
pub use values::{
    parse_daemon_max_memory, parse_max_memory_flag, parse_memory, parse_retries, parse_timeout, MaxMemory,
};
pub use workers::{MemoryLimits, WorkerCount};

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
mod values;
mod workers;

const DEFAULTS: &str = include_str!("../../config/defaults.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStart {
    Fork,
    Spawn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    default_workers: Option<toml::Value>,
    worker_start: Option<String>,
    retries: Option<toml::Value>,
    shared_session_fixtures: Option<toml::Value>,
    daemon: Option<String>,
    daemon_idle_timeout: Option<u64>,
    daemon_max_memory: Option<toml::Value>,
    timeout: Option<toml::Value>,
    max_memory: Option<toml::Value>,
    worker_memory: Option<toml::Value>,
    slow_timeout: Option<toml::Value>,
    test_order: Option<String>,
    parallel_collection: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub default_workers: WorkerCount,
    pub worker_start: WorkerStart,
    /// Reruns of a failed test before it counts as failed.
    pub retries: u32,
    /// Session fixtures set up once before the fork and inherited by every
    /// worker, instead of once per worker.
    pub shared_session_fixtures: Vec<String>,
    /// Whether a run uses `rpytest serve`'s warm zygotes.
    pub daemon: DaemonMode,
    /// Seconds an unused daemon waits before it stops (0: never).
    pub daemon_idle_timeout: u64,
    /// Bytes the daemon's warm sessions may hold together, counted as PSS
    /// (None: a quarter of the memory available when it starts).
    pub daemon_max_memory: Option<u64>,
    /// Seconds a test may run before rpytest stops its worker (0: no limit).
    pub timeout: Option<f64>,
    /// Seconds after which a running test is said to be slow (0: never).
    pub slow_timeout: f64,
    /// Bytes the run's processes may use together (None: what is available).
    pub max_memory: Option<u64>,
    /// Bytes one worker is assumed to need until the history knows better.
    pub worker_memory: u64,
    /// The order in which each worker runs its tests.
    pub test_order: crate::schedule::run_queue::Order,
    /// Whether a cold run may spread its collection over the workers.
    pub parallel_collection: ParallelCollection,
    /// The pyproject.toml the settings came from, if any.
    pub source: Option<PathBuf>,
}

impl Settings {
    /// Defaults, overridden by the nearest pyproject.toml at or above `dir`
    /// (pytest's rootdir, see `rootdir.rs`).
    pub fn load(dir: &Path) -> Result<Settings, UsageError> {
        let mut settings = Settings::from_toml(DEFAULTS, Path::new("<built-in defaults>"), None)?;
        if let Some(path) = find_pyproject(dir) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| UsageError::Config { file: path.clone(), message: format!("cannot read it: {e}") })?;
            settings = Settings::from_toml(&text, &path, Some(settings))?;
        }
        Ok(settings)
    }

    fn from_toml(text: &str, file: &Path, base: Option<Settings>) -> Result<Settings, UsageError> {
        let bad = |message: String| UsageError::Config { file: file.to_path_buf(), message };
        let doc: toml::Table = text.parse().map_err(|e| bad(format!("invalid TOML: {e}")))?;
        let section = if let Some(base) = &base {
            match doc.get("tool").and_then(|t| t.get("rpytest")) {
                Some(section) => section.clone(),
                None => return Ok(base.clone()),
            }
        } else {
            toml::Value::Table(doc)
        };
        let raw: RawSettings =
            section.try_into().map_err(|e| bad(format!("[tool.rpytest]: {e}; accepted keys: {}", KEYS.join(", "))))?;
        let mut settings = base.unwrap_or(Settings {
            default_workers: WorkerCount::Exactly(1),
            worker_start: WorkerStart::Fork,
            retries: 0,
            shared_session_fixtures: Vec::new(),
            daemon: DaemonMode::Use,
            daemon_idle_timeout: 3600,
            daemon_max_memory: None,
            timeout: None,
            slow_timeout: 60.0,
            max_memory: None,
            worker_memory: 256 * 1024 * 1024,
            test_order: crate::schedule::run_queue::Order::Collection,
            parallel_collection: ParallelCollection::Auto,
            source: None,
        });
        for (key, value) in [
            ("default_workers", raw.default_workers),
            ("retries", raw.retries),
            ("timeout", raw.timeout),
            ("slow_timeout", raw.slow_timeout),
            ("max_memory", raw.max_memory),
            ("worker_memory", raw.worker_memory),
            ("daemon_max_memory", raw.daemon_max_memory),
        ] {
            let Some(value) = value else { continue };
            let text = match &value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            settings.set(key, &text).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.worker_start {
            settings.set("worker_start", &value).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.shared_session_fixtures {
            let names = fixture_list(&value).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
            settings.set("shared_session_fixtures", &names).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.test_order {
            settings.set("test_order", &value).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.parallel_collection {
            settings.set("parallel_collection", &value).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.daemon {
            settings.set("daemon", &value).map_err(|e| bad(format!("[tool.rpytest] {e}")))?;
        }
        if let Some(value) = raw.daemon_idle_timeout {
            settings.daemon_idle_timeout = value;
        }
        if base_is_project(file) {
            settings.source = Some(file.to_path_buf());
        }
        Ok(settings)
    }
}

impl Settings {
    /// Applies `RPYTEST_<KEY>` environment overrides (`RPYTEST_DEFAULT_WORKERS=4`),
    /// which sit between pyproject.toml and the command line. The
    /// environment is read as raw bytes (`std::env::vars_os`): a variable
    /// that is not valid UTF-8 is not ours and is passed over, unless it
    /// names one of our settings, which is then a clear error.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(), UsageError> {
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let Some(key) = name.strip_prefix("RPYTEST_").map(str::to_ascii_lowercase) else { continue };
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            let env_error = |message| UsageError::Env { name: name.to_string(), message };
            let value = value.to_str().ok_or_else(|| {
                env_error(format!(
                    "its value {value:?} is not valid UTF-8; set it to one of the values docs/configuration.md lists"
                ))
            })?;
            self.set(&key, value).map_err(env_error)?;
        }
        Ok(())
    }

    /// Sets one setting from its text form; the error names the key and
    /// what it accepts.
    fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        match key {
            "default_workers" => {
                self.default_workers = WorkerCount::parse(text).map_err(|e| format!("default_workers: {e}"))?;
            }
            "worker_start" => {
                self.worker_start = match text {
                    "fork" => WorkerStart::Fork,
                    "spawn" => WorkerStart::Spawn,
                    _ => return Err(format!("worker_start: invalid value '{text}'; accepted: \"fork\", \"spawn\"")),
                };
            }
            "retries" => self.retries = parse_retries(text).map_err(|e| format!("retries: {e}"))?,
            "timeout" => self.timeout = Some(parse_timeout(text).map_err(|e| format!("timeout: {e}"))?),
            "slow_timeout" => self.slow_timeout = parse_timeout(text).map_err(|e| format!("slow_timeout: {e}"))?,
            "max_memory" => self.max_memory = parse_max_memory(text).map_err(|e| format!("max_memory: {e}"))?,
            "worker_memory" => self.worker_memory = parse_memory(text).map_err(|e| format!("worker_memory: {e}"))?,
            "shared_session_fixtures" => self.shared_session_fixtures = fixture_names(text)?,
            "test_order" => {
                self.test_order =
                    crate::schedule::run_queue::Order::parse(text).map_err(|e| format!("test_order: {e}"))?;
            }
            "parallel_collection" => {
                self.parallel_collection =
                    ParallelCollection::parse(text).map_err(|e| format!("parallel_collection: {e}"))?;
            }
            "daemon" => self.daemon = DaemonMode::parse(text).map_err(|e| format!("daemon: {e}"))?,
            "daemon_idle_timeout" => {
                self.daemon_idle_timeout = text
                    .parse()
                    .map_err(|_| format!("daemon_idle_timeout: invalid value '{text}'; expected whole seconds"))?;
            }
            "daemon_max_memory" => {
                self.daemon_max_memory =
                    parse_daemon_max_memory(text).map_err(|e| format!("daemon_max_memory: {e}"))?;
            }
            _ => return Err(format!("unknown setting '{key}'; accepted: {}", KEYS.join(", "))),
        }
        Ok(())
    }
}

/// Every setting, as written in pyproject.toml (and, upper-cased after
/// `RPYTEST_`, in the environment).
pub const KEYS: &[&str] = &[
    "default_workers",
    "worker_start",
    "shared_session_fixtures",
    "daemon",
    "daemon_idle_timeout",
    "daemon_max_memory",
    "retries",
    "timeout",
    "slow_timeout",
    "max_memory",
    "worker_memory",
    "test_order",
    "parallel_collection",
];

/// `parallel_collection` in `[tool.rpytest]` (docs/collection.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelCollection {
    /// Spread when it pays (enough bytes of test files, no file holding
    /// most of them) and nothing needs the whole collection.
    Auto,
    /// Spread whenever nothing needs the whole collection, small suites
    /// too (what the comparison batteries run with, to exercise it).
    Always,
    /// The zygote collects everything.
    Off,
}

impl ParallelCollection {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(ParallelCollection::Auto),
            "always" => Ok(ParallelCollection::Always),
            "off" => Ok(ParallelCollection::Off),
            _ => Err(format!("invalid value '{text}'; accepted: \"auto\", \"always\", \"off\"")),
        }
    }
}

/// `daemon` in `[tool.rpytest]`: use a running daemon (default), start one
/// in the background when none runs, or never use one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonMode {
    Use,
    Auto,
    Off,
}

impl DaemonMode {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "use" => Ok(DaemonMode::Use),
            "auto" => Ok(DaemonMode::Auto),
            "off" => Ok(DaemonMode::Off),
            _ => Err(format!("invalid value '{text}'; accepted: \"use\", \"auto\", \"off\"")),
        }
    }
}

fn base_is_project(file: &Path) -> bool {
    file.file_name().is_some_and(|n| n == "pyproject.toml")
}

fn find_pyproject(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("pyproject.toml")).find(|p| p.is_file())
}
