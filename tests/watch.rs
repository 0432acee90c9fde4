//! `rpytest --watch` as a user drives it: through a pipe (an editor's task
//! runner) with commands on stdin, and on a real pseudo-terminal with
//! single keys. Each test edits a file and reads the rerun and its result,
//! runs the failed and all tests, stops a run with Ctrl-C, quits, and
//! checks that no process of the watch is left: its runs, their Python
//! processes, and the daemon the watch started for them (every test has
//! its own runtime directory, so the watch starts its own).
//!
//! Every wait is for a line to appear, with a generous limit for a busy
//! CI machine; none is a bare sleep standing in for a state.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{daemon::private_dir, python, rpytest_bin, strip_ansi, Suite};

const LIMIT: Duration = Duration::from_secs(90);

/// What a save runs: with `--affected`, the tests it affects (and those
/// that failed last time).
const SAVE_RUN: &str = "running affected tests";
/// test_a fixed by a save: under `--affected` it runs alone.
const SAVE_PASSED: &str = "1 passed";

/// lib.f() returns 1; test_a checks it; test_slow sleeps while slow.flag
/// exists, after writing its pid, so Ctrl-C can meet a run in a test.
fn suite() -> Suite {
    Suite::new(&[
        ("lib.py", "def f():\n    return 1\n"),
        ("test_a.py", "import lib\n\ndef test_a():\n    assert lib.f() == 1\n"),
        (
            "test_slow.py",
            r#"
            import os
            import time

            HERE = os.path.dirname(os.path.abspath(__file__))

            def test_slow():
                if os.path.exists(os.path.join(HERE, "slow.flag")):
                    with open(os.path.join(HERE, "started.pid"), "w") as f:
                        f.write(str(os.getpid()))
                    time.sleep(120)
            "#,
        ),
    ])
}

/// What a process printed so far, read by a thread; and whether its
/// stream has ended (then a line still awaited will never come).
#[derive(Clone, Default)]
struct Output(Arc<Mutex<(Vec<u8>, bool)>>);

impl Output {
    fn collect(&self, mut stream: impl Read + Send + 'static) {
        let buf = self.0.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = stream.read(&mut chunk) {
                buf.lock().unwrap().0.extend_from_slice(&chunk[..n]);
            }
            buf.lock().unwrap().1 = true;
        });
    }

    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.0.lock().unwrap().0))
    }

    fn ended(&self) -> bool {
        self.0.lock().unwrap().1
    }

    /// Waits for `needle` after byte `from` of the text; the offset just past it.
    fn wait_for(&self, needle: &str, from: usize) -> usize {
        let deadline = Instant::now() + LIMIT;
        loop {
            let ended = self.ended();
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|rest| rest.find(needle)) {
                return from + at + needle.len();
            }
            assert!(!ended, "no {needle:?} after offset {from}, and the output has ended:\n{text}");
            assert!(Instant::now() < deadline, "no {needle:?} after offset {from} within {LIMIT:?}; output:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `wait_for` one of the watch's own plain lines.
    fn line(&self, text: &str, from: usize) -> usize {
        self.wait_for(&format!("{PLAIN}{text}"), from)
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

/// Saves as editors do: a temporary file renamed over the old one, so a
/// busy machine cannot split one save into two batches (truncated, then
/// written) and two runs.
fn write(suite: &Suite, rel: &str, content: &str) {
    let temporary = suite.join(&format!("{rel}.saving~"));
    std::fs::write(&temporary, content).unwrap();
    std::fs::rename(&temporary, suite.join(rel)).unwrap();
}

/// Waits for the process the slow test wrote down to be gone.
fn wait_gone(pid_file: &Path) {
    let pid: u32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + LIMIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "the stopped test's process {pid} is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')))
}

/// Waits for the slow test to have started (a fresh pid file).
fn wait_started(suite: &Suite) -> std::path::PathBuf {
    let pid_file = suite.join("started.pid");
    let deadline = Instant::now() + LIMIT;
    while !std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty()) {
        assert!(Instant::now() < deadline, "the slow test did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    pid_file
}

/// `rpytest serve --status` of the daemon in `runtime`.
fn daemon_status(runtime: &tempfile::TempDir) -> String {
    let env = [("RPYTEST_RUNTIME_DIR", runtime.path().to_str().unwrap())];
    common::run_command(&rpytest_bin(), &["serve".into(), "--status".into()], runtime.path(), &env).stdout
}

fn assert_nothing_left(suite: &Suite) {
    let left = common::wait_no_processes_in(suite.path(), Duration::from_secs(30));
    assert!(left.is_empty(), "processes left in the suite after the watch ended: {left:?}");
}

/// The watch through pipes, in its own process group; killed (with what
/// it started) if a test fails before it ends.
struct Piped {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: Output,
    err: Output,
    runtime: tempfile::TempDir,
}

impl Piped {
    fn start(suite: &Suite) -> Piped {
        use std::os::unix::process::CommandExt;
        let runtime = private_dir();
        let mut child = Command::new(rpytest_bin())
            .args(["--watch", "--python", python().to_str().unwrap(), "--color=no", "-q"])
            .current_dir(suite.path())
            .env("RPYTEST_RUNTIME_DIR", runtime.path())
            .env("COLUMNS", "80")
            .env_remove("PYTEST_ADDOPTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let (out, err) = (Output::default(), Output::default());
        out.collect(child.stdout.take().unwrap());
        err.collect(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Piped { child, stdin, out, err, runtime }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn signal(&self, signal: i32) {
        // SAFETY: signalling the watch this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the watch did not end; stderr:\n{}", self.err.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            // SIGTERM lets the watch stop its run and its daemon.
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const PLAIN: &str = "rpytest --watch: ";

#[test]
fn a_piped_watch_reruns_on_a_save_and_obeys_commands_on_stdin() {
    let suite = suite();
    let mut watch = Piped::start(&suite);
    let out = watch.out.clone();
    // The first run, then the idle line: pytest.ini and three .py files.
    let mut at = out.line("2 passed in ", 0);
    at = out.line("watching 4 files", at);
    // The daemon the watch started has built a warm session for the next run.
    let settled = || {
        let status = daemon_status(&watch.runtime);
        status.contains(": warm") && !status.contains(": collecting")
    };
    let deadline = Instant::now() + LIMIT;
    while !settled() {
        assert!(Instant::now() < deadline, "no warm session:\n{}", daemon_status(&watch.runtime));
        std::thread::sleep(Duration::from_millis(50));
    }

    // A save that breaks test_a: the rerun shows it, served by that session.
    write(&suite, "lib.py", "def f():\n    return 2\n");
    at = out.line(SAVE_RUN, at);
    at = out.line("1 failed", at);
    at = out.line("watching 4 files", at);
    let status = daemon_status(&watch.runtime);
    assert!(status.contains("last run"), "the daemon served no run:\n{status}");

    // Writes a rerun is not for: a data file, a cache, an editor's swap file.
    let runs = out.count(&format!("{PLAIN}running"));
    write(&suite, "data.json", "{}");
    std::fs::create_dir_all(suite.join("__pycache__")).unwrap();
    write(&suite, "__pycache__/lib.cpython-312.pyc", "x");
    write(&suite, ".lib.py.swp", "x");
    // ...then one that is: exactly one more run.
    std::thread::sleep(Duration::from_millis(500));
    write(&suite, "test_a.py", "import lib\n\ndef test_a():\n    assert lib.f() == 2\n");
    at = out.line(SAVE_PASSED, at);
    at = out.line("watching 4 files", at);
    assert_eq!(out.count(&format!("{PLAIN}running")), runs + 1, "{}", out.text());

    // f: only the failed; a: all of them; t: those -k selects.
    write(&suite, "lib.py", "def f():\n    return 3\n");
    at = out.line("1 failed", at);
    at = out.line("watching", at);
    watch.send("f");
    at = out.line("running the failed tests", at);
    at = out.line("1 failed in ", at);
    watch.send("a");
    at = out.line("running all tests", at);
    at = out.line("1 failed, 1 passed in ", at);
    watch.send("t slow");
    at = out.line("running all tests (-k \"slow\")", at);
    at = out.line("1 passed, 1 deselected in ", at);
    watch.send("nonsense");
    at = out.line("unknown command", at);
    watch.send("");
    out.line("1 passed, 1 deselected in ", at);
    watch.send("q");
    assert_eq!(watch.wait_exit(), 0, "stderr:\n{}", watch.err.text());
    assert_nothing_left(&suite);
}

#[test]
fn sigint_stops_the_run_and_a_second_one_ends_the_watch() {
    let suite = suite();
    let mut watch = Piped::start(&suite);
    let out = watch.out.clone();
    let mut at = out.line("watching 4 files", 0);
    write(&suite, "slow.flag", "");
    watch.send("a");
    let pid_file = wait_started(&suite);
    // Ctrl-C in a test: the run stops, with its teardown, the watch goes on.
    watch.signal(libc::SIGINT);
    at = out.line("stopping the run", at);
    wait_gone(&pid_file);
    at = out.line("watching 4 files", at);

    // Again in a test, twice: the watch ends, and nothing is left.
    std::fs::remove_file(&pid_file).unwrap();
    watch.send("a");
    let pid_file = wait_started(&suite);
    watch.signal(libc::SIGINT);
    out.line("stopping the run", at);
    watch.signal(libc::SIGINT);
    assert_eq!(watch.wait_exit(), 0, "stderr:\n{}", watch.err.text());
    wait_gone(&pid_file);
    assert_nothing_left(&suite);
}

#[test]
fn eof_on_stdin_leaves_the_watch_on_files_without_spinning() {
    let suite = suite();
    let mut watch = Piped::start(&suite);
    let out = watch.out.clone();
    let at = out.line("watching 4 files", 0);
    watch.stdin = None;
    let at = out.line("stdin closed", at);
    let cpu_before = cpu_ticks(watch.child.id());
    write(&suite, "lib.py", "def f():\n    return 2\n");
    out.line("1 failed", at);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(watch.child.id()) - cpu_before;
    // A spinning reader would burn its whole second and more (100 ticks).
    assert!(used < 50, "the watch used {used} ticks of CPU while idle with stdin closed");
    watch.signal(libc::SIGTERM);
    watch.wait_exit();
    assert_nothing_left(&suite);
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn on_a_terminal_keys_drive_the_watch_and_ctrl_c_stops_a_run() {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    let suite = suite();
    let runtime = private_dir();
    let pty = native_pty_system().openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 }).unwrap();
    let mut cmd = CommandBuilder::new(rpytest_bin());
    cmd.args(["--watch", "--python", python().to_str().unwrap(), "-q"]);
    cmd.cwd(suite.path());
    cmd.env("RPYTEST_RUNTIME_DIR", runtime.path());
    cmd.env("TERM", "xterm");
    cmd.env_remove("PYTEST_ADDOPTS");
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let out = Output::default();
    out.collect(pty.master.try_clone_reader().unwrap());
    let mut keys = pty.master.take_writer().unwrap();
    let mut press = |key: &str| {
        keys.write_all(key.as_bytes()).unwrap();
        keys.flush().unwrap();
    };
    struct Kill<'a>(&'a mut Box<dyn portable_pty::Child + Send + Sync>);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                if let Some(pid) = self.0.process_id() {
                    // SAFETY: signalling the watch this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                }
                std::thread::sleep(Duration::from_secs(5));
                let _ = self.0.kill();
            }
        }
    }
    let guard = Kill(&mut child);

    let mut at = out.wait_for("watching 4 files · a all · f failed", 0);
    let local_flags = || {
        // SAFETY: tcgetattr fills a zeroed termios we own; the master
        // reports the terminal's mode as the watch set it.
        let mut mode: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::tcgetattr(pty.master.as_raw_fd().unwrap(), &mut mode) }, 0);
        mode.c_lflag
    };
    assert_eq!(local_flags() & (libc::ICANON | libc::ISIG), 0, "raw mode while watching");
    write(&suite, "lib.py", "def f():\n    return 2\n");
    at = out.wait_for(SAVE_RUN, at);
    at = out.wait_for("1 failed", at);
    at = out.wait_for("watching 4 files", at);
    press("f");
    at = out.wait_for("running the failed tests", at);
    at = out.wait_for("1 failed in ", at);
    at = out.wait_for("watching 4 files", at);
    press("a");
    at = out.wait_for("running all tests", at);
    at = out.wait_for("1 failed, 1 passed in ", at);
    at = out.wait_for("watching 4 files", at);
    // t opens a prompt; Enter applies it.
    press("t");
    at = out.wait_for("test name filter", at);
    press("test_a\r");
    at = out.wait_for("running all tests (-k \"test_a\")", at);
    at = out.wait_for("1 failed, 1 deselected in ", at);
    press("c");
    at = out.wait_for("running all tests", at);
    at = out.wait_for("watching 4 files", at);

    // Ctrl-C in a test stops the run; the watch stays.
    write(&suite, "slow.flag", "");
    press("\r");
    let pid_file = wait_started(&suite);
    press("\x03");
    at = out.wait_for("stopping the run", at);
    wait_gone(&pid_file);
    out.wait_for("watching 4 files", at);
    std::fs::remove_file(suite.join("slow.flag")).unwrap();
    press("q");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "q did not end the watch; screen:\n{}", out.text());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the watch ended with {status:?}; screen:\n{}", out.text());
    let restored = libc::ICANON | libc::ISIG | libc::ECHO;
    assert_eq!(local_flags() & restored, restored, "the terminal's mode is restored");
    assert_nothing_left(&suite);
}
