//! Self-test of the comparison harness in `tests/common`, independent of the
//! rpytest binary.
//!
//! If these fail, failures elsewhere in the battery say nothing about rpytest:
//! the parsers (outcome lines, final line, sections, junit) or the Python
//! environment are broken. They run plain pytest only.

mod common;
use common::*;

#[test]
fn dedent_strips_common_indent_and_leading_newline() {
    let s = dedent("\n    def f():\n        return 1\n\n    x = 2\n");
    assert_eq!(s, "def f():\n    return 1\n\nx = 2\n");
}

#[test]
fn outcome_line_parser_accepts_all_forms() {
    let p = |l: &str| parse_outcome_line(l);
    assert_eq!(
        p("test_a.py::test_x PASSED                    [ 10%]"),
        Some((None, "test_a.py::test_x".into(), "PASSED".into()))
    );
    assert_eq!(
        p("test_a.py::test_p[a b] XFAIL (reason here)   [ 50%]"),
        Some((None, "test_a.py::test_p[a b]".into(), "XFAIL".into()))
    );
    assert_eq!(
        p("[worker 3] test_a.py::T::test_y ERROR"),
        Some((Some(3), "test_a.py::T::test_y".into(), "ERROR".into()))
    );
    assert_eq!(p("FAILED test_a.py::test_x - assert 0"), None);
    assert_eq!(p("test_u.py::T::test_sub SUBPASSED(i=1)   [ 83%]"), None);
    assert_eq!(p("collected 3 items"), None);
}

#[test]
fn final_line_normalization_removes_time() {
    assert_eq!(
        normalize_final_line("==== 1 failed, 9 passed, 1 skipped in 0.12s ===="),
        "1 failed, 9 passed, 1 skipped"
    );
    assert_eq!(normalize_final_line("3 passed in 65.10s (0:01:05)"), "3 passed");
    assert_eq!(normalize_final_line("===== no tests ran in 0.01s ====="), "no tests ran");
    let counts = parse_counts("1 failed, 9 passed, 2 subtests passed");
    assert_eq!(counts.get("passed"), Some(&9));
    assert_eq!(counts.get("subtests passed"), Some(&2));
}

fn mixed_suite() -> Suite {
    Suite::new(&[(
        "test_mixed.py",
        r#"
        import pytest

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown boom")

        def test_pass():
            pass

        def test_fail():
            assert 1 == 2

        def test_pass_then_teardown_error(bad_teardown):
            pass

        @pytest.mark.skip(reason="no")
        def test_skip():
            pass

        @pytest.mark.xfail
        def test_xfail():
            assert 0

        @pytest.mark.xfail
        def test_xpass():
            pass

        @pytest.mark.parametrize("x", [1, 2], ids=["one id", "two"])
        def test_param(x):
            assert x == 1
        "#,
    )])
}

#[test]
fn pytest_side_parses_verbose_outcomes() {
    let suite = mixed_suite();
    let r = run_pytest(&suite, &["-v"]);
    let w = |id: &str| r.words(&format!("test_mixed.py::{id}"));
    assert_eq!(w("test_pass"), ["PASSED"], "{}", r.dump());
    assert_eq!(w("test_fail"), ["FAILED"], "{}", r.dump());
    assert_eq!(w("test_pass_then_teardown_error"), ["PASSED", "ERROR"], "{}", r.dump());
    assert_eq!(w("test_skip"), ["SKIPPED"], "{}", r.dump());
    assert_eq!(w("test_xfail"), ["XFAIL"], "{}", r.dump());
    assert_eq!(w("test_xpass"), ["XPASS"], "{}", r.dump());
    assert_eq!(w("test_param[one id]"), ["PASSED"], "{}", r.dump());
    assert_eq!(w("test_param[two]"), ["FAILED"], "{}", r.dump());
    assert_eq!(r.outcomes.len(), 8, "{}", r.dump());
    assert_eq!(r.code, 1);
    assert_eq!(
        r.final_line.as_deref(),
        Some("2 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error"),
        "{}",
        r.dump()
    );
}

#[test]
fn pytest_side_sections_and_progress_letters() {
    let suite = mixed_suite();
    let r = run_pytest(&suite, &["-q"]);
    assert_eq!(progress_letters(&r.stdout), sorted(".F.EsxX.F"), "{}", r.dump());
    let failures = section(&r.stdout, "FAILURES").expect("FAILURES section");
    assert_eq!(section_blocks(&failures).len(), 2, "{failures}");
    assert!(section(&r.stdout, "ERRORS").is_some());
    assert_eq!(summary_lines(&r.stdout).len(), 3, "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("2 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error"));
}

fn sorted(s: &str) -> String {
    let mut v: Vec<char> = s.chars().collect();
    v.sort();
    v.into_iter().collect()
}

#[test]
fn pytest_side_junit_parses() {
    let suite = mixed_suite();
    let xml = suite.join("out.xml");
    let r = run_pytest(&suite, &[&format!("--junitxml={}", xml.display())]);
    assert_eq!(r.code, 1);
    let j = parse_junit(&xml);
    // pytest<9 writes a second testcase for the passing test whose teardown errored.
    assert_eq!(j.tests, if pytest_version() >= (9, 0) { "8" } else { "9" });
    assert_eq!((j.failures.as_str(), j.errors.as_str(), j.skipped.as_str()), ("2", "1", "2"));
    assert!(j.cases.iter().any(|c| c.1 == "test_fail" && c.2 == ["failure"]), "{j:?}");
}

#[test]
fn pytest_side_timeout_kills_a_hanging_child() {
    let suite = Suite::new(&[("test_hang.py", "import time\ndef test_hang():\n    time.sleep(600)\n")]);
    let py = python();
    let args: Vec<String> = ["-c", "import time; time.sleep(600)"].iter().map(|s| s.to_string()).collect();
    let r = run_command_timeout(&py, &args, suite.path(), &[], std::time::Duration::from_secs(2));
    assert!(r.timed_out);
}

#[test]
fn addresses_are_masked_in_section_blocks() {
    assert_eq!(mask_addresses("self = <T object at 0x7f883dd0fbd0>, x=0x10"), "self = <T object at 0xADDR>, x=0x10");
}
