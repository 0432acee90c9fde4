//! A test that dumps what the code under test can see of its own process
//! (`__main__`, `sys.argv`, signal handlers, stdin, umask, the environment's
//! `RPYTEST*` variables, ...) to the JSON file named by `PROBE_OUT`, and the
//! field-by-field comparison of two such dumps: one under
//! `python -m pytest`, one under rpytest.

use std::collections::BTreeMap;
use std::path::Path;

pub type Probe = BTreeMap<String, serde_json::Value>;

/// The probe, as a test module.
pub const PROBE_TEST: &str = r#"
import json, os, signal, sys


def attempt(call):
    try:
        return call()
    except Exception as e:
        return type(e).__name__


def handler(h):
    return getattr(h, "__qualname__", None) or str(h)


def inheritable(fd):
    return fd > 2 and attempt(lambda: os.get_inheritable(fd)) is True


def test_probe():
    main = sys.modules["__main__"]
    umask = os.umask(0o22)
    os.umask(umask)
    stdin = sys.stdin
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    fields = {
        "main_name": main.__name__,
        "main_file": getattr(main, "__file__", None),
        "main_spec_name": getattr(getattr(main, "__spec__", None), "name", None),
        "main_package": getattr(main, "__package__", None),
        "main_globals": sorted(name for name in vars(main) if not name.startswith("__")),
        "argv": sys.argv,
        # [0] is the interpreter's path as the command line spelled it
        "orig_argv": getattr(sys, "orig_argv", [None])[1:],
        "sys_path": sys.path,
        "signals": {s.name: handler(signal.getsignal(s)) for s in signal.Signals
                    if s not in (signal.SIGKILL, signal.SIGSTOP)},
        "blocked_signals": sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "stdin": {"type": type(stdin).__name__, "isatty": attempt(stdin.isatty),
                  "fileno": attempt(stdin.fileno), "closed": stdin.closed},
        "fd0": os.readlink("/proc/self/fd/0"),
        "umask": oct(umask),
        "rpytest_env": {k: v for k, v in os.environ.items() if k.startswith("RPYTEST")},
        "xdist_env": {k: v for k, v in os.environ.items() if k.startswith("PYTEST_XDIST")},
        "inheritable_fds": sorted(fd for fd in fds if inheritable(fd)),
        "stdout_line_buffering": getattr(sys.stdout, "line_buffering", None),
        "cwd": os.getcwd(),
    }
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump(fields, f)
"#;

/// The dump the probe wrote (panics, naming `what`, when there is none).
pub fn read_probe(path: &Path, what: &str) -> Probe {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{what}: no probe output: {e}"));
    std::fs::remove_file(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: unreadable probe output {e}: {text}"))
}

/// Every field equal, except those in `allowed` (field, reason), which must
/// exist in both.
pub fn assert_probes_match(pytest: &Probe, other: &Probe, allowed: &[(&str, &str)], what: &str) {
    assert_eq!(pytest.keys().collect::<Vec<_>>(), other.keys().collect::<Vec<_>>(), "{what}: probe fields");
    let mut differences = Vec::new();
    for (field, expected) in pytest {
        if allowed.iter().any(|(name, _)| name == field) {
            continue;
        }
        if other[field] != *expected {
            differences.push(format!("  {field}:\n    pytest:  {expected}\n    rpytest: {}", other[field]));
        }
    }
    assert!(differences.is_empty(), "{what}: the code under test sees a difference\n{}", differences.join("\n"));
}

/// The identity a worker gets from rpytest (as from `pytest -n`): the one
/// allowed difference of every run.
pub const XDIST_IDENTITY: (&str, &str) =
    ("xdist_env", "workers get pytest-xdist's PYTEST_XDIST_* variables, as under `pytest -n`");

/// Checks the xdist variables a worker of `count` sees.
pub fn assert_xdist_identity(probe: &Probe, count: usize) {
    let env = &probe["xdist_env"];
    let worker = env["PYTEST_XDIST_WORKER"].as_str().unwrap_or_default();
    assert!(worker.starts_with("gw") && worker[2..].parse::<usize>().is_ok_and(|n| n < count), "{env}");
    assert_eq!(env["PYTEST_XDIST_WORKER_COUNT"], count.to_string(), "{env}");
    assert!(env["PYTEST_XDIST_TESTRUNUID"].as_str().is_some_and(|uid| uid.len() >= 16), "{env}");
}
