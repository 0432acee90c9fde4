//! The end of the closing text: the counts line in its `-q`/`-v` forms and
//! durations, a stop's banner, the `--max-warnings` line, the junit line,
//! the `--durations` section.

use super::*;
use crate::report::Stopped;

fn verbosity(verbosity: i32) -> ReportSettings {
    ReportSettings { verbosity, ..settings() }
}

#[test]
fn q_drops_the_rule_and_the_blank_line_and_qq_the_counts_line() {
    // pytest 9.2 -q: the letters' line ends, the sections follow at once.
    let expected = format!("\n{MIX_SECTIONS}{MIX_COUNTS} in 0.23s\n");
    assert_eq!(closing(verbosity(-1), mix(Tb::Long), 0.23), expected);
    // -qq: no counts line at all.
    assert_eq!(closing(verbosity(-2), mix(Tb::Long), 0.23), format!("\n{MIX_SECTIONS}"));
}

#[test]
fn v_closes_as_the_default_does() {
    let expected = format!("\n{MIX_SECTIONS}= {MIX_COUNTS} in 0.24s =\n");
    assert_eq!(closing(verbosity(1), mix(Tb::Long), 0.24), expected);
    assert_eq!(closing(verbosity(2), mix(Tb::Long), 0.24), expected);
}

#[test]
fn the_duration_past_a_minute_adds_hours_minutes_seconds() {
    let results = vec![test(0, "test_pass", passed())];
    let expected = "\n========================= 1 passed in 65.43s (0:01:05) =========================\n";
    assert_eq!(closing(settings(), results, 65.432), expected);
}

#[test]
fn deselected_tests_count_and_no_tests_ran() {
    // pytest 9.2 -k test_pass, then -k nothing_matches.
    let collection = Collection { deselected: 11, ..no_collection() };
    let (mut report, _) = report_with(settings(), collection, vec![test(0, "test_pass", passed())]);
    let expected = "\n======================= 1 passed, 11 deselected in 0.15s =======================\n";
    assert_eq!(report.summary(0.15, None, &[]), expected);
    let (mut report, _) = report_with(settings(), Collection { deselected: 12, ..no_collection() }, Vec::new());
    let expected = "\n============================ 12 deselected in 0.12s ============================\n";
    assert_eq!(report.summary(0.12, None, &[]), expected);
    let expected = "\n============================ no tests ran in 0.01s =============================\n";
    assert_eq!(closing(settings(), Vec::new(), 0.01), expected);
}

#[test]
fn unaffected_tests_are_named_in_the_count() {
    // --affected left out 11; with -k besides, 4 of 11.
    let collection = Collection { deselected: 11, unaffected: 11, ..no_collection() };
    let (mut report, _) = report_with(settings(), collection, vec![test(0, "test_pass", passed())]);
    let expected = "\n================ 1 passed, 11 deselected (unaffected) in 0.15s =================\n";
    assert_eq!(report.summary(0.15, None, &[]), expected);
    let collection = Collection { deselected: 11, unaffected: 4, ..no_collection() };
    let (mut report, _) = report_with(settings(), collection, vec![test(0, "test_pass", passed())]);
    assert!(report.summary(0.15, None, &[]).contains(" 1 passed, 11 deselected (4 unaffected) in 0.15s "));
}

#[test]
fn colour_paints_the_counts_line() {
    // pytest 9.2 --color=yes -k "test_pass or test_xfail".
    let results =
        vec![test(0, "test_pass", passed()), test(6, "test_xfail", xfail("skipped", "xfailed", "x", "XFAIL", ""))];
    let settings = ReportSettings { color: true, ..settings() };
    let (mut report, _) = report_with(settings, Collection { deselected: 10, ..no_collection() }, results);
    let expected = "\n\x1b[32m================= \x1b[32m\x1b[1m1 passed\x1b[0m, \x1b[33m10 deselected\x1b[0m, \
                    \x1b[33m1 xfailed\x1b[0m\x1b[32m in 0.25s\x1b[0m\x1b[32m ==================\x1b[0m\n";
    assert_eq!(report.summary(0.25, None, &[]), expected);
}

/// pytest 9.2 `-x --tb=no -k "pass or fail"`: test_pass, then test_fail stops the run.
fn stopped_run() -> RunReport {
    let collection = Collection { deselected: 7, ..no_collection() };
    let fail = failed("call", "", "assert 1 == 2", "");
    report_with(with_tb_no(), collection, vec![test(0, "test_pass", passed()), test(1, "test_fail", fail)]).0
}

fn with_tb_no() -> ReportSettings {
    ReportSettings { tbstyle: "no".into(), ..settings() }
}

const STOP_RULE: &str = "!!!!!!!!!!!!!!!!!!!!!!!!!! stopping after 1 failures !!!!!!!!!!!!!!!!!!!!!!!!!!!\n";

#[test]
fn a_stop_banner_comes_before_the_counts_line() {
    let expected = format!(
        "\n=========================== short test summary info ============================\n\
         FAILED test_mix.py::test_fail - assert 1 == 2\n\
         {STOP_RULE}\
         ================== 1 failed, 1 passed, 7 deselected in 0.15s ===================\n"
    );
    let stopped = Stopped::plain("stopping after 1 failures");
    assert_eq!(stopped_run().summary(0.15, Some(&stopped), &[]), expected);
}

#[test]
fn pytest_exit_with_its_own_code_puts_the_banner_last_and_drops_the_sections() {
    let stopped = Stopped {
        banner: "stopping after 1 failures".into(),
        detail: vec!["where it came from".into()],
        after_counts: true,
        sections: false,
    };
    let expected = format!(
        "\n================== 1 failed, 1 passed, 7 deselected in 0.15s ===================\n\
         {STOP_RULE}where it came from\n"
    );
    assert_eq!(stopped_run().summary(0.15, Some(&stopped), &[]), expected);
}

#[test]
fn notes_come_first_and_no_summary_keeps_only_the_counts_line() {
    let settings = ReportSettings { no_summary: true, ..settings() };
    let notes = vec!["Stored test durations in .test_durations".to_string()];
    let mut report = report_of(settings, mix(Tb::Long)).0;
    let expected = format!("\nStored test durations in .test_durations\n= {MIX_COUNTS} in 0.19s =\n");
    assert_eq!(report.summary(0.19, None, &notes), expected);
}

#[test]
fn too_many_warnings_are_said_above_the_counts_line() {
    // pytest 9.2 -k "test_pass or test_warn" --max-warnings 0 (warnings summary aside).
    let settings = ReportSettings { max_warnings: Some(0), reportchars: "fE".into(), ..settings() };
    let collection = Collection { deselected: 10, ..no_collection() };
    let results = mix(Tb::Long).into_iter().filter(|r| [0, 8].contains(&r.index)).collect();
    let (mut report, _) = report_with(settings, collection, results);
    let expected = "\nTests pass, but maximum allowed warnings exceeded: 1 > 0\n\
                    ================= 2 passed, 10 deselected, 1 warning in 0.06s ==================\n";
    assert_eq!(report.summary(0.06, None, &[]), expected);
    assert!(report.max_warnings_exceeded(false));
    assert!(!report.max_warnings_exceeded(true), "an interrupted run is not judged");
}

#[test]
fn the_junit_line_is_left_out_at_q_since_pytest_9() {
    let junit = |verbosity, pytest_version| ReportSettings {
        junitxml: Some("/tmp/rs_suite/j.xml".into()),
        verbosity,
        pytest_version,
        ..settings()
    };
    let line = "------------------- generated xml file: /tmp/rs_suite/j.xml --------------------\n";
    let results = || vec![test(0, "test_pass", passed())];
    // pytest 9.2 --junitxml, then with -q.
    let counts = "============================== 1 passed in 0.15s ===============================\n";
    assert_eq!(closing(junit(0, (9, 2)), results(), 0.15), format!("\n{line}{counts}"));
    assert_eq!(closing(junit(-1, (9, 2)), results(), 0.15), "\n1 passed in 0.15s\n");
    assert_eq!(closing(junit(-1, (8, 4)), results(), 0.15), format!("\n{line}1 passed in 0.15s\n"));
    let mut report = report_of(junit(0, (9, 2)), results()).0;
    report.forget_junit();
    assert!(!report.summary(0.15, None, &[]).contains("xml"), "no file was written");
}

#[test]
fn durations_list_the_slowest_phases_and_count_the_hidden() {
    let timed = |index, name: &str, secs| {
        let mut result = test(index, name, PhaseRecord { duration: secs, ..passed() });
        result.phases[0].duration = 0.001;
        result.phases[2].duration = 0.0;
        result
    };
    let settings = ReportSettings { durations: Some(3), durations_min: 0.5, durations_hint: false, ..settings() };
    let results = vec![timed(0, "test_a", 0.75), timed(1, "test_b", 1.5)];
    let mut out = String::new();
    report_of(settings, results).0.durations_section(&mut out);
    let expected = "============================= slowest 3 durations ==============================\n\
                    1.50s call     test_mix.py::test_b\n\
                    0.75s call     test_mix.py::test_a\n\
                    \n(1 durations < 0.5s hidden.)\n";
    assert_eq!(out, expected);
}
