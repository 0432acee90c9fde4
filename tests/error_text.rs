//! Issue #23, defect 9: text pytest shows must not be lost on its way
//! through rpytest. A string UTF-8 cannot encode (a lone surrogate) in a
//! failure message, captured output, a user property, a warning or a node
//! id crashed the worker, losing the message; it now travels as its
//! escape (`\udcff`). And the warnings pytest's cache plugin gives when it
//! cannot write are counted and shown as pytest shows them.

mod common;
use common::*;

const SURROGATES: &str = "\
import sys, warnings
import pytest

def test_assert_message():
    assert 0, 'lone surrogate \\udcff'

def test_property(record_property):
    record_property('note', 'lone surrogate \\udcff')
    assert 0

def test_output():
    sys.stdout.write('out \\udcff\\n')
    sys.stderr.write('err \\udcff\\n')
    assert 0

def test_warning():
    warnings.warn('lone surrogate \\udcff')

@pytest.mark.parametrize('x', ['\\udcff'], ids=['\\udcff'])
def test_id(x):
    pass
";

#[test]
fn a_lone_surrogate_keeps_its_message_and_the_outcomes_are_pytests() {
    // The ini keeps the surrogate in the node id (pytest escapes ids otherwise).
    let ini = "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n";
    let suite = Suite::new(&[("pytest.ini", ini), ("test_surrogates.py", SURROGATES)]);
    let pytest = run_pytest(&suite, &["-v", "--junitxml=pytest.xml"]);
    // The second warning: record_property under junit's default xunit2.
    assert_eq!(pytest.final_line.as_deref(), Some("3 failed, 2 passed, 2 warnings"), "{}", pytest.dump());
    for codec in ["msgpack", "fallback"] {
        let env: &[(&str, &str)] = if codec == "fallback" { &[("RPYTEST_NO_MSGPACK", "1")] } else { &[] };
        let r = run_rpytest_env(&suite, &["-n", "2", "-v", "--junitxml=junit.xml"], env);
        assert_clean_exit(&r);
        assert_eq!((r.code, &r.final_line), (pytest.code, &pytest.final_line), "{codec}\n{}", r.dump());
        assert!(!r.stdout.contains("crashed"), "{codec}\n{}", r.dump());
        // pytest writes the surrogate as a raw byte where it can; over the
        // wire (UTF-8) it is its escape.
        for (nodeid, word) in [
            ("test_surrogates.py::test_assert_message", "FAILED"),
            ("test_surrogates.py::test_property", "FAILED"),
            ("test_surrogates.py::test_output", "FAILED"),
            ("test_surrogates.py::test_warning", "PASSED"),
            ("test_surrogates.py::test_id[\\udcff]", "PASSED"),
        ] {
            assert_eq!(r.words(nodeid), [word], "{codec}: {nodeid}\n{}", r.dump());
        }
        let failures = section(&r.stdout, "FAILURES").unwrap_or_default();
        assert!(failures.contains("E       AssertionError: lone surrogate \\udcff"), "{codec}\n{}", r.dump());
        let warnings = section(&r.stdout, "warnings summary").unwrap_or_default();
        assert!(warnings.contains("UserWarning: lone surrogate \\udcff"), "{codec}\n{}", r.dump());
        let junit = std::fs::read_to_string(suite.join("junit.xml")).expect("junit written");
        assert!(junit.contains("lone surrogate \\udcff"), "{codec}\n{junit}");
        assert_eq!(parse_junit(&suite.join("junit.xml")).failures, "3", "{codec}");
    }
}

/// pytest's cache plugin warns twice (PytestCacheWarning) when it cannot
/// write `.pytest_cache` at the session's end, and counts both in its last
/// line. The rootdir is made unwritable for the cache by a file where its
/// directory goes: a read-only directory would not stop root, and this
/// stops everyone alike (pytest's warnings are the same either way).
#[test]
fn the_cache_warnings_of_an_unwritable_rootdir_are_counted_and_shown_like_pytests() {
    let tests = "def test_passes():\n    pass\n\ndef test_fails():\n    assert 0\n";
    let suite = Suite::new(&[("test_cache.py", tests), (".pytest_cache", "not a directory\n")]);
    let py = python().display().to_string();
    let pytest = run_command(&python(), &["-m".into(), "pytest".into()], suite.path(), &[]);
    let args: Vec<String> = ["--python", &py, "--color=no", "-n", "2"].iter().map(|s| s.to_string()).collect();
    let rpytest = run_command(&rpytest_bin(), &args, suite.path(), &[]);
    let pair = Pair { pytest, rpytest };
    check(&pair, pair.pytest.final_line.as_deref() == Some("1 failed, 1 passed, 2 warnings"), "pytest's counts");
    check(&pair, !pair.rpytest.timed_out, "rpytest hung");
    check(&pair, pair.rpytest.final_line == pair.pytest.final_line, "the counts differ");
    check(&pair, pair.rpytest.code == pair.pytest.code, "the exit codes differ");
    let warned = |r: &RunResult| {
        let summary = section(&r.stdout, "warnings summary").unwrap_or_default();
        summary.matches("PytestCacheWarning: could not create cache path").count()
    };
    check(&pair, warned(&pair.pytest) == 2 && warned(&pair.rpytest) == 2, "the warnings summaries differ");
}
