//! The junit file, element by element and attribute by attribute, against
//! pytest's own for the same suite: testcases in collection order, failure
//! and skip messages, `record_property`, `record_xml_attribute` (which
//! pytest-xdist loses), `record_testsuite_property`, `--junitprefix`,
//! `junit_suite_name`, `junit_family` and `junit_logging`. Only what varies
//! run to run (times, timestamp, hostname) is left out.

mod common;
use common::*;

use std::collections::BTreeMap;

/// One element: its path from the root, its attributes and its text.
type Element = (String, BTreeMap<String, String>, String);

fn skeleton(path: &std::path::Path) -> Vec<Element> {
    use quick_xml::events::Event;
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("no junit file {}: {e}", path.display()));
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut out: Vec<Element> = Vec::new();
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("bad XML: {e}\n{xml}"));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.push(name);
                let attrs = e
                    .attributes()
                    .flatten()
                    .map(|a| {
                        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                        (key, a.unescape_value().map(|v| v.into_owned()).unwrap_or_default())
                    })
                    .filter(|(k, _)| !matches!(k.as_str(), "time" | "timestamp" | "hostname"))
                    .collect();
                out.push((stack.join("/"), attrs, String::new()));
                if matches!(event, Event::Empty(_)) {
                    stack.pop();
                }
            }
            Event::Text(t) => {
                if let Some(last) = out.last_mut() {
                    last.2.push_str(&t.unescape().map(|v| v.into_owned()).unwrap_or_default());
                }
            }
            Event::CData(t) => {
                if let Some(last) = out.last_mut() {
                    last.2.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn suite(ini_extra: &str) -> Suite {
    Suite::new(&[
        ("pytest.ini", &format!("[pytest]\n{ini_extra}\n")),
        (
            "conftest.py",
            r#"
            import pytest

            @pytest.fixture(scope="session", autouse=True)
            def suite_props(record_testsuite_property):
                record_testsuite_property("build", "1234")
            "#,
        ),
        (
            "test_j.py",
            r#"
            import logging
            import sys
            import pytest

            def test_pass(record_property):
                record_property("answer", 42)

            def test_attr(record_xml_attribute):
                record_xml_attribute("owner", "team-a")

            def test_fail():
                print("to stdout")
                sys.stderr.write("to stderr\n")
                logging.getLogger("x").warning("a log line")
                assert 1 == 2, "numbers differ"

            @pytest.mark.skip(reason="not today")
            def test_skip():
                pass

            @pytest.mark.xfail(reason="known bug")
            def test_xfail():
                assert 0

            class TestGroup:
                @pytest.mark.parametrize("n", [1, 2])
                def test_param(self, n, record_xml_attribute):
                    record_xml_attribute("n", str(n))

            @pytest.fixture
            def broken():
                raise RuntimeError("setup broke")

            def test_error(broken):
                pass
            "#,
        ),
    ])
}

/// `must_have` names attributes some element of pytest's own file carries,
/// so a comparison cannot pass because both sides dropped them.
fn compare(ini_extra: &str, args: &[&str], must_have: &[&str]) {
    for workers in ["1", "2", "4"] {
        let s = suite(ini_extra);
        let mut pargs = vec!["--junitxml=pytest.xml"];
        pargs.extend_from_slice(args);
        let mut rargs = vec!["-n", workers, "--junitxml=rpytest.xml"];
        rargs.extend_from_slice(args);
        let pair = Pair { pytest: run_pytest(&s, &pargs), rpytest: run_rpytest(&s, &rargs) };
        assert_clean_exit(&pair.rpytest);
        check(&pair, pair.pytest.code == pair.rpytest.code, "exit codes differ");
        let (p, r) = (skeleton(&s.join("pytest.xml")), skeleton(&s.join("rpytest.xml")));
        for attr in must_have {
            let found =
                p.iter().any(|(_, attrs, _)| attrs.contains_key(*attr) || attrs.get("name").is_some_and(|n| n == attr));
            check(&pair, found, &format!("baseline: pytest's junit file has no {attr:?}"));
        }
        if p != r {
            let first = p.iter().zip(&r).position(|(a, b)| a != b).unwrap_or(p.len().min(r.len()));
            panic!(
                "junit files differ at element {first} (-n {workers}, {args:?}, ini {ini_extra:?}):\n  pytest:  {:?}\n  rpytest: {:?}\n{}",
                p.get(first),
                r.get(first),
                pair.dump()
            );
        }
    }
}

#[test]
fn junit_matches_pytest_element_by_element() {
    // xunit2 (the default) has no room for record_xml_attribute's attributes.
    compare("", &[], &["build", "answer"]);
}

#[test]
fn junit_prefix_suite_name_and_family() {
    compare("junit_suite_name = my_suite\njunit_family = xunit1", &["--junitprefix=pre"], &["owner", "n", "build"]);
}

#[test]
fn junit_logging_all_captures_output_in_the_file() {
    compare("junit_logging = all", &[], &["build"]);
}
