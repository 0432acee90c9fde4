//! The progress while tests run. rpytest's own form, not pytest's: a line
//! per shown phase without pytest's `[ NN%]` column (tests finish out of
//! order), `[worker N]` first under `-v`, letters under `-q`.

use super::*;

fn progress(settings: ReportSettings, results: Vec<TestResult>) -> String {
    report_of(settings, results).1
}

fn verbosity(verbosity: i32) -> ReportSettings {
    ReportSettings { verbosity, ..settings() }
}

#[test]
fn a_line_per_shown_phase() {
    let results = mix(Tb::Long).into_iter().take(3).collect();
    let expected = "test_mix.py::test_pass PASSED\ntest_mix.py::test_fail FAILED\ntest_mix.py::test_error ERROR\n";
    assert_eq!(progress(settings(), results), expected);
}

#[test]
fn v_names_the_worker() {
    let results = vec![TestResult { worker: 3, ..test(0, "test_pass", passed()) }];
    assert_eq!(progress(verbosity(1), results), "[worker 3] test_mix.py::test_pass PASSED\n");
}

#[test]
fn q_prints_letters_wrapped_at_the_width_and_the_summary_ends_the_line() {
    let settings = ReportSettings { width: 5, ..verbosity(-1) };
    let (mut report, letters) = report_of(settings, mix(Tb::Long));
    assert_eq!(letters, ".FEss\nsxX.s\nsF");
    let closing = report.summary(0.01, None, &[]);
    assert!(closing.starts_with("\n= ERRORS =\n"), "{closing:?}");
}

#[test]
fn colour_marks_the_word() {
    let results = vec![
        test(0, "test_fail", failed("call", "", "", "")),
        test(1, "test_x", xfail("skipped", "xfailed", "x", "XFAIL", "")),
    ];
    let expected = "test_mix.py::test_fail \x1b[31mFAILED\x1b[0m\ntest_mix.py::test_x \x1b[33mXFAIL\x1b[0m\n";
    assert_eq!(progress(ReportSettings { color: true, ..settings() }, results), expected);
}

#[test]
fn a_retried_try_says_which_try_and_q_prints_r() {
    let fail = failed("call", "", "", "");
    let mut report = report_of(settings(), Vec::new()).0;
    let line = report.retrying("test_mix.py::test_fail", 0, Some(&fail), (1, 3));
    assert_eq!(line, "test_mix.py::test_fail FAILED (try 1 of 3, retrying)\n");
    let line = report.retrying("test_mix.py::test_fail", 0, None, (2, 3));
    assert_eq!(line, "test_mix.py::test_fail CRASHED (try 2 of 3, retrying)\n");
    let mut quiet = report_of(verbosity(-1), Vec::new()).0;
    assert_eq!(quiet.retrying("test_mix.py::test_fail", 0, Some(&fail), (1, 3)), "R");
}

#[test]
fn a_test_passing_on_a_later_try_is_flaky_and_counted() {
    let flaky = || TestResult { tries: 2, ..test(0, "test_flaky", passed()) };
    let (mut report, line) = report_of(settings(), vec![flaky()]);
    assert_eq!(line, "test_mix.py::test_flaky FLAKY (passed on try 2)\n");
    let expected = "\n=========================== short test summary info ============================\n\
                    FLAKY test_mix.py::test_flaky - passed on try 2\n\
                    ========================== 1 passed, 1 flaky in 0.01s ==========================\n";
    assert_eq!(report.summary(0.01, None, &[]), expected);
    assert_eq!(progress(verbosity(-1), vec![flaky()]), "K");
}
