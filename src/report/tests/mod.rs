//! Snapshot tests of the reporter's text, built from synthetic records: no
//! Python, no actix. The records are what a worker sends for a small suite
//! (`wire_reports.encode_phase` on pytest 9.2), and the expected strings
//! are what `pytest --color=no` printed for that suite at COLUMNS=80, the
//! duration aside, which the tests inject.
//!
//! The suite (`test_mix.py`): a pass, a failed assert, a fixture error, two
//! skips with one reason at two places, a skip by mark, an xfail, an xpass,
//! a test with a warning, a parametrized skip (two tests, one place), and a
//! failure with captured stdout.

mod closing_line;
mod failures;
mod progress;
mod short_summary;
mod terminal;
mod warnings;

use super::{Collection, ReportSettings, RunReport, TestResult};
use crate::protocol::{CollectReport, PhaseRecord, WarningRecord};

/// pytest's settings with no options, at 80 columns.
fn settings() -> ReportSettings {
    ReportSettings {
        verbosity: 0,
        reportchars: "wfE".into(),
        tbstyle: "auto".into(),
        summary_untrimmed: false,
        no_summary: false,
        fold_skipped: true,
        xfail_tb: false,
        instafail: false,
        max_warnings: None,
        show_capture: "all".into(),
        junitxml: None,
        durations: None,
        durations_min: 0.005,
        durations_hint: true,
        width: 80,
        color: false,
        pytest_version: (9, 2),
    }
}

fn phase(when: &str, outcome: &str, category: &str, letter: &str, word: &str) -> PhaseRecord {
    PhaseRecord {
        when: when.into(),
        outcome: outcome.into(),
        category: category.into(),
        letter: letter.into(),
        word: word.into(),
        ..PhaseRecord::default()
    }
}

/// A setup or teardown that passed: pytest shows nothing for it.
fn quiet(when: &str) -> PhaseRecord {
    phase(when, "passed", "", "", "")
}

fn passed() -> PhaseRecord {
    phase("call", "passed", "passed", ".", "PASSED")
}

/// A failed phase with pytest's formatted traceback and crash message.
fn failed(when: &str, longrepr: &str, crash: &str, crash_line: &str) -> PhaseRecord {
    let (category, letter, word) = if when == "call" { ("failed", "F", "FAILED") } else { ("error", "E", "ERROR") };
    PhaseRecord {
        longrepr: Some(longrepr.into()),
        crash: Some(crash.into()),
        crash_line: Some(crash_line.into()),
        ..phase(when, "failed", category, letter, word)
    }
}

fn skipped(when: &str, line: i64, reason: &str) -> PhaseRecord {
    PhaseRecord {
        skip: Some(("test_mix.py".into(), Some(line), format!("Skipped: {reason}"))),
        ..phase(when, "skipped", "skipped", "s", "SKIPPED")
    }
}

fn xfail(outcome: &str, category: &str, letter: &str, word: &str, reason: &str) -> PhaseRecord {
    PhaseRecord { wasxfail: Some(reason.into()), ..phase("call", outcome, category, letter, word) }
}

/// A test in `test_mix.py` whose one shown phase is `shown`, between quiet
/// setup and teardown (or before a quiet teardown, when `shown` is the setup).
fn test(index: usize, name: &str, shown: PhaseRecord) -> TestResult {
    let nodeid = format!("test_mix.py::{name}");
    let phases = match shown.when.as_str() {
        "setup" => vec![shown, quiet("teardown")],
        _ => vec![quiet("setup"), shown, quiet("teardown")],
    };
    TestResult { index, id: nodeid.clone(), nodeid, worker: 0, phases, warnings: Vec::new(), tries: 1 }
}

/// How the worker formatted the failures: `--tb=auto` (long) or `--tb=line`.
#[derive(Clone, Copy, PartialEq)]
enum Tb {
    Long,
    Line,
}

const FAIL_LONG: &str =
    "\n    def test_fail():\n        x = 1\n>       assert x == 2\nE       assert 1 == 2\n\ntest_mix.py:11: AssertionError\n";
const ERROR_LONG: &str = "\n    @pytest.fixture\n    def broken():\n>       raise RuntimeError(\"setup boom\")\n\
                          E       RuntimeError: setup boom\n\ntest_mix.py:16: RuntimeError\n";
const OUTPUT_LONG: &str = "\n    def test_fail_output():\n        print(\"hello out\")\n\
                           >       raise ValueError(\"bad value\")\nE       ValueError: bad value\n\n\
                           test_mix.py:57: ValueError\n";

fn warning() -> WarningRecord {
    WarningRecord {
        message: "/tmp/rs_suite/test_mix.py:47: UserWarning: careful\n  warnings.warn(\"careful\", UserWarning)\n"
            .into(),
        location: Some("test_mix.py::test_warn".into()),
        when: "runtest".into(),
    }
}

/// The suite's records, in collection order.
fn mix(tb: Tb) -> Vec<TestResult> {
    let long = tb == Tb::Long;
    let pick = |long_text: &'static str, line_text: &'static str| if long { long_text } else { line_text };
    let fail = failed(
        "call",
        pick(FAIL_LONG, "E   assert 1 == 2\n"),
        "assert 1 == 2",
        "/tmp/rs_suite/test_mix.py:11: assert 1 == 2",
    );
    let error = failed(
        "setup",
        pick(ERROR_LONG, "E   RuntimeError: setup boom\n"),
        "RuntimeError: setup boom",
        "/tmp/rs_suite/test_mix.py:16: RuntimeError: setup boom",
    );
    let output = PhaseRecord {
        sections: vec![("Captured stdout call".into(), "hello out\n".into())],
        ..failed(
            "call",
            pick(OUTPUT_LONG, "E   ValueError: bad value\n"),
            "ValueError: bad value",
            "/tmp/rs_suite/test_mix.py:57: ValueError: bad value",
        )
    };
    let mut warn = test(8, "test_warn", passed());
    warn.warnings.push(warning());
    vec![
        test(0, "test_pass", passed()),
        test(1, "test_fail", fail),
        test(2, "test_error", error),
        test(3, "test_skip_one", skipped("call", 24, "not today")),
        test(4, "test_skip_two", skipped("call", 28, "not today")),
        test(5, "test_skip_marked", skipped("setup", 31, "marked")),
        test(6, "test_xfail", xfail("skipped", "xfailed", "x", "XFAIL", "known bug")),
        test(7, "test_xpass", xfail("passed", "xpassed", "X", "XPASS", "fixed?")),
        warn,
        test(9, "test_skip_param[1]", skipped("call", 52, "same place")),
        test(10, "test_skip_param[2]", skipped("call", 52, "same place")),
        test(11, "test_fail_output", output),
    ]
}

/// A report of `results` with nothing from collection; returns it with
/// the progress text recording them printed.
fn report_of(settings: ReportSettings, results: Vec<TestResult>) -> (RunReport, String) {
    report_with(settings, no_collection(), results)
}

fn report_with(settings: ReportSettings, collection: Collection, results: Vec<TestResult>) -> (RunReport, String) {
    let mut report = RunReport::new(settings, collection);
    let progress = results.into_iter().map(|r| report.record(r)).collect();
    (report, progress)
}

fn no_collection() -> Collection {
    Collection { deselected: 0, unaffected: 0, reports: Vec::new(), warnings: Vec::new() }
}

/// The closing text for `results`, after a run of `elapsed` seconds.
fn closing(settings: ReportSettings, results: Vec<TestResult>, elapsed: f64) -> String {
    report_of(settings, results).0.summary(elapsed, None, &[])
}

/// A collector that failed, as `--continue-on-collection-errors` leaves it.
fn collect_error(id: &str, longrepr: &str) -> CollectReport {
    CollectReport { id: id.into(), outcome: "failed".into(), longrepr: longrepr.into(), skip: None }
}

/// The suite's closing text under `pytest --color=no` (default options),
/// from the ERRORS rule to the short summary's last line.
const MIX_SECTIONS: &str = "\
==================================== ERRORS ====================================
_________________________ ERROR at setup of test_error _________________________

    @pytest.fixture
    def broken():
>       raise RuntimeError(\"setup boom\")
E       RuntimeError: setup boom

test_mix.py:16: RuntimeError
=================================== FAILURES ===================================
__________________________________ test_fail ___________________________________

    def test_fail():
        x = 1
>       assert x == 2
E       assert 1 == 2

test_mix.py:11: AssertionError
_______________________________ test_fail_output _______________________________

    def test_fail_output():
        print(\"hello out\")
>       raise ValueError(\"bad value\")
E       ValueError: bad value

test_mix.py:57: ValueError
----------------------------- Captured stdout call -----------------------------
hello out
=============================== warnings summary ===============================
test_mix.py::test_warn
  /tmp/rs_suite/test_mix.py:47: UserWarning: careful
    warnings.warn(\"careful\", UserWarning)

-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
=========================== short test summary info ============================
FAILED test_mix.py::test_fail - assert 1 == 2
FAILED test_mix.py::test_fail_output - ValueError: bad value
ERROR test_mix.py::test_error - RuntimeError: setup boom
";

/// The suite's short-summary lines, by the `-r` characters that show them.
const F_LINES: &str = "FAILED test_mix.py::test_fail - assert 1 == 2\n\
                       FAILED test_mix.py::test_fail_output - ValueError: bad value\n";
const E_LINES: &str = "ERROR test_mix.py::test_error - RuntimeError: setup boom\n";
const S_LINES: &str = "SKIPPED [1] test_mix.py:24: not today\n\
                       SKIPPED [1] test_mix.py:28: not today\n\
                       SKIPPED [1] test_mix.py:31: marked\n\
                       SKIPPED [2] test_mix.py:52: same place\n";
const X_LINES: &str = "XFAIL test_mix.py::test_xfail - known bug\nXPASS test_mix.py::test_xpass - fixed?\n";
const P_LINES: &str = "PASSED test_mix.py::test_pass\nPASSED test_mix.py::test_warn\n";

/// The suite's counts, as pytest words them.
const MIX_COUNTS: &str = "2 failed, 2 passed, 5 skipped, 1 xfailed, 1 xpassed, 1 warning, 1 error";

#[test]
fn the_whole_closing_text_is_pytests() {
    let expected = format!("\n{MIX_SECTIONS}= {MIX_COUNTS} in 0.19s =\n");
    assert_eq!(closing(settings(), mix(Tb::Long), 0.19), expected);
}

#[test]
fn tests_finished_out_of_order_are_listed_in_collection_order() {
    let mut results = mix(Tb::Long);
    results.reverse();
    let expected = format!("\n{MIX_SECTIONS}= {MIX_COUNTS} in 0.19s =\n");
    assert_eq!(closing(settings(), results, 0.19), expected);
}
