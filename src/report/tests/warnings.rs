//! The warnings summary: grouped by message, places collapsed to per-file
//! counts from ten on, absent without `w` in the report characters.

use super::*;

fn warnings_section(settings: ReportSettings, collection: Collection, results: Vec<TestResult>) -> String {
    let (report, _) = report_with(settings, collection, results);
    let mut out = String::new();
    report.warnings_section(&mut out);
    out
}

const TITLE: &str = "=============================== warnings summary ===============================\n";
const DOCS: &str = "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n";
const AGAIN: &str =
    "/tmp/rs_suite2/test_many.py:7: DeprecationWarning: again\n  warnings.warn(\"again\", DeprecationWarning)\n";

/// `test_many.py::test_w[n]`, which warns `again`.
fn warns_again(n: usize) -> TestResult {
    let mut result = test(n, "test_w", passed());
    result.nodeid = format!("test_many.py::test_w[{n}]");
    let location = Some(result.nodeid.clone());
    result.warnings.push(WarningRecord { message: AGAIN.into(), location, when: "runtest".into() });
    result
}

#[test]
fn one_warning_under_its_test() {
    let expected = format!(
        "{TITLE}test_mix.py::test_warn\n  /tmp/rs_suite/test_mix.py:47: UserWarning: careful\n    \
         warnings.warn(\"careful\", UserWarning)\n\n{DOCS}"
    );
    assert_eq!(warnings_section(settings(), no_collection(), mix(Tb::Long)), expected);
}

#[test]
fn ten_places_or_more_collapse_to_counts_per_file() {
    // pytest 9.2: one test parametrized 11 times, each warning once.
    let expected = format!(
        "{TITLE}test_many.py: 11 warnings\n  /tmp/rs_suite2/test_many.py:7: DeprecationWarning: again\n    \
         warnings.warn(\"again\", DeprecationWarning)\n\n{DOCS}"
    );
    let results = (0..11).map(warns_again).collect();
    assert_eq!(warnings_section(settings(), no_collection(), results), expected);
}

#[test]
fn fewer_places_are_listed_and_messages_keep_their_first_order() {
    let mut results: Vec<TestResult> = (0..2).map(warns_again).collect();
    results.insert(1, mix(Tb::Long).swap_remove(8));
    let expected = format!(
        "{TITLE}test_many.py::test_w[0]\ntest_many.py::test_w[1]\n  /tmp/rs_suite2/test_many.py:7: DeprecationWarning: again\n    \
         warnings.warn(\"again\", DeprecationWarning)\n\n\
         test_mix.py::test_warn\n  /tmp/rs_suite/test_mix.py:47: UserWarning: careful\n    \
         warnings.warn(\"careful\", UserWarning)\n\n{DOCS}"
    );
    assert_eq!(warnings_section(settings(), no_collection(), results), expected);
}

#[test]
fn a_collection_warning_without_a_place_shows_its_message_alone() {
    let warning =
        WarningRecord { message: "conftest.py:1: UserWarning: early\n".into(), location: None, when: "collect".into() };
    let collection = Collection { warnings: vec![warning], ..no_collection() };
    let expected = format!("{TITLE}conftest.py:1: UserWarning: early\n\n{DOCS}");
    assert_eq!(warnings_section(settings(), collection, Vec::new()), expected);
}

#[test]
fn disabled_warnings_print_no_section_but_are_counted() {
    let settings = ReportSettings { reportchars: "fE".into(), ..settings() };
    assert_eq!(warnings_section(settings.clone(), no_collection(), mix(Tb::Long)), "");
    let text = closing(settings, vec![warns_again(0)], 0.01);
    assert_eq!(text, "\n========================= 1 passed, 1 warning in 0.01s =========================\n");
}
