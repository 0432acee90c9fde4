//! Shared harness for rpytest's integration tests.
//!
//! rpytest's first invariant is "same outcomes as `python -m pytest` with the
//! same arguments, test by test". Every comparison test in this directory
//! therefore does the same thing: write a small pytest suite into a fresh
//! temporary directory, run plain pytest on it and run rpytest on it, parse
//! both outputs into per-test outcomes plus the final counts line, and
//! compare. This module holds that machinery so the test files stay short.
//!
//! Python comes from `RPYTEST_TEST_PYTHON`, else `<repo>/.venv/bin/python`.
//! If neither exists (or it lacks pytest) every test fails loudly with a
//! message saying how to create the venv; nothing is silently skipped.

#![allow(dead_code)]

pub mod daemon;
pub mod probe;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The outcome words rpytest and `pytest -v` print after a node id.
pub const WORDS: [&str; 6] = ["PASSED", "FAILED", "SKIPPED", "XFAIL", "XPASS", "ERROR"];

/// Default limit for one child process (pytest or rpytest). A hang is a bug;
/// the test fails with whatever output arrived before the kill.
/// Override with `RPYTEST_TEST_TIMEOUT` (seconds).
pub fn timeout() -> Duration {
    let secs = std::env::var("RPYTEST_TEST_TIMEOUT").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(90);
    Duration::from_secs(secs)
}

const VENV_HELP: &str = "\
rpytest integration tests need a Python with pytest (pytest-xdist and msgpack
are optional: rpytest works without them, and CI runs the battery both ways).
Either point RPYTEST_TEST_PYTHON at one:
    RPYTEST_TEST_PYTHON=/path/to/venv/bin/python cargo test
or create the repository's venv (what CI does):
    python3 -m venv .venv && .venv/bin/pip install pytest pytest-xdist msgpack";

/// Path of the Python interpreter the tests use. Panics (fails the test) with
/// instructions when there is none or it cannot import pytest.
pub fn python() -> PathBuf {
    static PY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PY.get_or_init(find_python).clone().unwrap_or_else(|e| panic!("{e}"))
}

fn find_python() -> Result<PathBuf, String> {
    let (path, source) = match std::env::var_os("RPYTEST_TEST_PYTHON") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "RPYTEST_TEST_PYTHON"),
        _ => (Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"), "the default <repo>/.venv/bin/python"),
    };
    if !path.exists() {
        return Err(format!("test Python {} (from {source}) does not exist.\n{VENV_HELP}", path.display()));
    }
    let out = Command::new(&path)
        .args(["-c", "import pytest"])
        .output()
        .map_err(|e| format!("cannot run test Python {}: {e}\n{VENV_HELP}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "test Python {} cannot import pytest:\n{}\n{VENV_HELP}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(path)
}

/// Whether the test Python has pytest-xdist; tests that compare with
/// `pytest -n` or depend on xdist's own plugin skip themselves without it.
pub fn has_xdist() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| Command::new(python()).args(["-c", "import xdist"]).output().is_ok_and(|o| o.status.success()))
}

/// A test that skips itself at run time says why on stderr and, when
/// `RPYTEST_SKIP_LOG` names a file, appends the reason there: the matrix
/// scripts count and print them, so a skip is never a silent "ok".
pub fn note_skip(why: &str) {
    eprintln!("skipped: {why}");
    if let Some(path) = std::env::var_os("RPYTEST_SKIP_LOG") {
        use std::io::Write;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        let _ = file.and_then(|mut f| writeln!(f, "{why}"));
    }
}

/// Whether the test Python can import `module` (a plugin such as
/// `pytest_randomly`, which the main venv lacks and the plugin stage has).
pub fn has_module(module: &str) -> bool {
    Command::new(python()).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
}

/// Skips (returns true, with a note) when the test Python lacks `module`.
pub fn skip_without_module(module: &str, what: &str) -> bool {
    if has_module(module) {
        return false;
    }
    note_skip(&format!("{what} needs {module}, which the test Python lacks"));
    true
}

/// Skips (returns true, with a note) when the test Python lacks pytest-xdist.
pub fn skip_without_xdist(what: &str) -> bool {
    if has_xdist() {
        return false;
    }
    note_skip(&format!("{what} needs pytest-xdist, which the test Python lacks"));
    true
}

/// The test Python's pytest version as (major, minor), for the few checks
/// whose expected output or feature depends on it (the project supports
/// pytest 7.4, 8.x and 9.x; `scripts/matrix.sh` runs the battery on each).
pub fn pytest_version() -> (u32, u32) {
    static VERSION: OnceLock<(u32, u32)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new(python())
            .args(["-c", "import pytest; print(pytest.__version__)"])
            .output()
            .expect("run the test Python");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text
            .trim()
            .split('.')
            .map(|p| p.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    })
}

/// Skip (return true, with a note on stderr) when the test Python's pytest
/// is older than `min`: for tests of features that pytest version lacks.
pub fn skip_unless_pytest(min: (u32, u32), what: &str) -> bool {
    let have = pytest_version();
    if have < min {
        note_skip(&format!("{what} needs pytest>={}.{}, the test Python has {}.{}", min.0, min.1, have.0, have.1));
        return true;
    }
    false
}

/// Whether the test Python's pytest (with its plugins) has this command-line
/// option, from `python -m pytest --help`: options come and go between the
/// pytest versions the project supports (`--xfail-tb` is 8+, `--max-warnings` 9+).
pub fn pytest_has_option(flag: &str) -> bool {
    static HELP: OnceLock<String> = OnceLock::new();
    let help = HELP.get_or_init(|| {
        let out = Command::new(python())
            .args(["-m", "pytest", "-p", "no:cacheprovider", "--help"])
            .env("COLUMNS", "200")
            .output()
            .expect("run the test Python");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '=').any(|word| word == flag)
}

/// Skip (return true, with a note on stderr) when the test Python's pytest
/// lacks `flag`: for tests of options that pytest version does not have.
pub fn skip_without_option(flag: &str) -> bool {
    if !pytest_has_option(flag) {
        let (major, minor) = pytest_version();
        note_skip(&format!("pytest {major}.{minor} has no {flag} option"));
        return true;
    }
    false
}

/// Path of the rpytest binary under test: the one cargo built, or
/// `RPYTEST_TEST_BIN` when set. The override is for checking that a new
/// test fails on an older build (`RPYTEST_TEST_BIN=/path/to/old/rpytest
/// cargo test --test X`); CI never sets it.
pub fn rpytest_bin() -> PathBuf {
    match std::env::var_os("RPYTEST_TEST_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rpytest")),
    }
}

/// Remove the common leading indentation of all non-blank lines and a single
/// leading newline, like Python's `textwrap.dedent` on a `"""\` literal.
pub fn dedent(s: &str) -> String {
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(&line[indent..]);
            out.push('\n');
        }
    }
    out
}

/// A generated pytest suite living in its own temporary directory.
/// A `pytest.ini` with `[pytest]` is added unless the files provide one, so
/// rootdir and confcutdir are the suite directory and nothing above leaks in.
pub struct Suite {
    dir: tempfile::TempDir,
}

impl Suite {
    pub fn new(files: &[(&str, &str)]) -> Suite {
        let dir = tempfile::Builder::new().prefix("rpytest-suite-").tempdir().expect("create suite tempdir");
        let suite = Suite { dir };
        let has_ini =
            files.iter().any(|(p, _)| matches!(*p, "pytest.ini" | "pyproject.toml" | "tox.ini" | "setup.cfg"));
        if !has_ini {
            suite.write("pytest.ini", "[pytest]\n");
        }
        for (path, content) in files {
            suite.write(path, content);
        }
        suite
    }

    /// Write (or overwrite) one file, dedenting its content.
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create suite subdir");
        }
        std::fs::write(&p, dedent(content)).expect("write suite file");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// One finished (or killed) child process, with its output parsed.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub program: String,
    pub args: Vec<String>,
    /// Exit code; -N when killed by signal N; -1000 when unknown.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// The child exited but something it started still held stdout/stderr
    /// open several seconds later (leaked worker processes).
    pub pipes_left_open: bool,
    pub elapsed: Duration,
    /// nodeid -> outcome words in the order the phases were reported.
    pub outcomes: BTreeMap<String, Vec<String>>,
    /// nodeid -> worker index from rpytest's `-v` `[worker K]` prefix.
    pub workers: BTreeMap<String, BTreeSet<usize>>,
    /// The final counts line with `=` decoration and ` in X.XXs` removed,
    /// e.g. `1 failed, 9 passed, 1 skipped`.
    pub final_line: Option<String>,
}

impl RunResult {
    /// Both streams, labelled, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "---- {} {} ----\nexit code: {}{}{}  ({:.2}s)\n---- stdout ----\n{}\n---- stderr ----\n{}\n",
            self.program,
            self.args.join(" "),
            self.code,
            if self.timed_out { " (KILLED AFTER TIMEOUT)" } else { "" },
            if self.pipes_left_open { " (PIPES LEFT OPEN BY CHILDREN)" } else { "" },
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }

    /// Words reported for one node id (empty if none).
    pub fn words(&self, nodeid: &str) -> Vec<String> {
        self.outcomes.get(nodeid).cloned().unwrap_or_default()
    }

    /// The counts of the final line as word -> number (`passed` -> 9).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.final_line.as_deref().map(parse_counts).unwrap_or_default()
    }
}

/// Run `program args` in `cwd` with a hygienic environment and a timeout.
pub fn run_command(program: &Path, args: &[String], cwd: &Path, extra_env: &[(&str, &str)]) -> RunResult {
    run_command_timeout(program, args, cwd, extra_env, timeout())
}

/// `run_command` with an explicit time limit.
pub fn run_command_timeout(
    program: &Path,
    args: &[String],
    cwd: &Path,
    extra_env: &[(&str, &str)],
    limit: Duration,
) -> RunResult {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    for var in [
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PY_COLORS",
        "FORCE_COLOR",
        "NO_COLOR",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_CURRENT_TEST",
        "PYTHONPATH",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("COLUMNS", "80").env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONHASHSEED", "0");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }

    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let out_buf = Arc::new(Mutex::new(Vec::new()));
    let err_buf = Arc::new(Mutex::new(Vec::new()));
    for (stream, buf) in [
        (Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, out_buf.clone()),
        (Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>, err_buf.clone()),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut stream = stream;
            let mut chunk = [0u8; 8192];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tx.send(());
        });
    }
    drop(tx);

    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            break Some(st);
        }
        if start.elapsed() > limit {
            timed_out = true;
            kill_group(pid);
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();

    // Readers finish when every holder of the pipes is gone. Give leaked
    // grandchildren a grace period, then kill the group and move on.
    let mut pipes_left_open = false;
    let grace = Instant::now() + Duration::from_secs(10);
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            pipes_left_open = true;
            kill_group(pid);
            break;
        }
    }

    use std::os::unix::process::ExitStatusExt;
    let code = match status {
        Some(st) => st.code().unwrap_or_else(|| -st.signal().unwrap_or(1000)),
        None => -1000,
    };
    let stdout = String::from_utf8_lossy(&out_buf.lock().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_buf.lock().unwrap()).into_owned();
    let (outcomes, workers) = parse_outcomes(&stdout);
    let final_line = parse_final_line(&stdout);
    RunResult {
        program: program.display().to_string(),
        args: args.to_vec(),
        code,
        stdout,
        stderr,
        timed_out,
        pipes_left_open,
        elapsed,
        outcomes,
        workers,
        final_line,
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `python -m pytest -p no:cacheprovider <args>` in the suite directory.
/// Callers add `-v` when they want per-test outcomes parsed.
pub fn run_pytest(suite: &Suite, args: &[&str]) -> RunResult {
    let mut full = strings(&["-m", "pytest", "-p", "no:cacheprovider"]);
    full.extend(strings(args));
    run_command(&python(), &full, suite.path(), &[])
}

/// `rpytest --python <py> --color=no -p no:cacheprovider <args>` in the suite
/// directory.
pub fn run_rpytest(suite: &Suite, args: &[&str]) -> RunResult {
    run_rpytest_env(suite, args, &[])
}

pub fn run_rpytest_env(suite: &Suite, args: &[&str], env: &[(&str, &str)]) -> RunResult {
    let py = python();
    let mut full = vec!["--python".to_string(), py.display().to_string()];
    full.extend(strings(&["--color=no", "-p", "no:cacheprovider"]));
    full.extend(strings(args));
    run_command(&rpytest_bin(), &full, suite.path(), env)
}

/// Run rpytest with exactly these arguments (no `--python`, no extras).
pub fn run_rpytest_raw(cwd: &Path, args: &[&str]) -> RunResult {
    run_command(&rpytest_bin(), &strings(args), cwd, &[])
}

/// Strip ANSI escape sequences (in case colour sneaks through).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c2 in chars.by_ref() {
                    if c2.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn is_section_rule(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("==") || t.starts_with("__") || t.starts_with("!!")
}

/// Parse per-test outcome lines from the progress region of the output
/// (after the `test session starts` rule, before the next rule). Accepts
/// `nodeid WORD`, `nodeid WORD  [ 10%]`, `nodeid WORD (reason)` and the
/// `[worker K] nodeid WORD` form. Returns outcomes and worker indices.
pub fn parse_outcomes(stdout: &str) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, BTreeSet<usize>>) {
    let text = strip_ansi(stdout);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.contains("test session starts")).map(|i| i + 1).unwrap_or(0);
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut workers: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for line in &lines[start..] {
        if is_section_rule(line) {
            break;
        }
        if let Some((worker, nodeid, word)) = parse_outcome_line(line) {
            outcomes.entry(nodeid.clone()).or_default().push(word);
            if let Some(w) = worker {
                workers.entry(nodeid).or_default().insert(w);
            }
        }
    }
    (outcomes, workers)
}

/// Parse one `[worker K] nodeid WORD ...` / `nodeid WORD ...` line.
pub fn parse_outcome_line(line: &str) -> Option<(Option<usize>, String, String)> {
    let mut rest = line.trim_end();
    let mut worker = None;
    if let Some(r) = rest.strip_prefix("[worker ") {
        let close = r.find("] ")?;
        worker = Some(r[..close].trim().parse::<usize>().ok()?);
        rest = &r[close + 2..];
    } else if rest.starts_with("[gw") {
        // xdist's own `-v` prefix, in case someone compares against xdist.
        let close = rest.find("] ")?;
        rest = &rest[close + 2..];
    }
    if rest.starts_with(' ') || WORDS.iter().any(|w| rest.starts_with(&format!("{w} "))) {
        return None; // indented text or a short-summary line
    }
    // Earliest " WORD" (followed by end or a space) with a node id before it.
    let mut best: Option<(usize, &str)> = None;
    for w in WORDS {
        let pat = format!(" {w}");
        let mut from = 0;
        while let Some(i) = rest[from..].find(&pat) {
            let at = from + i;
            let after = &rest[at + pat.len()..];
            if (after.is_empty() || after.starts_with(' ')) && rest[..at].contains("::") {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, w));
                }
                break;
            }
            from = at + 1;
        }
    }
    let (at, word) = best?;
    Some((worker, rest[..at].to_string(), word.to_string()))
}

/// Remove ` in 0.12s` / ` in 65.10s (0:01:05)` and the `=` rule decoration.
pub fn normalize_final_line(line: &str) -> String {
    let mut s = strip_ansi(line).trim().trim_matches('=').trim().to_string();
    // find the last " in <digits>[.<digits>]s"
    let bytes = s.as_bytes();
    let mut cut: Option<(usize, usize)> = None;
    let mut i = 0;
    while let Some(off) = s[i..].find(" in ") {
        let at = i + off;
        let mut j = at + 4;
        let digits_start = j;
        while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
            j += 1;
        }
        if j > digits_start && j < bytes.len() && bytes[j] == b's' {
            let mut end = j + 1;
            let tail = &s[end..];
            if tail.starts_with(" (") {
                if let Some(close) = tail.find(')') {
                    end += close + 1;
                }
            }
            cut = Some((at, end));
        }
        i = at + 1;
    }
    if let Some((a, b)) = cut {
        s.replace_range(a..b, "");
    }
    s.trim().to_string()
}

/// The last line that looks like pytest's final summary (`... in X.XXs`).
pub fn parse_final_line(stdout: &str) -> Option<String> {
    let text = strip_ansi(stdout);
    text.lines().rev().find(|l| is_final_line(l)).map(normalize_final_line)
}

/// Does this line look like pytest's final `... in X.XXs` line?
pub fn is_final_line(l: &str) -> bool {
    let t = strip_ansi(l);
    let t = t.trim_end();
    let shaped =
        t.starts_with('=') || t.starts_with("no tests ran") || t.chars().next().is_some_and(|c| c.is_ascii_digit());
    let n = normalize_final_line(t);
    shaped && !n.is_empty() && n.len() < t.trim_matches('=').trim().len()
}

/// `1 failed, 9 passed, 2 errors` -> {"failed": 1, "passed": 9, "error": 2}
/// (`errors`/`warnings` are singularized so lookups need one key).
pub fn parse_counts(final_line: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for part in final_line.split(", ") {
        let mut it = part.trim().splitn(2, ' ');
        if let (Some(n), Some(word)) = (it.next(), it.next()) {
            if let Ok(n) = n.parse::<u64>() {
                let word = match word {
                    "errors" => "error",
                    "warnings" => "warning",
                    w => w,
                };
                m.insert(word.to_string(), n);
            }
        }
    }
    m
}

/// Text of the section whose rule contains `name` (e.g. `FAILURES`), up to
/// the next `=` rule. None when the section is absent.
pub fn section(stdout: &str, name: &str) -> Option<String> {
    let text = strip_ansi(stdout);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| {
        let t = l.trim();
        t.starts_with('=') && t.trim_matches('=').trim() == name
    })?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with("==") || is_final_line(l))
        .map(|i| start + 1 + i)
        .unwrap_or(lines.len());
    Some(lines[start + 1..end].join("\n"))
}

/// Split a FAILURES/ERRORS section into per-test blocks (each starting with
/// a `____ name ____` rule) and sort them, so order of completion does not
/// matter. With `--tb=line` there are no rules: every line is its own block.
pub fn section_blocks(section: &str) -> Vec<String> {
    let section = &mask_addresses(section);
    let mut blocks: Vec<String> = Vec::new();
    let has_rules = section.lines().any(|l| l.trim_start().starts_with("___"));
    if !has_rules {
        let mut v: Vec<String> = section.lines().map(|s| s.to_string()).collect();
        v.sort();
        return v;
    }
    for line in section.lines() {
        if line.trim_start().starts_with("___") || blocks.is_empty() {
            blocks.push(String::new());
        }
        let b = blocks.last_mut().unwrap();
        b.push_str(line.trim_end());
        b.push('\n');
    }
    blocks.sort();
    blocks
}

/// Replace object addresses (`0x7f883dd0fbd0`) with `0xADDR`: they differ
/// between any two processes, so they cannot be compared.
pub fn mask_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let n = after.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        if n >= 6 {
            out.push_str("0xADDR");
        } else {
            out.push_str(&rest[i..i + 2 + n]);
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// Lines of the `short test summary info` section, sorted.
pub fn summary_lines(stdout: &str) -> Vec<String> {
    let mut v: Vec<String> = section(stdout, "short test summary info")
        .map(|s| s.lines().map(|l| l.trim_end().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The sorted progress letters of a `-q` run (`..F.sxXE`).
pub fn progress_letters(stdout: &str) -> String {
    let text = strip_ansi(stdout);
    let mut letters: Vec<char> = Vec::new();
    for line in text.lines() {
        if is_section_rule(line) {
            break;
        }
        let body = match line.find('[') {
            Some(i) if line.trim_end().ends_with("%]") => &line[..i],
            _ => line,
        };
        let body = body.trim_end();
        if !body.is_empty() && body.chars().all(|c| ".FsxXE".contains(c)) {
            letters.extend(body.chars());
        }
    }
    letters.sort();
    letters.into_iter().collect()
}

/// Both runs of a comparison.
pub struct Pair {
    pub pytest: RunResult,
    pub rpytest: RunResult,
}

impl Pair {
    pub fn dump(&self) -> String {
        format!("{}\n{}", self.pytest.dump(), self.rpytest.dump())
    }
}

/// Panic with both outputs when `cond` is false.
pub fn check(pair: &Pair, cond: bool, what: &str) {
    if !cond {
        panic!("MISMATCH: {what}\n\n{}", pair.dump());
    }
}

/// rpytest finished on its own and released its output pipes.
pub fn assert_clean_exit(r: &RunResult) {
    assert!(!r.timed_out, "rpytest hung and was killed after {:?}\n{}", timeout(), r.dump());
    assert!(!r.pipes_left_open, "rpytest exited but left processes holding its stdout/stderr open\n{}", r.dump());
}

/// Run `pytest -v <args>` and `rpytest -n <workers> <args>` on the suite and
/// require the same per-test outcomes, exit code and final counts line.
pub fn assert_same(suite: &Suite, args: &[&str], workers: &str) -> Pair {
    assert_same_with(suite, args, &["-n", workers])
}

/// Like `assert_same`, with arbitrary rpytest-only arguments.
pub fn assert_same_with(suite: &Suite, args: &[&str], rpytest_only: &[&str]) -> Pair {
    let mut pargs = vec!["-v"];
    pargs.extend_from_slice(args);
    let pytest = run_pytest(suite, &pargs);
    assert!(!pytest.timed_out, "pytest itself hung\n{}", pytest.dump());
    let mut rargs: Vec<&str> = rpytest_only.to_vec();
    rargs.extend_from_slice(args);
    let rpytest = run_rpytest(suite, &rargs);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    pair
}

/// The comparison itself, for callers that ran the two sides themselves.
pub fn assert_pair_same(pair: &Pair) {
    let (p, r) = (&pair.pytest, &pair.rpytest);
    check(pair, !r.timed_out, "rpytest hung and was killed");
    check(pair, !r.pipes_left_open, "rpytest left child processes holding its output open");
    // Two empty maps compare equal: a run where neither tool ran a test
    // proves nothing unless pytest itself says nothing ran.
    let line = p.final_line.as_deref().unwrap_or("");
    let nothing_ran = p.code != 0 || line.contains("no tests ran") || line.contains("deselected");
    check(pair, !p.outcomes.is_empty() || nothing_ran, "pytest reported no test outcomes: the comparison is empty");
    if p.outcomes != r.outcomes {
        let mut diff = String::new();
        let keys: BTreeSet<&String> = p.outcomes.keys().chain(r.outcomes.keys()).collect();
        for k in keys {
            let (a, b) = (p.outcomes.get(k), r.outcomes.get(k));
            if a != b {
                diff.push_str(&format!("  {k}: pytest {a:?} vs rpytest {b:?}\n"));
            }
        }
        panic!("MISMATCH: per-test outcomes differ:\n{diff}\n{}", pair.dump());
    }
    check(pair, p.code == r.code, &format!("exit code: pytest {} vs rpytest {}", p.code, r.code));
    check(
        pair,
        p.final_line == r.final_line,
        &format!("final line: pytest {:?} vs rpytest {:?}", p.final_line, r.final_line),
    );
}

/// One `<testcase>` of a junit file: classname, name, and the sorted names of
/// its outcome children (`failure`, `error`, `skipped`; empty = passed).
pub type JunitCase = (String, String, Vec<String>);

/// Testsuite counters plus the sorted testcases of a junit XML file.
#[derive(Debug, PartialEq, Eq)]
pub struct Junit {
    pub tests: String,
    pub failures: String,
    pub errors: String,
    pub skipped: String,
    pub cases: Vec<JunitCase>,
}

pub fn parse_junit(path: &Path) -> Junit {
    use quick_xml::events::Event;
    let xml =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read junit file {}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().trim_text(true);
    let mut j = Junit {
        tests: String::new(),
        failures: String::new(),
        errors: String::new(),
        skipped: String::new(),
        cases: Vec::new(),
    };
    let mut current: Option<JunitCase> = None;
    loop {
        let ev = reader.read_event().unwrap_or_else(|e| panic!("bad junit XML in {}: {e}\n{xml}", path.display()));
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let mut attrs: BTreeMap<String, String> = BTreeMap::new();
            for a in e.attributes().flatten() {
                attrs.insert(
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    a.unescape_value().map(|v| v.into_owned()).unwrap_or_default(),
                );
            }
            let get = |k: &str| attrs.get(k).cloned().unwrap_or_default();
            match name.as_str() {
                "testsuite" => {
                    j.tests = get("tests");
                    j.failures = get("failures");
                    j.errors = get("errors");
                    j.skipped = get("skipped");
                }
                "testcase" => {
                    let case = (get("classname"), get("name"), Vec::new());
                    if empty {
                        j.cases.push(case);
                    } else {
                        current = Some(case);
                    }
                }
                "failure" | "error" | "skipped" => {
                    if let Some(c) = current.as_mut() {
                        c.2.push(name);
                    }
                }
                _ => {}
            }
        }
        match ev {
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some(mut c) = current.take() {
                    c.2.sort();
                    j.cases.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    j.cases.sort();
    j
}

/// Processes (pid, command line) whose working directory is inside `dir`:
/// the way to find leftover workers of a run in that suite, even if they
/// moved to another process group or session.
pub fn processes_in_dir(dir: &Path) -> Vec<(u32, String)> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return found };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else { continue };
        if cwd.starts_with(&dir) {
            let cmd = std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            // zombies have an empty cmdline and are only waiting for a reap
            if !cmd.trim().is_empty() {
                found.push((pid, cmd));
            }
        }
    }
    found
}

/// Poll until no process runs inside `dir`, up to `limit`. Returns leftovers.
pub fn wait_no_processes_in(dir: &Path, limit: Duration) -> Vec<(u32, String)> {
    let end = Instant::now() + limit;
    loop {
        let left = processes_in_dir(dir);
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line holds `marker`.
pub fn with_marker(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to 2 s for every process holding `marker` to end; those still alive.
pub fn none_left(marker: &str) -> Vec<(u32, String)> {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let left = with_marker(marker);
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
