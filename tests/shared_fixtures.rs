//! `shared_session_fixtures`: a named session fixture is set up once in the
//! zygote, before the fork, inherited by every worker (replacements too),
//! and torn down once after the last worker, with pytest's own reporting of
//! setup and teardown errors. Without the setting, each worker sets it up,
//! as under pytest-xdist.

mod common;
use common::*;

/// A session fixture that logs its setup and teardown (with the pid) and
/// yields a random token; each test logs the token it saw and its pid.
const CONFTEST: &str = r#"
    import os, uuid, pytest

    HERE = os.path.dirname(__file__)

    def log(name, line):
        with open(os.path.join(HERE, name), "a") as f:
            f.write(line + "\n")

    @pytest.fixture(scope="session")
    def token():
        log("fixture.log", f"setup {os.getpid()}")
        yield uuid.uuid4().hex
        log("fixture.log", f"teardown {os.getpid()}")
"#;

fn token_tests(count: usize, sleep: f64) -> String {
    let mut text = String::from("import os, time\nfrom conftest import log\n");
    for i in 0..count {
        text += &format!(
            "\ndef test_{i:02}(token):\n    time.sleep({sleep})\n    log('seen.log', f'{{token}} {{os.getpid()}}')\n"
        );
    }
    text
}

fn lines(suite: &Suite, name: &str) -> Vec<String> {
    std::fs::read_to_string(suite.join(name)).unwrap_or_default().lines().map(str::to_string).collect()
}

fn count_starting(lines: &[String], word: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(word)).count()
}

/// The distinct values of column `column` (0: token, 1: pid) of seen.log.
fn seen(suite: &Suite, column: usize) -> std::collections::BTreeSet<String> {
    lines(suite, "seen.log").iter().map(|l| l.split(' ').nth(column).unwrap().to_string()).collect()
}

const SHARE_TOKEN: &[(&str, &str)] = &[("RPYTEST_SHARED_SESSION_FIXTURES", "token")];

#[test]
fn a_shared_fixture_is_set_up_once_for_all_workers() {
    let tests = token_tests(40, 0.02);
    let suite = Suite::new(&[
        ("pyproject.toml", "[tool.rpytest]\nshared_session_fixtures = [\"token\"]\n"),
        ("conftest.py", CONFTEST),
        ("test_token.py", &tests),
    ]);
    let r = run_rpytest(&suite, &["-n", "4", "-v"]);
    assert_clean_exit(&r);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("40 passed")), "{}", r.dump());
    let log = lines(&suite, "fixture.log");
    assert_eq!((count_starting(&log, "setup"), count_starting(&log, "teardown")), (1, 1), "{log:?}\n{}", r.dump());
    assert_eq!(seen(&suite, 0).len(), 1, "every test saw the same token\n{}", r.dump());
    assert!(seen(&suite, 1).len() > 1, "the tests ran on several workers\n{}", r.dump());
    // Set up and torn down in the zygote, which runs no test.
    let pid = |line: &String| line.split(' ').nth(1).unwrap().to_string();
    assert_eq!(pid(&log[0]), pid(&log[1]));
    assert!(!seen(&suite, 1).contains(&pid(&log[0])), "{}", r.dump());
}

#[test]
fn without_the_setting_each_worker_sets_it_up_as_under_xdist() {
    let tests = token_tests(40, 0.05);
    let suite = Suite::new(&[("conftest.py", CONFTEST), ("test_token.py", &tests)]);
    let r = run_rpytest(&suite, &["-n", "4"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let log = lines(&suite, "fixture.log");
    let workers = seen(&suite, 1).len();
    assert_eq!(workers, 4, "all four workers ran tests\n{}", r.dump());
    assert_eq!((count_starting(&log, "setup"), count_starting(&log, "teardown")), (4, 4), "{log:?}");
    assert_eq!(seen(&suite, 0).len(), 4, "one token per worker");
}

#[test]
fn a_replacement_worker_inherits_the_shared_value() {
    let tests = token_tests(10, 0.0);
    let suite = Suite::new(&[
        ("conftest.py", CONFTEST),
        ("test_a_crash.py", "import os\nfrom conftest import log\n\ndef test_crash(token):\n    log('seen.log', f'{token} {os.getpid()}')\n    os._exit(1)\n"),
        ("test_token.py", &tests),
    ]);
    let r = run_rpytest_env(&suite, &["-n", "1", "-v"], SHARE_TOKEN);
    assert_clean_exit(&r);
    assert_eq!(r.final_line.as_deref(), Some("1 failed, 10 passed"), "{}", r.dump());
    assert_eq!(seen(&suite, 1).len(), 2, "the crashed worker and its replacement\n{}", r.dump());
    assert_eq!(seen(&suite, 0).len(), 1, "the replacement saw the same token\n{}", r.dump());
    assert_eq!(count_starting(&lines(&suite, "fixture.log"), "setup"), 1, "{}", r.dump());
}

#[test]
fn a_failing_shared_setup_errors_every_test_that_uses_it_as_pytest_does() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            r#"
            import pytest

            @pytest.fixture(scope="session")
            def database():
                raise RuntimeError("cannot reach the database")
            "#,
        ),
        (
            "test_db.py",
            "def test_a(database):\n    pass\n\ndef test_b():\n    pass\n\ndef test_c(database):\n    pass\n",
        ),
    ]);
    let pytest = run_pytest(&suite, &["-v"]);
    let rpytest = run_rpytest_env(&suite, &["-n", "2"], &[("RPYTEST_SHARED_SESSION_FIXTURES", "database")]);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    check(&pair, pair.rpytest.code == 1, "exit code 1");
    check(&pair, pair.rpytest.final_line.as_deref() == Some("1 passed, 2 errors"), "counts");
    let errors = |r: &RunResult| section(&r.stdout, "ERRORS");
    check(&pair, errors(&pair.pytest).is_some(), "pytest has an ERRORS section");
    check(&pair, errors(&pair.pytest) == errors(&pair.rpytest), "the ERRORS sections are pytest's");
}

#[test]
fn a_failing_shared_teardown_is_reported_as_pytest_reports_it() {
    let suite = Suite::new(&[
        (
            "conftest.py",
            r#"
            import pytest

            @pytest.fixture(scope="session")
            def database():
                yield "db"
                raise RuntimeError("cannot drop the database")
            "#,
        ),
        (
            "test_db.py",
            "def test_a(database):\n    pass\n\ndef test_b():\n    pass\n\ndef test_c(database):\n    pass\n",
        ),
    ]);
    let pytest = run_pytest(&suite, &["-v", "--junitxml=junit.xml"]);
    let pytest_junit = parse_junit(&suite.join("junit.xml"));
    let rpytest = run_rpytest_env(
        &suite,
        &["-n", "2", "--junitxml=junit.xml"],
        &[("RPYTEST_SHARED_SESSION_FIXTURES", "database")],
    );
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    check(&pair, pair.rpytest.final_line.as_deref() == Some("3 passed, 1 error"), "counts");
    let errors = |r: &RunResult| section(&r.stdout, "ERRORS");
    check(&pair, errors(&pair.pytest).is_some_and(|s| s.contains("ERROR at teardown of test_c")), "pytest's wording");
    check(&pair, errors(&pair.pytest) == errors(&pair.rpytest), "the ERRORS sections are pytest's");
    assert_eq!(pytest_junit, parse_junit(&suite.join("junit.xml")), "junit files differ");
}

#[test]
fn an_unselected_shared_fixture_is_not_set_up() {
    let tests = token_tests(4, 0.0);
    let suite = Suite::new(&[
        ("conftest.py", CONFTEST),
        ("test_token.py", &tests),
        ("test_plain.py", "def test_plain():\n    pass\n"),
    ]);
    let r = run_rpytest_env(&suite, &["-n", "2", "-k", "plain"], SHARE_TOKEN);
    assert_eq!((r.code, r.final_line.as_deref()), (0, Some("1 passed, 4 deselected")), "{}", r.dump());
    assert!(lines(&suite, "fixture.log").is_empty(), "set up although no selected test uses it");
}

#[test]
fn a_fixture_that_cannot_be_shared_is_a_usage_error() {
    let cases = [
        ("@pytest.fixture\ndef conn():\n    return 1\n\n@pytest.fixture(scope='session')\ndef database(conn):\n    return 2\n", "fixture 'conn' (needed by database) is function-scoped"),
        ("@pytest.fixture(scope='module')\ndef database():\n    return 2\n", "fixture 'database' is module-scoped"),
        ("@pytest.fixture(scope='session', params=[1, 2])\ndef database(request):\n    return request.param\n", "is parametrized"),
    ];
    for (conftest, message) in cases {
        let suite = Suite::new(&[
            ("conftest.py", &format!("import pytest\n\n{conftest}")),
            ("test_db.py", "def test_a(database):\n    pass\n"),
        ]);
        let r = run_rpytest_env(&suite, &["-n", "2"], &[("RPYTEST_SHARED_SESSION_FIXTURES", "database")]);
        assert_eq!(r.code, 4, "{}", r.dump());
        let output = format!("{}{}", r.stdout, r.stderr);
        assert!(output.contains("'database' cannot be shared") && output.contains(message), "{}", r.dump());
    }
}

#[test]
fn spawned_workers_cannot_share_and_say_so_once() {
    let tests = token_tests(20, 0.05);
    let suite = Suite::new(&[("conftest.py", CONFTEST), ("test_token.py", &tests)]);
    let r = run_rpytest_env(&suite, &["-n", "2", "--worker-start", "spawn"], SHARE_TOKEN);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.stderr.matches("cannot share session fixtures (token)").count(), 1, "{}", r.dump());
    let workers = seen(&suite, 1).len();
    assert_eq!(count_starting(&lines(&suite, "fixture.log"), "setup"), workers, "{}", r.dump());
}
