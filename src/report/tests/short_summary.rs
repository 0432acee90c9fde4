//! The short test summary: each `-r` character, in the order pytest
//! resolved them, skips folded by place and reason, messages cut to width.

use super::*;

/// Only the short summary of `results` under `settings`.
fn short_summary(settings: ReportSettings, collection: Collection, results: Vec<TestResult>) -> String {
    let (report, _) = report_with(settings, collection, results);
    let mut out = String::new();
    report.short_summary(&mut out);
    out
}

fn with_chars(chars: &str) -> ReportSettings {
    ReportSettings { reportchars: chars.into(), ..settings() }
}

const TITLE: &str = "=========================== short test summary info ============================\n";

#[test]
fn every_char_in_the_order_given() {
    // pytest -rfEsxXp (resolved to wfEsxXp).
    let expected = format!("{TITLE}{F_LINES}{E_LINES}{S_LINES}{X_LINES}{P_LINES}");
    assert_eq!(short_summary(with_chars("wfEsxXp"), no_collection(), mix(Tb::Long)), expected);
}

#[test]
fn all_chars_follow_pytests_order_for_a() {
    // pytest -rA (resolved to wPpsxXEf).
    let expected = format!("{TITLE}{P_LINES}{S_LINES}{X_LINES}{E_LINES}{F_LINES}");
    assert_eq!(short_summary(with_chars("wPpsxXEf"), no_collection(), mix(Tb::Long)), expected);
}

#[test]
fn no_fold_skipped_lists_each_skip_with_its_reason_as_given() {
    // pytest -rs --no-fold-skipped.
    let expected = format!(
        "{TITLE}\
         SKIPPED test_mix.py::test_skip_one - Skipped: not today\n\
         SKIPPED test_mix.py::test_skip_two - Skipped: not today\n\
         SKIPPED test_mix.py::test_skip_marked - Skipped: marked\n\
         SKIPPED test_mix.py::test_skip_param[1] - Skipped: same place\n\
         SKIPPED test_mix.py::test_skip_param[2] - Skipped: same place\n"
    );
    let settings = ReportSettings { fold_skipped: false, ..with_chars("ws") };
    assert_eq!(short_summary(settings, no_collection(), mix(Tb::Long)), expected);
}

#[test]
fn a_skip_without_a_line_folds_under_its_file() {
    let mut skip = skipped("setup", 0, "by mark");
    skip.skip = Some(("test_mix.py".into(), None, "by mark".into()));
    let results = vec![test(0, "test_a", skip.clone()), test(1, "test_b", skip)];
    let expected = format!("{TITLE}SKIPPED [2] test_mix.py: by mark\n");
    assert_eq!(short_summary(with_chars("ws"), no_collection(), results), expected);
}

#[test]
fn nothing_to_list_prints_no_title() {
    assert_eq!(short_summary(with_chars("wfE"), no_collection(), vec![test(0, "test_pass", passed())]), "");
}

#[test]
fn a_long_message_is_cut_to_the_width() {
    // pytest at COLUMNS=80, an assertion with a message.
    let long = failed("call", "", "AssertionError: the message that explains\nassert 'a fairly lon...", "");
    let results =
        vec![TestResult { nodeid: "test_many.py::test_long_message".into(), ..test(0, "test_long_message", long) }];
    let expected = format!("{TITLE}FAILED test_many.py::test_long_message - AssertionError: the message that exp...\n");
    assert_eq!(short_summary(with_chars("wfE"), no_collection(), results.clone()), expected);
    // CI and -vv: the whole first line.
    let untrimmed = ReportSettings { summary_untrimmed: true, ..with_chars("wfE") };
    let expected = format!(
        "{TITLE}FAILED test_many.py::test_long_message - AssertionError: the message that explains\n\
         assert 'a fairly lon...\n"
    );
    assert_eq!(short_summary(untrimmed, no_collection(), results), expected);
}

#[test]
fn collection_errors_lead_the_error_lines() {
    let collection = Collection { reports: vec![collect_error("test_bad.py", "E   SyntaxError")], ..no_collection() };
    let expected = format!(
        "{TITLE}\
         ERROR test_bad.py\n\
         ERROR test_mix.py::test_error - RuntimeError: setup boom\n"
    );
    assert_eq!(short_summary(with_chars("wE"), collection, mix(Tb::Long)), expected);
}

#[test]
fn xfail_lines_follow_the_pytest_version() {
    let setup_xfail = xfail("skipped", "xfailed", "x", "XFAIL", "");
    let results = vec![
        test(0, "test_x", PhaseRecord { when: "setup".into(), ..setup_xfail }),
        test(1, "test_xpass", xfail("passed", "xpassed", "X", "XPASS", "")),
    ];
    let on = |version| {
        short_summary(ReportSettings { pytest_version: version, ..with_chars("xX") }, no_collection(), results.clone())
    };
    // pytest 9 names the phase of an xfail outside the call.
    assert_eq!(on((9, 0)), format!("{TITLE}XFAIL at setup of test_mix.py::test_x\nXPASS test_mix.py::test_xpass\n"));
    assert_eq!(on((8, 4)), format!("{TITLE}XFAIL test_mix.py::test_x\nXPASS test_mix.py::test_xpass\n"));
    // pytest<8: an XPASS line always has a space for its reason.
    assert_eq!(on((7, 4)), format!("{TITLE}XFAIL test_mix.py::test_x\nXPASS test_mix.py::test_xpass \n"));
}

#[test]
fn a_flaky_test_is_listed_under_f_with_its_try() {
    let results = vec![TestResult { tries: 2, ..test(0, "test_flaky", passed()) }];
    let expected = format!("{TITLE}FLAKY test_mix.py::test_flaky - passed on try 2\n");
    assert_eq!(short_summary(with_chars("wfE"), no_collection(), results), expected);
}

#[test]
fn colour_marks_the_word_and_the_test_name() {
    let settings = ReportSettings { color: true, ..with_chars("fs") };
    let results =
        vec![test(0, "test_fail", failed("call", "", "assert 1 == 2", "")), test(1, "test_s", skipped("call", 3, "r"))];
    let expected =
        "\x1b[36m\x1b[1m=========================== short test summary info ============================\x1b[0m\n\
                    \x1b[31mFAILED\x1b[0m test_mix.py::\x1b[1mtest_fail\x1b[0m - assert 1 == 2\n\
                    \x1b[33mSKIPPED\x1b[0m [1] test_mix.py:3: r\n";
    assert_eq!(short_summary(settings, no_collection(), results), expected);
}
