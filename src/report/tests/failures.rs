//! ERRORS, FAILURES and PASSES under the `--tb` styles arranged on the Rust
//! side (`line`, `no`; the others are the worker's text under a heading),
//! with the captured output `--show-capture` lets through.

use super::*;

/// The sections between the progress and the counts line.
fn sections(settings: ReportSettings, results: Vec<TestResult>) -> String {
    let (report, _) = report_of(settings, results);
    let mut out = String::new();
    report.sections(&mut out);
    out
}

fn with_tb(tbstyle: &str) -> ReportSettings {
    ReportSettings { tbstyle: tbstyle.into(), ..settings() }
}

const WARNINGS: &str = "\
=============================== warnings summary ===============================
test_mix.py::test_warn
  /tmp/rs_suite/test_mix.py:47: UserWarning: careful
    warnings.warn(\"careful\", UserWarning)

-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
";

#[test]
fn tb_line_on_pytest_9_shows_the_report_then_its_crash_line() {
    // pytest 9.2 --tb=line.
    let expected = format!(
        "\
==================================== ERRORS ====================================
_________________________ ERROR at setup of test_error _________________________
E   RuntimeError: setup boom
=================================== FAILURES ===================================
E   assert 1 == 2
/tmp/rs_suite/test_mix.py:11: assert 1 == 2
E   ValueError: bad value
----------------------------- Captured stdout call -----------------------------
hello out
/tmp/rs_suite/test_mix.py:57: ValueError: bad value
{WARNINGS}\
=========================== short test summary info ============================
{F_LINES}{E_LINES}"
    );
    assert_eq!(sections(with_tb("line"), mix(Tb::Line)), expected);
}

#[test]
fn tb_line_before_pytest_9_shows_the_crash_line_alone() {
    let settings = ReportSettings { pytest_version: (8, 4), ..with_tb("line") };
    let text = sections(settings, mix(Tb::Line));
    let failures = "\
=================================== FAILURES ===================================
/tmp/rs_suite/test_mix.py:11: assert 1 == 2
/tmp/rs_suite/test_mix.py:57: ValueError: bad value
=============================== warnings summary";
    assert!(text.contains(failures), "{text}");
}

#[test]
fn tb_no_hides_errors_failures_and_passes() {
    // pytest 9.2 --tb=no -rA, the whole closing text.
    let settings = ReportSettings { reportchars: "wPpsxXEf".into(), ..with_tb("no") };
    let expected = format!(
        "\n{WARNINGS}\
=========================== short test summary info ============================
{P_LINES}{S_LINES}{X_LINES}{E_LINES}{F_LINES}\
= 2 failed, 2 passed, 5 skipped, 1 xfailed, 1 xpassed, 1 warning, 1 error in 0.12s =
"
    );
    assert_eq!(closing(settings, mix(Tb::Long), 0.12), expected);
}

#[test]
fn an_xpass_without_output_gets_the_xpasses_rule_alone() {
    // pytest 9.2 -rX: the rule, then no entry for a test that printed nothing.
    let text = sections(ReportSettings { reportchars: "wX".into(), ..settings() }, mix(Tb::Long));
    let rule = "=================================== XPASSES ====================================\n";
    assert!(text.contains(&format!("{rule}=========================== short test summary info")), "{text}");
}

/// `test_out.py`: a fixture that prints in setup and teardown, a passing
/// and a failing test that print too; `--tb=short`.
fn noisy() -> Vec<TestResult> {
    let setup = ("Captured stdout setup".to_string(), "setting up\n".to_string());
    let teardown = ("Captured stdout teardown".to_string(), "tearing down\n".to_string());
    let with = |mut phase: PhaseRecord, call: &str| {
        phase.sections = vec![setup.clone(), ("Captured stdout call".into(), format!("{call}\n")), teardown.clone()];
        let shown = ["setup", "call", "teardown"].iter().position(|w| *w == phase.when).unwrap_or(0) + 1;
        phase.sections.truncate(shown);
        phase
    };
    let longrepr = "test_out.py:17: in test_fails_noisily\n    assert 0\nE   assert 0\n";
    let fail = failed("call", longrepr, "assert 0", "/tmp/rs_suite3/test_out.py:17: assert 0");
    let result = |index, name: &str, call: PhaseRecord, said: &str| TestResult {
        nodeid: format!("test_out.py::{name}"),
        id: format!("test_out.py::{name}"),
        phases: vec![with(quiet("setup"), said), with(call, said), with(quiet("teardown"), said)],
        ..test(index, name, passed())
    };
    vec![
        result(0, "test_talks", passed(), "said something"),
        result(1, "test_fails_noisily", fail, "about to fail"),
        test(2, "test_quiet_pass", passed()),
    ]
}

/// The failing test of `noisy` in FAILURES (`--tb=short`), before its output.
const NOISY_FAILURE: &str = "\
=================================== FAILURES ===================================
______________________________ test_fails_noisily ______________________________
test_out.py:17: in test_fails_noisily
    assert 0
E   assert 0
";

#[test]
fn a_failure_shows_its_output_and_its_teardowns_and_rp_shows_a_passes() {
    // pytest 9.2 --tb=short -rP.
    let settings = ReportSettings { reportchars: "wP".into(), ..with_tb("short") };
    let expected = format!(
        "{NOISY_FAILURE}\
---------------------------- Captured stdout setup -----------------------------
setting up
----------------------------- Captured stdout call -----------------------------
about to fail
--------------------------- Captured stdout teardown ---------------------------
tearing down
==================================== PASSES ====================================
__________________________________ test_talks __________________________________
---------------------------- Captured stdout setup -----------------------------
setting up
----------------------------- Captured stdout call -----------------------------
said something
--------------------------- Captured stdout teardown ---------------------------
tearing down
"
    );
    assert_eq!(sections(settings, noisy()), expected);
}

#[test]
fn show_capture_lets_through_only_the_named_stream() {
    // pytest 9.2 --tb=short --show-capture=stderr: no stdout sections.
    let expected = format!(
        "{NOISY_FAILURE}\
=========================== short test summary info ============================
FAILED test_out.py::test_fails_noisily - assert 0
"
    );
    for show in ["stderr", "no"] {
        let settings = ReportSettings { show_capture: show.into(), ..with_tb("short") };
        assert_eq!(sections(settings, noisy()), expected, "--show-capture={show}");
    }
}

#[test]
fn collection_errors_lead_the_errors_section() {
    // pytest 9.2 --continue-on-collection-errors, the traceback cut short.
    let collection = Collection { reports: vec![collect_error("test_bad.py", "E   SyntaxError")], ..no_collection() };
    let expected = "\
==================================== ERRORS ====================================
_________________________ ERROR collecting test_bad.py _________________________
E   SyntaxError
_________________________ ERROR at setup of test_error _________________________
E   RuntimeError: setup boom
";
    let (report, _) = report_with(with_tb("line"), collection, vec![mix(Tb::Line).swap_remove(2)]);
    let mut out = String::new();
    report.errors_section(&mut out);
    assert_eq!(out, expected);
}

#[test]
fn xfail_tb_adds_an_xfailures_section_since_pytest_8() {
    // pytest 9.2 --xfail-tb --tb=short.
    let longrepr = "test_mix.py:38: in test_xfail\n    assert False\nE   assert False\n";
    let xfailed =
        PhaseRecord { longrepr: Some(longrepr.into()), ..xfail("skipped", "xfailed", "x", "XFAIL", "known bug") };
    let results = vec![test(0, "test_xfail", xfailed)];
    let on = |version| {
        let settings = ReportSettings { xfail_tb: true, pytest_version: version, ..with_tb("short") };
        sections(settings, results.clone())
    };
    let expected = "\
================================== XFAILURES ===================================
__________________________________ test_xfail __________________________________
test_mix.py:38: in test_xfail
    assert False
E   assert False
";
    assert_eq!(on((9, 2)), expected);
    assert_eq!(on((8, 0)), expected);
    assert_eq!(on((7, 4)), "", "pytest<8 has no XFAILURES");
}

#[test]
fn instafail_shows_each_failure_after_its_line_and_no_failures_or_errors_section() {
    let settings = ReportSettings { instafail: true, ..settings() };
    let (report, progress) = report_of(settings.clone(), mix(Tb::Long));
    let mut out = String::new();
    report.sections(&mut out);
    assert!(!out.contains("= FAILURES =") && !out.contains("= ERRORS ="), "{out}");
    assert!(out.contains("short test summary info"), "{out}");
    let failed_line = progress.find("::test_fail FAILED\n").expect(&progress);
    let heading = progress.find("_ test_fail _").expect(&progress);
    let setup = progress.find("_ ERROR at setup of test_error _").expect(&progress);
    assert!(failed_line < heading && progress[heading..].contains("assert 1 == 2"), "{progress}");
    assert!(setup > 0 && !progress.contains("_ test_xfail"), "an xfail is not a failure:\n{progress}");
    let quiet = ReportSettings { verbosity: -1, ..settings };
    let (_, letters) = report_of(quiet, mix(Tb::Long));
    assert!(letters.contains("F\n_"), "the letters' line ends before the failure:\n{letters}");
}
