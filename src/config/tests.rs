//! Tests of the settings: the file, the environment, the values' text
//! forms, the worker count and memory budget, and the generated reference.

use super::reference::{documented_settings, reference};
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
         `RPYTEST_BLESS=1 cargo test --release --lib configuration_reference`"
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

fn os(name: &str, value: &str) -> (std::ffi::OsString, std::ffi::OsString) {
    (name.into(), value.into())
}

#[test]
fn a_variable_that_is_not_utf8_is_passed_over_unless_it_is_ours() {
    use std::os::unix::ffi::OsStringExt;
    let bad = || std::ffi::OsString::from_vec(vec![0xff, b'x']);
    let mut s = project("").unwrap();
    s.apply_env([("BADVAR".into(), bad()), (bad(), "1".into()), ("OLDPWD".into(), bad())]).unwrap();
    let err = s.apply_env([("RPYTEST_RETRIES".into(), bad())]).unwrap_err().to_string();
    assert!(err.contains("RPYTEST_RETRIES") && err.contains("UTF-8"), "{err}");
}

#[test]
fn environment_overrides_the_project_file() {
    let mut s = project("[tool.rpytest]\ndefault_workers = 3\n").unwrap();
    let env = [os("RPYTEST_DEFAULT_WORKERS", "5"), os("HOME", "/x")];
    s.apply_env(env).unwrap();
    assert_eq!(s.default_workers, WorkerCount::Exactly(5));
    s.apply_env([os("RPYTEST_WORKER_START", "spawn")]).unwrap();
    assert_eq!(s.worker_start, WorkerStart::Spawn);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let mut s = project("").unwrap();
    let err = s.apply_env([os("RPYTEST_WORKER_START", "clone")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("RPYTEST_WORKER_START") && text.contains("fork"), "{text}");
    // Variables rpytest sets for its own processes are not settings.
    s.apply_env([os("RPYTEST_SOCKET", "/tmp/x")]).unwrap();
}

#[test]
fn retries_from_file_and_environment() {
    assert_eq!(project("").unwrap().retries, 0);
    let mut s = project("[tool.rpytest]\nretries = 2\n").unwrap();
    assert_eq!(s.retries, 2);
    s.apply_env([os("RPYTEST_RETRIES", "3")]).unwrap();
    assert_eq!(s.retries, 3);
    let err = project("[tool.rpytest]\nretries = -1\n").unwrap_err().to_string();
    assert!(err.contains("retries") && err.contains(">= 0"), "{err}");
    assert!(s.apply_env([os("RPYTEST_RETRIES", "many")]).is_err());
}

#[test]
fn timeout_from_file_and_environment() {
    assert_eq!(project("").unwrap().timeout, Some(0.0));
    let mut s = project("[tool.rpytest]\ntimeout = 2.5\n").unwrap();
    assert_eq!(s.timeout, Some(2.5));
    s.apply_env([os("RPYTEST_TIMEOUT", "7")]).unwrap();
    assert_eq!(s.timeout, Some(7.0));
    assert_eq!(project("[tool.rpytest]\ntimeout = 30\n").unwrap().timeout, Some(30.0));
    let err = project("[tool.rpytest]\ntimeout = -1\n").unwrap_err().to_string();
    assert!(err.contains("timeout") && err.contains(">= 0"), "{err}");
    assert!(s.apply_env([os("RPYTEST_TIMEOUT", "soon")]).is_err());
}

#[test]
fn shared_session_fixtures_from_file_and_environment() {
    let mut s = project("[tool.rpytest]\nshared_session_fixtures = [\"database\", \"big_dataset\"]\n").unwrap();
    assert_eq!(s.shared_session_fixtures, ["database", "big_dataset"]);
    s.apply_env([os("RPYTEST_SHARED_SESSION_FIXTURES", "server, cache")]).unwrap();
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

#[test]
fn daemon_max_memory_takes_bytes_or_a_size_with_a_unit() {
    assert_eq!(parse_daemon_max_memory("auto"), Ok(None));
    assert_eq!(parse_daemon_max_memory("512MiB"), Ok(Some(512 << 20)));
    assert_eq!(parse_daemon_max_memory("2GiB"), Ok(Some(2 << 30)));
    assert_eq!(parse_daemon_max_memory("800MB"), Ok(Some(800 << 20)));
    assert_eq!(parse_daemon_max_memory("1048576"), Ok(Some(1 << 20)));
    let s = project("[tool.rpytest]\ndaemon_max_memory = 1048576\n").unwrap();
    assert_eq!(s.daemon_max_memory, Some(1 << 20));
    let s = project("[tool.rpytest]\ndaemon_max_memory = \"2GiB\"\n").unwrap();
    assert_eq!(s.daemon_max_memory, Some(2 << 30));
    assert_eq!(project("[project]\nname = 'x'\n").unwrap().daemon_max_memory, None, "default: auto");
    let mut s = project("[tool.rpytest]\ndaemon_max_memory = \"2GiB\"\n").unwrap();
    s.apply_env([os("RPYTEST_DAEMON_MAX_MEMORY", "300MiB")]).unwrap();
    assert_eq!(s.daemon_max_memory, Some(300 << 20), "the environment overrides the file");
}

#[test]
fn a_bad_daemon_max_memory_names_the_setting_and_an_example() {
    for bad in ["lots", "0", "-1GiB", "12 parsecs"] {
        let toml = format!("[tool.rpytest]\ndaemon_max_memory = \"{bad}\"\n");
        let err = project(&toml).unwrap_err().to_string();
        assert!(err.contains("daemon_max_memory") && err.contains("512MiB") && err.contains(bad), "{err}");
    }
    let err = project("[tool.rpytest]\ndaemon_max_memory = true\n").unwrap_err().to_string();
    assert!(err.contains("daemon_max_memory: invalid size 'true'"), "{err}");
    let mut s = project("[project]\nname = 'x'\n").unwrap();
    let err = s.apply_env([os("RPYTEST_DAEMON_MAX_MEMORY", "much")]).unwrap_err().to_string();
    assert!(err.contains("RPYTEST_DAEMON_MAX_MEMORY") && err.contains("512MiB"), "{err}");
}

#[test]
fn parallel_collection_is_auto_always_or_off() {
    let mut s = project("[tool.rpytest]\nparallel_collection = \"off\"\n").unwrap();
    assert_eq!(s.parallel_collection, ParallelCollection::Off);
    s.apply_env([os("RPYTEST_PARALLEL_COLLECTION", "always")]).unwrap();
    assert_eq!(s.parallel_collection, ParallelCollection::Always);
    assert_eq!(project("").unwrap().parallel_collection, ParallelCollection::Auto);
    let err = project("[tool.rpytest]\nparallel_collection = \"yes\"\n").unwrap_err().to_string();
    assert!(err.contains("parallel_collection") && err.contains("\"always\""), "{err}");
}
