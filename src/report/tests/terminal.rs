//! The terminal sink, fed the run's events as the engine feeds them and
//! read back as bytes: what reaches stdout and stderr, in which order, and
//! what a silent or quiet run leaves out. No actix, no Python.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::report::events::{Begin, EventSink, RunEvent, TestRetrying, TestSlow};
use crate::report::terminal::{Summarize, TerminalReporter};

/// Both streams as a merged log, the way a CI log that takes `2>&1` sees
/// them: stdout reaches it only when flushed (as a pipe's buffer does),
/// stderr at once; and each stream on its own.
#[derive(Clone, Default)]
struct Terminal {
    merged: Arc<Mutex<Vec<u8>>>,
    streams: [Arc<Mutex<Vec<u8>>>; 2],
}

struct Stream {
    terminal: Terminal,
    which: usize,
    pending: Vec<u8>,
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.terminal.streams[self.which].lock().unwrap().extend_from_slice(bytes);
        self.pending.extend_from_slice(bytes);
        if self.which == 1 {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.terminal.merged.lock().unwrap().append(&mut self.pending);
        Ok(())
    }
}

impl Terminal {
    /// A reporter writing here, to a pipe (no live status, no flush per write).
    fn reporter(&self) -> TerminalReporter {
        let stream = |which| Box::new(Stream { terminal: self.clone(), which, pending: Vec::new() }) as Box<_>;
        TerminalReporter::new(false, false, [stream(0), stream(1)], false).with_width(80)
    }

    fn text(buffer: &Mutex<Vec<u8>>) -> String {
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    fn stdout(&self) -> String {
        Self::text(&self.streams[0])
    }

    fn stderr(&self) -> String {
        Self::text(&self.streams[1])
    }

    fn merged(&self) -> String {
        Self::text(&self.merged)
    }
}

/// The run begins with the suite's settings (as `settings()` says, at
/// `extra`'s verbosity and such).
fn began(tests: usize, extra: serde_json::Value) -> RunEvent {
    let mut fields = json!({"reportchars": "wfE", "pytest_version": [9, 2], "durations_hint": true});
    fields.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let inventory = crate::protocol::testing::inventory(tests, fields);
    RunEvent::Began(Arc::new(Begin { inventory: Arc::new(inventory) }))
}

fn finished(result: TestResult) -> RunEvent {
    RunEvent::TestFinished(Arc::new(result))
}

fn end() -> Summarize {
    Summarize { stopped: None, notes: Vec::new(), junit_written: true, warnings: Vec::new() }
}

#[test]
fn a_run_prints_the_blank_line_the_progress_and_the_closing_text() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(12, json!({})));
    mix(Tb::Long).into_iter().for_each(|result| reporter.event(finished(result)));
    assert!(!reporter.summarize(end(), 0.23, false), "no --max-warnings");
    let progress = "test_mix.py::test_pass PASSED\ntest_mix.py::test_fail FAILED\ntest_mix.py::test_error ERROR\n";
    let stdout = terminal.stdout();
    assert!(stdout.starts_with(&format!("\n{progress}")), "{stdout}");
    assert!(stdout.ends_with(&format!("\n{MIX_SECTIONS}= {MIX_COUNTS} in 0.23s =\n")), "{stdout}");
    assert_eq!(terminal.stderr(), "");
}

#[test]
fn stderr_lines_follow_what_stdout_printed_before_them() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(2, json!({})));
    reporter.event(finished(test(0, "test_pass", passed())));
    reporter.event(RunEvent::Slow(Arc::new(TestSlow {
        nodeid: "test_mix.py::test_slow".into(),
        worker: 1,
        secs: 2.0,
    })));
    reporter.event(RunEvent::diagnostic("rpytest: warning: a worker said something"));
    reporter.event(RunEvent::Observed(Arc::new(crate::report::events::Observe {
        nodeid: "test_mix.py::test_pass".into(),
        duration: Some(0.1),
        outcome: "passed".into(),
        peak_rss_kb: None,
        flaky: false,
    })));
    let stderr = "SLOW [>2s] test_mix.py::test_slow (gw1)\nrpytest: warning: a worker said something\n";
    assert_eq!(terminal.stderr(), stderr, "the history's events print nothing");
    assert_eq!(terminal.merged(), format!("\ntest_mix.py::test_pass PASSED\n{stderr}"));
}

#[test]
fn a_pipe_gets_the_text_when_the_clock_ticks_or_the_run_drains() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(2, json!({"verbosity": -1})));
    reporter.event(finished(test(0, "test_pass", passed())));
    assert_eq!(terminal.merged(), "", "a partial line waits in the buffer");
    reporter.tick();
    assert_eq!(terminal.merged(), ".", "-q: no blank line before the letters");
    reporter.event(finished(test(1, "test_fail", failed("call", "", "", ""))));
    reporter.drain();
    assert_eq!(terminal.merged(), ".F");
}

#[test]
fn a_retried_try_prints_its_line_then_its_result() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(1, json!({})));
    let fail = failed("call", "", "", "");
    let nodeid = "test_mix.py::test_flaky".to_string();
    let retrying = TestRetrying { nodeid, worker: 0, attempt: 1, of: 2, failed: Some(fail) };
    reporter.event(RunEvent::Retrying(Arc::new(retrying)));
    reporter.event(finished(TestResult { tries: 2, ..test(0, "test_flaky", passed()) }));
    let expected = "\ntest_mix.py::test_flaky FAILED (try 1 of 2, retrying)\n\
                    test_mix.py::test_flaky FLAKY (passed on try 2)\n";
    assert_eq!(terminal.stdout(), expected);
}

#[test]
fn no_terminal_plugin_prints_nothing_but_diagnostics() {
    // `-p no:terminal`: pytest prints nothing, so neither does the run;
    // what goes wrong is still said.
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(1, json!({"terminal": false})));
    reporter.event(finished(test(0, "test_fail", failed("call", "E boom\n", "boom", "t.py:1: boom"))));
    reporter.event(RunEvent::diagnostic("rpytest: error: something"));
    reporter.summarize(end(), 0.1, false);
    assert_eq!((terminal.stdout(), terminal.stderr()), (String::new(), "rpytest: error: something\n".into()));
}

#[test]
fn events_before_the_run_began_print_only_diagnostics() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(finished(test(0, "test_pass", passed())));
    reporter.event(RunEvent::diagnostic("rpytest: error: cannot start python"));
    assert!(!reporter.summarize(end(), 0.1, false));
    assert_eq!((terminal.stdout(), terminal.stderr()), (String::new(), "rpytest: error: cannot start python\n".into()));
}

#[test]
fn max_warnings_past_the_limit_is_answered_and_said() {
    let terminal = Terminal::default();
    let mut reporter = terminal.reporter();
    reporter.event(began(1, json!({"max_warnings": 0})));
    let mut warned = test(0, "test_warn", passed());
    warned.warnings.push(warning());
    reporter.event(finished(warned));
    assert!(reporter.summarize(end(), 0.1, false), "1 warning is past --max-warnings 0");
    assert!(terminal.stdout().contains("warnings summary"), "{}", terminal.stdout());
}
