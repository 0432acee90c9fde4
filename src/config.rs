//! rpytest's settings file: `[tool.rpytest]` in the project's pyproject.toml.
//!
//! Defaults live in `config/defaults.toml` (embedded), the project file
//! overrides them, `RPYTEST_<KEY>` environment variables override that, and
//! command-line flags override everything. An unknown key or a
//! bad value is a usage error naming the file, the key and what is accepted,
//! because a silently ignored setting is worse than none.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::errors::UsageError;

const DEFAULTS: &str = include_str!("../config/defaults.toml");

/// A worker count as written by a user: a number or "auto".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCount {
    Auto,
    Exactly(usize),
}

impl WorkerCount {
    /// `0` is xdist's "no distribution" (users override `addopts = -n auto`
    /// with it): the tests run one at a time, here in one worker.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" | "logical" => Ok(WorkerCount::Auto),
            _ => match text.parse::<usize>() {
                Err(_) => Err(format!(
                    "invalid worker count '{text}': expected a whole number (0: no distribution, one worker) or 'auto'"
                )),
                Ok(n) => Ok(WorkerCount::Exactly(n.max(1))),
            },
        }
    }

    /// Like `resolve`, with `auto` capped at `max` (xdist's `--maxprocesses`).
    pub fn resolve_capped(self, max: Option<u32>, limits: &MemoryLimits) -> usize {
        match (self, max) {
            (WorkerCount::Auto, Some(max)) => self.resolve(limits).min(max as usize),
            _ => self.resolve(limits),
        }
    }

    /// `auto` is the CPUs this process may use (std reads affinity and
    /// cgroup quotas), capped so each worker has `worker_memory` of the
    /// memory budget (see `MemoryBudget`).
    pub fn resolve(self, limits: &MemoryLimits) -> usize {
        match self {
            WorkerCount::Exactly(n) => n,
            WorkerCount::Auto => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let budget = limits.budget();
                cpus.min(budget.workers_that_fit(budget.worker_memory)).max(1)
            }
        }
    }
}

/// The memory settings as the user gave them (`--max-memory`,
/// `--worker-memory`, `[tool.rpytest]`); `budget` reads the machine's
/// memory only when a decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub max_memory: Option<u64>,
    pub worker_memory: u64,
}

impl MemoryLimits {
    pub fn budget(&self) -> MemoryBudget {
        MemoryBudget::new(self.max_memory, self.worker_memory)
    }
}

/// The memory a run may use: `max_memory` when set, else what is available
/// now (cgroup limits included); and what one worker is assumed to need
/// when the history has not seen it (`worker_memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes; None: unknown (no cap).
    pub total: Option<u64>,
    /// Whether the user set it (`--max-memory`, `max_memory`): then it also
    /// caps an explicit `-n` and is watched during the run.
    pub explicit: bool,
    pub worker_memory: u64,
}

impl MemoryBudget {
    pub fn new(max_memory: Option<u64>, worker_memory: u64) -> Self {
        match max_memory {
            Some(total) => MemoryBudget { total: Some(total), explicit: true, worker_memory },
            None => MemoryBudget { total: available_memory().map(less_reserve), explicit: false, worker_memory },
        }
    }

    /// How many workers of `per_worker` bytes the budget holds (at least one).
    pub fn workers_that_fit(&self, per_worker: u64) -> usize {
        match self.total {
            Some(total) => ((total / per_worker.max(1)) as usize).max(1),
            None => usize::MAX,
        }
    }
}

/// What the run may use of the memory available: all but a tenth (at least
/// 128 MiB), left for the rest of the machine and for the tests' peaks.
fn less_reserve(available: u64) -> u64 {
    available.saturating_sub((available / 10).max(128 << 20)).max(1)
}

/// Bytes of memory available now (cgroup limits included); None if unknown.
pub fn available_memory() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let available = match system.cgroup_limits() {
        Some(limits) => limits.free_memory.min(system.available_memory()),
        None => system.available_memory(),
    };
    (available > 0).then_some(available)
}

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
    timeout: Option<toml::Value>,
    max_memory: Option<toml::Value>,
    worker_memory: Option<toml::Value>,
    slow_timeout: Option<toml::Value>,
    test_order: Option<String>,
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
    /// Seconds a test may run before rpytest stops its worker (0: no limit).
    pub timeout: Option<f64>,
    /// Seconds after which a running test is said to be slow (0: never).
    pub slow_timeout: f64,
    /// Bytes the run's processes may use together (None: what is available).
    pub max_memory: Option<u64>,
    /// Bytes one worker is assumed to need until the history knows better.
    pub worker_memory: u64,
    /// The order in which each worker runs its tests.
    pub test_order: crate::run_queue::Order,
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
            timeout: None,
            slow_timeout: 60.0,
            max_memory: None,
            worker_memory: 256 * 1024 * 1024,
            test_order: crate::run_queue::Order::Collection,
            source: None,
        });
        for (key, value) in [
            ("default_workers", raw.default_workers),
            ("retries", raw.retries),
            ("timeout", raw.timeout),
            ("slow_timeout", raw.slow_timeout),
            ("max_memory", raw.max_memory),
            ("worker_memory", raw.worker_memory),
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
    /// which sit between pyproject.toml and the command line.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), UsageError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("RPYTEST_").map(str::to_ascii_lowercase) else { continue };
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            self.set(&key, &value).map_err(|message| UsageError::Env { name: name.clone(), message })?;
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
                self.test_order = crate::run_queue::Order::parse(text).map_err(|e| format!("test_order: {e}"))?;
            }
            "daemon" => self.daemon = DaemonMode::parse(text).map_err(|e| format!("daemon: {e}"))?,
            "daemon_idle_timeout" => {
                self.daemon_idle_timeout = text
                    .parse()
                    .map_err(|_| format!("daemon_idle_timeout: invalid value '{text}'; expected whole seconds"))?;
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
    "retries",
    "timeout",
    "slow_timeout",
    "max_memory",
    "worker_memory",
    "test_order",
];

/// A size in bytes: a number with an optional unit, K/M/G/T (powers of
/// 1024, with or without "iB"/"B"): `1000M`, `1.5G`, `512MiB`, `1048576`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{text}': expected a number of bytes with an optional unit, e.g. 1000M or 2G");
    let t = text.trim();
    let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches("IB").trim_end_matches('B');
    let scale = match unit {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `max_memory`: a size (also `--max-memory`), or "available" (the default).
pub fn parse_max_memory(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "available" => Ok(None),
        size => parse_memory(size).map(Some),
    }
}

/// `--max-memory`'s value: bytes, or None for "available".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxMemory(pub Option<u64>);

pub fn parse_max_memory_flag(text: &str) -> Result<MaxMemory, String> {
    parse_max_memory(text).map(MaxMemory)
}

/// A retry count: a whole number >= 0 (also `--retries`).
pub fn parse_retries(text: &str) -> Result<u32, String> {
    text.trim().parse::<u32>().map_err(|_| format!("invalid value '{text}': expected a whole number >= 0"))
}

/// A time limit in seconds: a number >= 0, 0 meaning none (also `--timeout`).
pub fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => Ok(secs),
        _ => Err(format!("invalid value '{text}': expected seconds, a number >= 0 (0: no limit)")),
    }
}

/// A TOML list of fixture names, in the text form the environment uses.
fn fixture_list(value: &toml::Value) -> Result<String, String> {
    let expected = || "shared_session_fixtures: expected a list of fixture names, e.g. [\"database\"]".to_string();
    let items = value.as_array().ok_or_else(expected)?;
    let names: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
    Ok(names.ok_or_else(expected)?.join(","))
}

/// Fixture names separated by commas or spaces; each must be a Python name.
fn fixture_names(text: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = text.split([',', ' ']).filter(|n| !n.is_empty()).map(str::to_string).collect();
    match names.iter().find(|n| !is_python_name(n)) {
        Some(bad) => Err(format!("shared_session_fixtures: '{bad}' is not a fixture name")),
        None => Ok(names),
    }
}

fn is_python_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
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

/// The command-line flag that overrides each setting.
#[cfg(test)]
const FLAGS: &[(&str, &str)] = &[
    ("default_workers", "`-n N|auto`"),
    ("worker_start", "`--worker-start`"),
    ("retries", "`--retries N`"),
    ("timeout", "`--timeout SECS`"),
    ("slow_timeout", "`--slow-timeout SECS`"),
    ("max_memory", "`--max-memory SIZE`"),
    ("worker_memory", "`--worker-memory SIZE`"),
    ("test_order", "`--test-order collection|longest`"),
];

/// `docs/configuration.md`, rendered from the commented defaults file:
/// each setting's comment, default, environment variable and flag.
#[cfg(test)]
fn reference(defaults: &str) -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from config/defaults.toml by `RPYTEST_BLESS=1 cargo test --release --bin rpytest \
         configuration_reference`; a test fails when the two disagree. Edit the defaults file, not this page. -->\n\n\
         rpytest reads `[tool.rpytest]` from the nearest `pyproject.toml` at or above pytest's rootdir, \
         which it finds as pytest does (`--rootdir`, `-c`, the path arguments, then the first directory \
         with a pytest configuration file), so running from another directory uses the project's settings; \
         if pytest then reports another rootdir, rpytest warns. \
         Each setting can also come from the environment as `RPYTEST_<KEY>`, which overrides the file; \
         the command-line flag overrides both. An unknown key or a bad value is a usage error (exit 4) \
         naming the file or variable.\n\n```toml\n# pyproject.toml\n[tool.rpytest]\n",
    );
    let settings = documented_settings(defaults);
    for (key, value, _) in &settings {
        out += &format!("{key} = {value}\n");
    }
    out += "```\n";
    for (key, value, comment) in settings {
        let flag = FLAGS.iter().find(|(k, _)| *k == key).map_or("none", |(_, f)| f);
        out += &format!(
            "\n## `{key}`\n\n{comment}\n\n- default: `{value}`\n- environment: `RPYTEST_{}`\n- flag: {flag}\n",
            key.to_ascii_uppercase()
        );
    }
    out
}

/// (key, default as written, the comment above it joined into a paragraph).
#[cfg(test)]
fn documented_settings(defaults: &str) -> Vec<(String, String, String)> {
    let mut settings = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    for line in defaults.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim());
        } else if let Some((key, value)) = line.split_once('=') {
            settings.push((key.trim().to_string(), value.trim().to_string(), comment.join(" ")));
            comment.clear();
        } else {
            comment.clear();
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_reference() {
        let settings = documented_settings(DEFAULTS);
        let keys: Vec<&str> = settings.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, KEYS, "config/defaults.toml and config::KEYS list different settings");
        assert!(settings.iter().all(|(_, _, comment)| !comment.is_empty()), "every default needs a comment");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let wanted = reference(DEFAULTS);
        if std::env::var_os("RPYTEST_BLESS").is_some() {
            std::fs::write(path, &wanted).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == wanted,
            "docs/configuration.md disagrees with config/defaults.toml; regenerate it with \
             `RPYTEST_BLESS=1 cargo test --release --bin rpytest configuration_reference`"
        );
    }

    fn project(text: &str) -> Result<Settings, UsageError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), text).unwrap();
        Settings::load(dir.path())
    }

    #[test]
    fn defaults_apply_without_a_section() {
        let s = project("[project]\nname = 'x'\n").unwrap();
        assert_eq!(s.default_workers, WorkerCount::Exactly(1));
        assert_eq!(s.worker_start, WorkerStart::Fork);
    }

    #[test]
    fn reads_default_workers_as_number_or_auto() {
        assert_eq!(project("[tool.rpytest]\ndefault_workers = 3\n").unwrap().default_workers, WorkerCount::Exactly(3));
        assert_eq!(project("[tool.rpytest]\ndefault_workers = \"auto\"\n").unwrap().default_workers, WorkerCount::Auto);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_and_key() {
        let err = project("[tool.rpytest]\nworkers = 3\n").unwrap_err().to_string();
        assert!(err.contains("pyproject.toml") && err.contains("workers"), "{err}");
        let err = project("[tool.rpytest]\ndefault_workers = \"many\"\n").unwrap_err().to_string();
        assert!(err.contains("default_workers") && err.contains("auto"), "{err}");
        let err = project("[tool.rpytest\n").unwrap_err().to_string();
        assert!(err.contains("invalid TOML"), "{err}");
    }

    #[test]
    fn environment_overrides_the_project_file() {
        let mut s = project("[tool.rpytest]\ndefault_workers = 3\n").unwrap();
        let env = [("RPYTEST_DEFAULT_WORKERS".to_string(), "5".to_string()), ("HOME".into(), "/x".into())];
        s.apply_env(env).unwrap();
        assert_eq!(s.default_workers, WorkerCount::Exactly(5));
        s.apply_env([("RPYTEST_WORKER_START".to_string(), "spawn".to_string())]).unwrap();
        assert_eq!(s.worker_start, WorkerStart::Spawn);
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let mut s = project("").unwrap();
        let err = s.apply_env([("RPYTEST_WORKER_START".to_string(), "clone".to_string())]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("RPYTEST_WORKER_START") && text.contains("fork"), "{text}");
        // Variables rpytest sets for its own processes are not settings.
        s.apply_env([("RPYTEST_SOCKET".to_string(), "/tmp/x".to_string())]).unwrap();
    }

    #[test]
    fn retries_from_file_and_environment() {
        assert_eq!(project("").unwrap().retries, 0);
        let mut s = project("[tool.rpytest]\nretries = 2\n").unwrap();
        assert_eq!(s.retries, 2);
        s.apply_env([("RPYTEST_RETRIES".to_string(), "3".to_string())]).unwrap();
        assert_eq!(s.retries, 3);
        let err = project("[tool.rpytest]\nretries = -1\n").unwrap_err().to_string();
        assert!(err.contains("retries") && err.contains(">= 0"), "{err}");
        assert!(s.apply_env([("RPYTEST_RETRIES".to_string(), "many".to_string())]).is_err());
    }

    #[test]
    fn timeout_from_file_and_environment() {
        assert_eq!(project("").unwrap().timeout, Some(0.0));
        let mut s = project("[tool.rpytest]\ntimeout = 2.5\n").unwrap();
        assert_eq!(s.timeout, Some(2.5));
        s.apply_env([("RPYTEST_TIMEOUT".to_string(), "7".to_string())]).unwrap();
        assert_eq!(s.timeout, Some(7.0));
        assert_eq!(project("[tool.rpytest]\ntimeout = 30\n").unwrap().timeout, Some(30.0));
        let err = project("[tool.rpytest]\ntimeout = -1\n").unwrap_err().to_string();
        assert!(err.contains("timeout") && err.contains(">= 0"), "{err}");
        assert!(s.apply_env([("RPYTEST_TIMEOUT".to_string(), "soon".to_string())]).is_err());
    }

    #[test]
    fn shared_session_fixtures_from_file_and_environment() {
        let mut s = project("[tool.rpytest]\nshared_session_fixtures = [\"database\", \"big_dataset\"]\n").unwrap();
        assert_eq!(s.shared_session_fixtures, ["database", "big_dataset"]);
        s.apply_env([("RPYTEST_SHARED_SESSION_FIXTURES".to_string(), "server, cache".to_string())]).unwrap();
        assert_eq!(s.shared_session_fixtures, ["server", "cache"]);
        let err = project("[tool.rpytest]\nshared_session_fixtures = \"database\"\n").unwrap_err().to_string();
        assert!(err.contains("expected a list of fixture names"), "{err}");
        let err = project("[tool.rpytest]\nshared_session_fixtures = [\"not-a-name\"]\n").unwrap_err().to_string();
        assert!(err.contains("'not-a-name' is not a fixture name"), "{err}");
        assert!(project("").unwrap().shared_session_fixtures.is_empty());
    }

    #[test]
    fn daemon_settings() {
        let s = project("[tool.rpytest]\ndaemon = \"auto\"\ndaemon_idle_timeout = 60\n").unwrap();
        assert_eq!((s.daemon, s.daemon_idle_timeout), (DaemonMode::Auto, 60));
        assert_eq!(project("").unwrap().daemon, DaemonMode::Use);
        let err = project("[tool.rpytest]\ndaemon = \"always\"\n").unwrap_err().to_string();
        assert!(err.contains("daemon") && err.contains("auto"), "{err}");
    }

    #[test]
    fn worker_count_parsing() {
        assert_eq!(WorkerCount::parse("0"), Ok(WorkerCount::Exactly(1)));
        assert!(WorkerCount::parse("abc").is_err());
        assert_eq!(WorkerCount::parse("4"), Ok(WorkerCount::Exactly(4)));
        assert!(WorkerCount::Auto.resolve(&MemoryLimits { max_memory: None, worker_memory: 256 << 20 }) >= 1);
    }

    #[test]
    fn maxprocesses_caps_auto_only() {
        let limits = MemoryLimits { max_memory: None, worker_memory: 256 << 20 };
        assert_eq!(WorkerCount::Auto.resolve_capped(Some(1), &limits), 1);
        assert_eq!(WorkerCount::Exactly(3).resolve_capped(Some(1), &limits), 3);
        assert_eq!(WorkerCount::Auto.resolve_capped(None, &limits), WorkerCount::Auto.resolve(&limits));
    }

    #[test]
    fn auto_fits_the_memory_budget() {
        let limits = MemoryLimits { max_memory: Some(1000 << 20), worker_memory: 300 << 20 };
        let budget = limits.budget();
        assert!(budget.explicit);
        assert_eq!(budget.workers_that_fit(300 << 20), 3);
        assert_eq!(budget.workers_that_fit(2000 << 20), 1, "at least one");
        assert_eq!(WorkerCount::Auto.resolve(&limits), 3.min(std::thread::available_parallelism().unwrap().get()));
        assert_eq!(WorkerCount::Exactly(4).resolve(&limits), 4, "an explicit -n is capped later, from history");
    }

    #[test]
    fn the_default_budget_keeps_a_reserve() {
        assert_eq!(less_reserve(10 << 30), 9 << 30);
        assert_eq!(less_reserve(512 << 20), 384 << 20);
        assert_eq!(less_reserve(64 << 20), 1, "never zero");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("1000M"), Ok(1000 << 20));
        assert_eq!(parse_memory("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("2kb"), Ok(2048));
        assert_eq!(parse_memory("4096"), Ok(4096));
        for bad in ["", "M", "lots", "-1G", "0", "10X"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_max_memory("available"), Ok(None));
        let mut s = Settings::from_toml(DEFAULTS, Path::new("d"), None).unwrap();
        assert_eq!((s.max_memory, s.worker_memory), (None, 256 << 20));
        s.set("max_memory", "2G").unwrap();
        assert_eq!(s.max_memory, Some(2 << 30));
        assert!(s.set("worker_memory", "big").unwrap_err().contains("worker_memory: invalid size 'big'"));
    }
}
