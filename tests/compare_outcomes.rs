//! rpytest must report exactly what `python -m pytest` reports (DESIGN.md,
//! invariants 1, 2 and 6).
//!
//! Each suite below is a small generated pytest project exercising one area
//! of pytest (fixtures, parametrize, unittest, markers, doctest, conftest
//! hooks, selection, failure rendering, junitxml, ...). Most are run through
//! plain pytest and through rpytest with `-n 1`, `-n 2` and `-n 4`, and the
//! per-test outcomes, exit code and final counts line must be identical.
//! Where plain pytest cannot be the oracle (xdist worker ids, a test that
//! kills its worker) the expected rpytest behaviour is asserted directly.

mod common;
use common::*;

/// Generate `n1`, `n2`, `n4` comparison tests (in a module named after the
/// suite) for one suite and one set of pytest arguments.
macro_rules! compare_per_worker_count {
    ($name:ident, $suite:expr, $args:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn n1() {
                assert_same(&$suite, $args, "1");
            }
            #[test]
            fn n2() {
                assert_same(&$suite, $args, "2");
            }
            #[test]
            fn n4() {
                assert_same(&$suite, $args, "4");
            }
        }
    };
}

// ---------------------------------------------------------------- suites ---

fn trivial_suite() -> Suite {
    Suite::new(&[
        (
            "test_one.py",
            r#"
            def test_a():
                assert 1 + 1 == 2

            def test_b():
                pass

            def test_c():
                assert "x" in "xyz"
            "#,
        ),
        (
            "test_two.py",
            r#"
            def test_d():
                pass

            def test_e():
                assert [1, 2] == [1, 2]
            "#,
        ),
    ])
}

fn fixture_scopes_suite() -> Suite {
    Suite::new(&[
        (
            "conftest.py",
            r#"
            import pytest

            EVENTS = []

            @pytest.fixture(scope="session")
            def session_res():
                EVENTS.append("session-setup")
                yield {"scope": "session"}
                EVENTS.append("session-teardown")

            @pytest.fixture
            def events():
                return EVENTS
            "#,
        ),
        (
            "test_scopes.py",
            r#"
            import pytest

            @pytest.fixture(scope="module")
            def module_res(session_res):
                yield {"scope": "module", "parent": session_res}

            @pytest.fixture(scope="class")
            def class_res(module_res):
                return {"scope": "class", "parent": module_res}

            @pytest.fixture
            def func_res(class_res, events):
                events.append("func-setup")
                yield {"scope": "function", "parent": class_res}
                events.append("func-teardown")

            def test_chain(func_res):
                assert func_res["parent"]["parent"]["parent"]["scope"] == "session"

            def test_session_set_up_once_per_process(session_res, events):
                assert events.count("session-setup") == 1

            def test_function_teardown_ran_before(func_res, events):
                # every earlier function setup in this process was torn down
                assert events.count("func-setup") == events.count("func-teardown") + 1

            @pytest.fixture(scope="class")
            def counter():
                return {"n": 0}

            class TestClassScope:

                def test_first(self, counter, class_res):
                    counter["n"] += 1
                    assert counter["n"] >= 1

                def test_second(self, counter, func_res):
                    counter["n"] += 1
                    assert counter["n"] >= 1

            @pytest.fixture
            def broken_setup():
                raise RuntimeError("fixture setup failed")

            @pytest.fixture
            def broken_teardown():
                yield 42
                raise RuntimeError("fixture teardown failed")

            def test_uses_broken_setup(broken_setup):
                pass

            def test_passes_then_teardown_fails(broken_teardown):
                assert broken_teardown == 42

            def test_fails_then_teardown_fails(broken_teardown):
                assert broken_teardown == 0
            "#,
        ),
        (
            "test_module_setup_error.py",
            r#"
            import pytest

            @pytest.fixture(scope="module")
            def broken_module():
                raise ValueError("module fixture cannot set up")

            def test_one(broken_module):
                pass

            def test_two(broken_module):
                pass

            def test_three_independent():
                pass
            "#,
        ),
        ("pkg/__init__.py", ""),
        (
            "pkg/conftest.py",
            r#"
            import pytest

            @pytest.fixture(scope="package")
            def package_res(session_res):
                yield {"scope": "package"}
            "#,
        ),
        (
            "pkg/test_in_pkg_a.py",
            r#"
            def test_pkg_a(package_res):
                assert package_res["scope"] == "package"
            "#,
        ),
        (
            "pkg/test_in_pkg_b.py",
            r#"
            def test_pkg_b(package_res, session_res):
                assert session_res["scope"] == "session"

            def test_pkg_b_fails(package_res):
                assert package_res["scope"] == "module"
            "#,
        ),
    ])
}

/// Higher-scoped fixtures whose teardown fails: pytest attaches the error to
/// the last test using the scope, which depends on which worker runs what.
/// Compared with one worker only (see `higher_scope_teardown_error_*`).
fn scoped_teardown_error_suite() -> Suite {
    Suite::new(&[(
        "test_scoped_teardown.py",
        r#"
        import pytest

        @pytest.fixture(scope="module")
        def module_res():
            yield "m"
            raise RuntimeError("module teardown failed")

        @pytest.fixture(scope="session")
        def session_res():
            yield "s"
            raise RuntimeError("session teardown failed")

        def test_a(module_res):
            pass

        def test_b(module_res, session_res):
            pass

        def test_c(session_res):
            pass
        "#,
    )])
}

fn parametrize_suite() -> Suite {
    Suite::new(&[(
        "test_params.py",
        r#"
        import pytest

        @pytest.mark.parametrize("a,b,expected", [(1, 2, 3), (2, 2, 4), (5, 5, 11)])
        def test_add(a, b, expected):
            assert a + b == expected

        @pytest.mark.parametrize("word", ["alpha", "beta"], ids=["first word", "second"])
        def test_ids_list(word):
            assert word.isalpha()

        def idfn(val):
            return f"v{val}"

        @pytest.mark.parametrize("n", [1, 2, 3], ids=idfn)
        def test_ids_function(n):
            assert n < 3

        @pytest.mark.parametrize("x", [
            pytest.param(1, id="plain"),
            pytest.param(0, id="expected-to-fail", marks=pytest.mark.xfail(reason="zero")),
            pytest.param(2, id="skipped", marks=pytest.mark.skip(reason="skip this one")),
        ])
        def test_param_marks(x):
            assert 1 / x

        @pytest.mark.parametrize("x", [1, 2])
        @pytest.mark.parametrize("y", ["a", "b"])
        def test_stacked(x, y):
            assert (x, y) != (2, "b")

        @pytest.fixture
        def doubled(request):
            return request.param * 2

        @pytest.mark.parametrize("doubled", [1, 3], indirect=True)
        def test_indirect(doubled):
            assert doubled % 2 == 0

        @pytest.fixture(params=["x", "y"])
        def fixture_param(request):
            return request.param

        def test_fixture_params(fixture_param):
            assert fixture_param in "xy"

        class TestParamClass:
            @pytest.mark.parametrize("v", [None, "", 0])
            def test_falsy(self, v):
                assert not v
        "#,
    )])
}

fn classes_suite() -> Suite {
    Suite::new(&[(
        "test_classes.py",
        r#"
        import pytest

        class TestBasic:
            def test_one(self):
                assert True

            def test_two(self):
                assert 2 * 2 == 5

        class TestSetupMethods:
            @classmethod
            def setup_class(cls):
                cls.shared = ["class"]

            def setup_method(self, method):
                self.value = method.__name__

            def teardown_method(self, method):
                self.value = None

            def test_setup_method_ran(self):
                assert self.value == "test_setup_method_ran"

            def test_setup_class_ran(self):
                assert self.shared == ["class"]

        class TestOuter:
            class TestInner:
                def test_nested(self):
                    pass

        class TestBrokenSetupClass:
            @classmethod
            def setup_class(cls):
                raise RuntimeError("setup_class exploded")

            def test_never_runs_a(self):
                pass

            def test_never_runs_b(self):
                pass

        class NotCollected:
            def test_ignored(self):
                assert False
        "#,
    )])
}

fn unittest_suite() -> Suite {
    Suite::new(&[(
        "test_unit.py",
        r#"
        import unittest

        class TestWithSetUpClass(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                cls.resource = {"ready": True}

            @classmethod
            def tearDownClass(cls):
                cls.resource = None

            def setUp(self):
                self.per_test = 1

            def test_resource(self):
                self.assertTrue(self.resource["ready"])

            def test_per_test(self):
                self.assertEqual(self.per_test, 1)

            def test_fails(self):
                self.assertEqual("a", "b")

            def test_skip_test(self):
                self.skipTest("skipped from inside")

            @unittest.skip("decorated skip")
            def test_decorated_skip(self):
                pass

            @unittest.expectedFailure
            def test_expected_failure(self):
                self.assertEqual(1, 2)

            @unittest.expectedFailure
            def test_unexpected_success(self):
                pass

            def test_error(self):
                raise KeyError("boom")

        class TestBrokenSetUpClass(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                raise RuntimeError("setUpClass failed")

            def test_a(self):
                pass

            def test_b(self):
                pass
        "#,
    )])
}

/// pytest 9 reports unittest subTest results itself (`N subtests passed`).
fn unittest_subtests_suite() -> Suite {
    Suite::new(&[(
        "test_subtests.py",
        r#"
        import unittest

        class TestSub(unittest.TestCase):
            def test_all_pass(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertGreaterEqual(i, 0)

            def test_one_fails(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertLess(i, 2)
        "#,
    )])
}

fn markers_suite() -> Suite {
    Suite::new(&[
        (
            "test_markers.py",
            r#"
            import sys
            import pytest

            @pytest.mark.skip(reason="unconditional")
            def test_skip():
                pass

            @pytest.mark.skipif(sys.version_info > (2, 0), reason="always true")
            def test_skipif_true():
                pass

            @pytest.mark.skipif(False, reason="never")
            def test_skipif_false():
                pass

            @pytest.mark.xfail(reason="known bug")
            def test_xfail():
                assert 0

            @pytest.mark.xfail(reason="fixed already")
            def test_xpass():
                pass

            @pytest.mark.xfail(strict=True, reason="strict")
            def test_xpass_strict():
                pass

            @pytest.mark.xfail(raises=ZeroDivisionError)
            def test_xfail_raises_matching():
                1 / 0

            @pytest.mark.xfail(raises=ZeroDivisionError)
            def test_xfail_raises_other():
                raise KeyError("wrong exception")

            @pytest.mark.xfail(run=False, reason="would hang")
            def test_xfail_not_run():
                while True:
                    pass

            def test_imperative_skip():
                pytest.skip("skipped imperatively")

            def test_imperative_xfail():
                pytest.xfail("xfailed imperatively")

            def test_plain_pass():
                pass
            "#,
        ),
        (
            "test_module_skipped.py",
            r#"
            import pytest
            pytestmark = pytest.mark.skip(reason="whole module")

            def test_x():
                pass

            def test_y():
                pass
            "#,
        ),
        (
            "test_importorskip.py",
            r#"
            import pytest
            pytest.importorskip("module_that_does_not_exist_xyz")

            def test_never():
                pass
            "#,
        ),
    ])
}

fn doctest_suite() -> Suite {
    Suite::new(&[
        (
            "mathlib.py",
            r#"
            def add(a, b):
                """
                >>> add(1, 2)
                3
                """
                return a + b

            def sub(a, b):
                """
                >>> sub(5, 3)
                3
                """
                return a - b

            def no_doctest():
                return None
            "#,
        ),
        (
            "test_regular.py",
            r#"
            def helper():
                """
                >>> helper()
                'ok'
                """
                return "ok"

            def test_regular():
                assert helper() == "ok"
            "#,
        ),
    ])
}

fn builtin_fixtures_suite() -> Suite {
    Suite::new(&[(
        "test_builtins.py",
        r#"
        import os
        import sys
        import logging

        def test_capsys(capsys):
            print("to stdout")
            sys.stderr.write("to stderr\n")
            out, err = capsys.readouterr()
            assert out == "to stdout\n"
            assert err == "to stderr\n"

        def test_capfd(capfd):
            os.write(1, b"fd one\n")
            os.write(2, b"fd two\n")
            out, err = capfd.readouterr()
            assert out == "fd one\n"
            assert err == "fd two\n"

        def test_tmp_path(tmp_path):
            p = tmp_path / "hello.txt"
            p.write_text("content")
            assert p.read_text() == "content"
            assert list(tmp_path.iterdir()) == [p]

        def test_tmp_path_factory(tmp_path_factory):
            d = tmp_path_factory.mktemp("data")
            assert d.is_dir()

        def test_monkeypatch_env(monkeypatch):
            monkeypatch.setenv("RPYTEST_SUITE_VAR", "set")
            assert os.environ["RPYTEST_SUITE_VAR"] == "set"

        def test_monkeypatch_undone():
            assert "RPYTEST_SUITE_VAR" not in os.environ

        def test_monkeypatch_setattr(monkeypatch):
            monkeypatch.setattr(os, "getcwd", lambda: "/patched")
            assert os.getcwd() == "/patched"

        def test_caplog(caplog):
            logging.getLogger("suite").warning("warned")
            assert "warned" in caplog.text

        def test_prints_and_fails():
            print("captured output of a failing test")
            assert False

        def test_request_node(request):
            assert request.node.name == "test_request_node"
        "#,
    )])
}

fn conftest_hooks_suite() -> Suite {
    Suite::new(&[
        (
            "conftest.py",
            r#"
            import pytest

            def pytest_configure(config):
                config.addinivalue_line("markers", "hookskip: skipped by a runtest_setup hook")

            def pytest_collection_modifyitems(config, items):
                keep = [i for i in items if "deselectme" not in i.name]
                dropped = [i for i in items if "deselectme" in i.name]
                if dropped:
                    config.hook.pytest_deselected(items=dropped)
                keep.reverse()
                items[:] = keep

            def pytest_runtest_setup(item):
                if item.get_closest_marker("hookskip"):
                    pytest.skip("skipped by pytest_runtest_setup")

            @pytest.fixture
            def from_conftest():
                return "conftest value"
            "#,
        ),
        (
            "test_hooks.py",
            r#"
            import pytest

            def test_uses_conftest_fixture(from_conftest):
                assert from_conftest == "conftest value"

            def test_deselectme_please():
                assert False, "should have been deselected"

            @pytest.mark.hookskip
            def test_skipped_by_hook():
                assert False

            def test_plain():
                pass

            def test_fails(from_conftest):
                assert from_conftest == "other"
            "#,
        ),
        (
            "sub/conftest.py",
            r#"
            import pytest

            @pytest.fixture
            def from_conftest():
                return "overridden in sub"
            "#,
        ),
        (
            "sub/test_sub.py",
            r#"
            def test_override(from_conftest):
                assert from_conftest == "overridden in sub"
            "#,
        ),
    ])
}

fn selection_suite() -> Suite {
    Suite::new(&[
        (
            "pytest.ini",
            r#"
            [pytest]
            markers =
                slow: slow tests
                fast: fast tests
            "#,
        ),
        (
            "test_sel_a.py",
            r#"
            import pytest

            @pytest.mark.slow
            def test_slow_one():
                pass

            @pytest.mark.fast
            def test_fast_one():
                pass

            @pytest.mark.fast
            def test_fast_failing():
                assert 0

            def test_unmarked_alpha():
                pass

            class TestGroup:
                @pytest.mark.slow
                def test_slow_in_class(self):
                    pass

                def test_alpha_in_class(self):
                    pass
            "#,
        ),
        (
            "test_sel_b.py",
            r#"
            def test_beta():
                pass

            def test_alpha_beta():
                pass
            "#,
        ),
    ])
}

fn failing_suite() -> Suite {
    Suite::new(&[
        (
            "test_fail_a.py",
            r#"
            import pytest

            def helper(x):
                return x * 2

            def test_assert_compare():
                value = helper(21)
                assert value == 43

            def test_assert_dict():
                assert {"a": 1, "b": 2} == {"a": 1, "b": 3}

            def test_raises_exception():
                raise ValueError("bad value")

            def test_prints_then_fails():
                print("some stdout")
                assert "needle" in "haystack"

            def test_passes():
                pass

            class TestInClass:
                def test_method_fails(self):
                    assert [1, 2, 3] == [1, 2, 4]
            "#,
        ),
        (
            "test_fail_b.py",
            r#"
            import pytest

            @pytest.fixture
            def setup_breaks():
                raise OSError("setup broke")

            def test_setup_error(setup_breaks):
                pass

            def test_deep():
                def inner(n):
                    if n == 0:
                        raise RuntimeError("bottom")
                    inner(n - 1)
                inner(3)
            "#,
        ),
    ])
}

fn junit_suite() -> Suite {
    Suite::new(&[(
        "test_junit.py",
        r#"
        import pytest

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown")

        def test_pass():
            pass

        def test_fail():
            assert 0

        def test_error_setup(request):
            request.getfixturevalue("missing_fixture_xyz")

        def test_teardown_error(bad_teardown):
            pass

        @pytest.mark.skip(reason="skip")
        def test_skip():
            pass

        @pytest.mark.xfail
        def test_xfail():
            assert 0

        @pytest.mark.xfail
        def test_xpass():
            pass

        @pytest.mark.parametrize("x", [1, 2])
        def test_param(x):
            assert x == 1

        class TestK:
            def test_method(self, record_property):
                record_property("key", "value")
        "#,
    )])
}

fn warnings_suite() -> Suite {
    Suite::new(&[(
        "test_warn.py",
        r#"
        import warnings
        import pytest

        def test_user_warning():
            warnings.warn("careful", UserWarning)

        def test_deprecation():
            warnings.warn("old api", DeprecationWarning)

        def test_two_warnings():
            warnings.warn("first", UserWarning)
            warnings.warn("second", RuntimeWarning)

        @pytest.mark.filterwarnings("ignore::UserWarning")
        def test_filtered():
            warnings.warn("hidden", UserWarning)

        def test_no_warning():
            pass
        "#,
    )])
}

/// Many tests over several files: nothing lost, nothing duplicated.
fn many_tests_suite() -> Suite {
    let mut files: Vec<(String, String)> = Vec::new();
    for f in 0..4 {
        files.push((
            format!("test_many_{f}.py"),
            format!(
                "import pytest\n\n@pytest.mark.parametrize('i', range(75))\ndef test_n(i):\n    assert i % 37 != {f}\n\n\
                 @pytest.mark.parametrize('i', range(5))\n@pytest.mark.skipif('i == 3', reason='three')\ndef test_s(i):\n    pass\n"
            ),
        ));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Suite::new(&refs)
}

/// Node ids that are easy to mangle on a round trip through a protocol.
fn odd_nodeids_suite() -> Suite {
    Suite::new(&[
        (
            "test_odd_ids.py",
            r#"
            import pytest

            @pytest.mark.parametrize("v", ["ünïcödé", "日本", "a::b", "[x]", "sp ace", "tab\there", "new\nline", ""])
            def test_strings(v):
                assert isinstance(v, str)

            @pytest.mark.parametrize("v", [b"bytes", 1.5, None, (1, 2), {"k": 1}, object()])
            def test_objects(v):
                pass

            @pytest.mark.parametrize("v", [1, 1, 1])
            def test_duplicate_values(v):
                pass

            @pytest.mark.parametrize("v", [1, 2], ids=["ἀλφα", "same::id"])
            def test_explicit_ids(v):
                assert v == 1
            "#,
        ),
        ("deep/__init__.py", ""),
        ("deep/er/__init__.py", ""),
        (
            "deep/er/test_nested_pkg.py",
            r#"
            class TestDeep:
                def test_deep(self):
                    pass
            "#,
        ),
        (
            "other_dir/test_nested_pkg.py",
            r#"
            def test_same_basename_no_package():
                pass
            "#,
        ),
    ])
}

/// Configuration that changes what is collected and how it is judged.
fn ini_options_suite() -> Suite {
    Suite::new(&[
        (
            "pyproject.toml",
            r#"
            [tool.pytest.ini_options]
            python_files = ["check_*.py"]
            python_functions = ["check_*"]
            python_classes = ["Checks"]
            testpaths = ["checks"]
            xfail_strict = true
            markers = ["slow: slow"]
            "#,
        ),
        (
            "checks/check_things.py",
            r#"
            import pytest

            def check_one():
                pass

            def check_two():
                assert 0

            def test_not_collected():
                assert 0

            class Checks:
                def check_method(self):
                    pass

            @pytest.mark.xfail
            def check_xpass_is_strict_failure():
                pass
            "#,
        ),
        (
            "checks/test_ignored_by_python_files.py",
            r#"
            def check_never():
                assert 0
            "#,
        ),
        (
            "elsewhere/check_outside_testpaths.py",
            r#"
            def check_never():
                assert 0
            "#,
        ),
    ])
}

/// Tests that write to fd 1 and fail at the same time on different workers:
/// each failure must show its own output only.
fn capture_isolation_suite() -> Suite {
    let mut body = String::from("import os, sys, time\n\n");
    for i in 0..6 {
        body.push_str(&format!(
            "def test_out_{i}():\n    print('print-marker-{i}')\n    os.write(1, b'fd-marker-{i}\\n')\n    \
             os.write(2, b'err-marker-{i}\\n')\n    time.sleep(0.2)\n    print('late-marker-{i}')\n    assert False\n\n"
        ));
    }
    body.push_str("def test_passing_output():\n    print('passing-output-must-not-show')\n    os.write(1, b'passing-fd-output-must-not-show\\n')\n");
    Suite::new(&[("test_capture.py", &body)])
}

// ------------------------------------------------------- plain comparisons ---

compare_per_worker_count!(trivial, trivial_suite(), &[]);
compare_per_worker_count!(fixture_scopes, fixture_scopes_suite(), &[]);
compare_per_worker_count!(parametrize, parametrize_suite(), &[]);
compare_per_worker_count!(classes, classes_suite(), &[]);
compare_per_worker_count!(unittest_testcase, unittest_suite(), &[]);
// Subtest counts depend on subtest verbosity, and pytest runs with -v here.
compare_per_worker_count!(unittest_subtests, unittest_subtests_suite(), &["-o", "verbosity_subtests=1"]);
compare_per_worker_count!(skip_xfail_markers, markers_suite(), &[]);
compare_per_worker_count!(doctest_modules, doctest_suite(), &["--doctest-modules"]);
compare_per_worker_count!(builtin_fixtures, builtin_fixtures_suite(), &[]);
compare_per_worker_count!(conftest_hooks, conftest_hooks_suite(), &[]);
compare_per_worker_count!(select_by_keyword, selection_suite(), &["-k", "alpha and not beta"]);
compare_per_worker_count!(select_by_marker, selection_suite(), &["-m", "fast or slow"]);
compare_per_worker_count!(
    select_by_nodeid,
    selection_suite(),
    &["test_sel_a.py::TestGroup", "test_sel_b.py::test_beta"]
);
compare_per_worker_count!(failures_default_tb, failing_suite(), &[]);
compare_per_worker_count!(warnings_counted, warnings_suite(), &[]);
compare_per_worker_count!(many_tests, many_tests_suite(), &[]);
compare_per_worker_count!(odd_nodeids, odd_nodeids_suite(), &[]);
compare_per_worker_count!(ini_options, ini_options_suite(), &[]);

#[test]
fn capture_isolation_failure_sections_match_pytest() {
    let suite = capture_isolation_suite();
    let pytest = run_pytest(&suite, &["--tb=short"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "--tb=short"]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    let p = section(&pair.pytest.stdout, "FAILURES").map(|s| section_blocks(&s));
    let r = section(&pair.rpytest.stdout, "FAILURES").map(|s| section_blocks(&s));
    if p != r {
        panic!("MISMATCH: FAILURES blocks differ\npytest: {p:#?}\nrpytest: {r:#?}\n\n{}", pair.dump());
    }
    check(&pair, !pair.rpytest.stdout.contains("must-not-show"), "output of a passing test leaked to the terminal");
    check(&pair, pair.pytest.final_line == pair.rpytest.final_line, "final line differs");
}

#[test]
fn higher_scope_teardown_error_n1() {
    assert_same(&scoped_teardown_error_suite(), &[], "1");
}

/// With several workers, each worker tears its own module/session fixtures
/// down, so the error may be attached to one test per worker that used the
/// fixture (as under xdist). What must hold: every test still gets its call
/// outcome, at least one teardown error is reported, the run fails.
#[test]
fn higher_scope_teardown_error_n2_keeps_call_outcomes() {
    let suite = scoped_teardown_error_suite();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    for t in ["test_a", "test_b", "test_c"] {
        let words = r.words(&format!("test_scoped_teardown.py::{t}"));
        assert_eq!(words.first().map(String::as_str), Some("PASSED"), "{t}\n{}", r.dump());
    }
    assert!(r.counts().get("error").copied().unwrap_or(0) >= 1, "{}", r.dump());
    assert_eq!(r.code, 1, "{}", r.dump());
}

// ------------------------------------------------------------ spawn mode ---

#[test]
fn spawn_mode_fixture_scopes_n2() {
    assert_same_with(&fixture_scopes_suite(), &[], &["-n", "2", "--worker-start=spawn"]);
}

#[test]
fn spawn_mode_markers_n4() {
    assert_same_with(&markers_suite(), &[], &["-n", "4", "--worker-start", "spawn"]);
}

#[test]
fn explicit_fork_mode_trivial_n2() {
    assert_same_with(&trivial_suite(), &[], &["-n", "2", "--worker-start=fork"]);
}

// ------------------------------------------------- collection edge cases ---

fn collection_error_suite() -> Suite {
    Suite::new(&[
        (
            "test_good.py",
            r#"
            def test_fine():
                pass
            "#,
        ),
        (
            "test_broken_import.py",
            r#"
            import module_that_really_does_not_exist_abc

            def test_unreachable():
                pass
            "#,
        ),
    ])
}

#[test]
fn collection_error_exit_2_like_pytest() {
    let suite = collection_error_suite();
    let pair = assert_same(&suite, &[], "2");
    check(&pair, pair.pytest.code == 2, "pytest should exit 2 on a collection error");
}

#[test]
fn collection_error_shows_pytests_errors_section() {
    let suite = collection_error_suite();
    let pytest = run_pytest(&suite, &[]);
    let rpytest = run_rpytest(&suite, &["-n", "2"]);
    let pair = Pair { pytest, rpytest };
    let p = section(&pair.pytest.stdout, "ERRORS");
    let r = section(&pair.rpytest.stdout, "ERRORS");
    check(&pair, p.is_some(), "pytest printed no ERRORS section");
    check(&pair, p == r, "ERRORS section text differs");
    check(
        &pair,
        pair.rpytest.stdout.contains("Interrupted: 1 error during collection"),
        "rpytest does not show pytest's 'Interrupted' line",
    );
    check(&pair, summary_lines(&pair.pytest.stdout) == summary_lines(&pair.rpytest.stdout), "short summary differs");
}

#[test]
fn collection_error_with_continue_on_collection_errors() {
    let suite = collection_error_suite();
    assert_same(&suite, &["--continue-on-collection-errors"], "2");
}

#[test]
fn syntax_error_in_test_module_exit_2() {
    let suite =
        Suite::new(&[("test_ok.py", "def test_ok():\n    pass\n"), ("test_syntax.py", "def test_bad(:\n    pass\n")]);
    assert_same(&suite, &[], "2");
}

#[test]
fn no_tests_collected_exit_5() {
    let suite = Suite::new(&[("test_empty.py", "# no tests here\nx = 1\n")]);
    let pair = assert_same(&suite, &[], "2");
    check(&pair, pair.rpytest.code == 5, "expected exit 5");
}

#[test]
fn everything_deselected_exit_5() {
    let pair = assert_same(&trivial_suite(), &["-k", "no_test_matches_this"], "2");
    check(&pair, pair.rpytest.code == 5, "expected exit 5");
}

#[test]
fn nonexistent_path_argument_like_pytest() {
    let suite = trivial_suite();
    let pytest = run_pytest(&suite, &["no_such_dir/test_x.py"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "no_such_dir/test_x.py"]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(&pair, pair.pytest.code == pair.rpytest.code, "exit code differs");
    check(
        &pair,
        pair.rpytest.stderr.contains("no_such_dir") || pair.rpytest.stdout.contains("no_such_dir"),
        "path not mentioned",
    );
}

// --------------------------------------------------- failure rendering ---

/// Compare the FAILURES and ERRORS sections (as sorted per-test blocks), the
/// short summary (sorted) and the final line, with the given `--tb` style.
fn assert_same_failure_report(tb: &str) {
    let suite = failing_suite();
    let pytest = run_pytest(&suite, &[tb]);
    let rpytest = run_rpytest(&suite, &["-n", "2", tb]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    for name in ["FAILURES", "ERRORS"] {
        let p = section(&pair.pytest.stdout, name).map(|s| section_blocks(&s));
        let r = section(&pair.rpytest.stdout, name).map(|s| section_blocks(&s));
        if p != r {
            panic!(
                "MISMATCH: {name} section differs with {tb}\npytest blocks:\n{p:#?}\nrpytest blocks:\n{r:#?}\n\n{}",
                pair.dump()
            );
        }
    }
    check(
        &pair,
        summary_lines(&pair.pytest.stdout) == summary_lines(&pair.rpytest.stdout),
        "short test summary differs",
    );
    check(&pair, pair.pytest.final_line == pair.rpytest.final_line, "final line differs");
    check(&pair, pair.pytest.code == pair.rpytest.code, "exit code differs");
}

#[test]
fn failure_report_tb_long() {
    assert_same_failure_report("--tb=long");
}

#[test]
fn failure_report_tb_short() {
    assert_same_failure_report("--tb=short");
}

#[test]
fn failure_report_tb_line() {
    assert_same_failure_report("--tb=line");
}

#[test]
fn failure_report_tb_no() {
    assert_same_failure_report("--tb=no");
}

#[test]
fn failure_report_tb_native() {
    assert_same_failure_report("--tb=native");
}

// ---------------------------------------------------------- output modes ---

#[test]
fn quiet_mode_progress_letters_match_pytest() {
    let suite = markers_suite();
    let pytest = run_pytest(&suite, &["-q"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "-q"]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(
        &pair,
        progress_letters(&pair.pytest.stdout) == progress_letters(&pair.rpytest.stdout),
        "progress letters differ",
    );
    check(&pair, pair.pytest.final_line == pair.rpytest.final_line, "final line differs");
    check(&pair, pair.pytest.code == pair.rpytest.code, "exit code differs");
}

#[test]
fn verbose_mode_prefixes_worker_index() {
    let suite = parametrize_suite();
    let pytest = run_pytest(&suite, &["-v"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "-v"]);
    let pair = Pair { pytest, rpytest };
    assert_pair_same(&pair);
    for (id, ws) in &pair.rpytest.workers {
        check(&pair, ws.len() == 1 && ws.iter().all(|w| *w < 2), &format!("{id}: bad worker prefix {ws:?}"));
    }
    check(
        &pair,
        pair.rpytest.workers.len() == pair.rpytest.outcomes.len(),
        "some -v outcome lines lack the [worker K] prefix",
    );
}

#[test]
fn default_mode_has_session_header() {
    let suite = trivial_suite();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    assert!(r.stdout.contains("test session starts"), "{}", r.dump());
    assert!(r.stdout.contains("rootdir: "), "{}", r.dump());
    assert_eq!(r.final_line.as_deref(), Some("5 passed"), "{}", r.dump());
    assert_eq!(r.code, 0);
}

// --------------------------------------------------------------- junitxml ---

fn assert_same_junit(workers: &str) {
    let suite = junit_suite();
    let pxml = suite.join("pytest-junit.xml");
    let rxml = suite.join("rpytest-junit.xml");
    let pytest = run_pytest(&suite, &[&format!("--junitxml={}", pxml.display())]);
    let rpytest = run_rpytest(&suite, &["-n", workers, &format!("--junitxml={}", rxml.display())]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(&pair, pair.pytest.code == pair.rpytest.code, "exit code differs");
    check(&pair, rxml.exists(), "rpytest wrote no junit file");
    let (p, r) = (parse_junit(&pxml), parse_junit(&rxml));
    if p != r {
        panic!("MISMATCH: junit differs\npytest: {p:#?}\nrpytest: {r:#?}\n\n{}", pair.dump());
    }
}

#[test]
fn junitxml_same_as_pytest_n1() {
    assert_same_junit("1");
}

#[test]
fn junitxml_same_as_pytest_n2() {
    assert_same_junit("2");
}

#[test]
fn junitxml_same_as_pytest_n4() {
    assert_same_junit("4");
}

// ------------------------------------------------ xdist compatibility ---

fn worker_id_suite() -> Suite {
    let mut files: Vec<(String, String)> = vec![(
        "conftest.py".into(),
        r#"
        import os, json, pathlib

        def record(name, worker_id):
            out = pathlib.Path(__file__).parent / "worker_records"
            out.mkdir(exist_ok=True)
            (out / (name + ".json")).write_text(json.dumps({
                "fixture": worker_id,
                "env": os.environ.get("PYTEST_XDIST_WORKER"),
                "count": os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
                "pid": os.getpid(),
            }))
        "#
        .into(),
    )];
    let mut body = String::from("import time\nfrom conftest import record\n\n");
    for i in 0..8 {
        body.push_str(&format!(
            "def test_w{i}(worker_id):\n    time.sleep(0.1)\n    record('test_w{i}', worker_id)\n\n"
        ));
    }
    files.push(("test_workers.py".into(), body));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Suite::new(&refs)
}

fn worker_records(suite: &Suite) -> Vec<(String, serde_json::Value)> {
    let mut v = Vec::new();
    let dir = suite.join("worker_records");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().trim_end_matches(".json").to_string();
            let text = std::fs::read_to_string(e.path()).unwrap();
            v.push((name, serde_json::from_str(&text).unwrap()));
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn assert_worker_ids(workers: usize) {
    let suite = worker_id_suite();
    let r = run_rpytest(&suite, &["-n", &workers.to_string(), "-v"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    let recs = worker_records(&suite);
    assert_eq!(recs.len(), 8, "not every test recorded its worker\n{}", r.dump());
    for (name, rec) in &recs {
        let fixture = rec["fixture"].as_str().unwrap_or("");
        let env = rec["env"].as_str().unwrap_or("");
        assert_eq!(fixture, env, "{name}: worker_id fixture != PYTEST_XDIST_WORKER\n{recs:?}");
        let n: usize = fixture
            .strip_prefix("gw")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name}: worker_id {fixture:?} is not gwN\n{recs:?}"));
        assert!(n < workers, "{name}: {fixture} but only {workers} workers\n{recs:?}");
        assert_eq!(
            rec["count"].as_str(),
            Some(workers.to_string().as_str()),
            "{name}: PYTEST_XDIST_WORKER_COUNT\n{recs:?}"
        );
        // The `-v` prefix names the same worker.
        let prefix = r.workers.get(&format!("test_workers.py::{name}"));
        assert_eq!(
            prefix.map(|s| s.iter().copied().collect::<Vec<_>>()),
            Some(vec![n]),
            "{name}: -v prefix vs worker_id {fixture}\n{}",
            r.dump()
        );
    }
}

#[test]
fn worker_id_and_env_are_gw_n1() {
    assert_worker_ids(1);
}

#[test]
fn worker_id_and_env_are_gw_n2() {
    assert_worker_ids(2);
}

#[test]
fn worker_ids_use_more_than_one_worker_n2() {
    let suite = worker_id_suite();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    let ids: std::collections::BTreeSet<String> =
        worker_records(&suite).iter().map(|(_, rec)| rec["fixture"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(ids.len(), 2, "8 sleeping tests on -n 2 all ran on {ids:?}\n{}", r.dump());
}

#[test]
fn plain_pytest_worker_id_is_master() {
    // Documents the baseline: without rpytest there is no gwN.
    if skip_without_xdist("plain pytest's worker_id fixture") {
        return;
    }
    let suite = worker_id_suite();
    let r = run_pytest(&suite, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let recs = worker_records(&suite);
    assert!(recs.iter().all(|(_, rec)| rec["fixture"] == "master" && rec["env"].is_null()), "{recs:?}");
}

// ------------------------------------------------- crashing workers ---

fn crash_suite() -> Suite {
    Suite::new(&[
        (
            "test_crash.py",
            r#"
            import os
            import signal

            def test_before_exit():
                pass

            def test_os_exit():
                os._exit(3)

            def test_after_exit():
                pass

            def test_segfault():
                os.kill(os.getpid(), signal.SIGSEGV)

            def test_after_segfault():
                pass

            def test_fails_normally():
                assert 0
            "#,
        ),
        (
            "test_bystanders.py",
            r#"
            import pytest

            @pytest.mark.parametrize("i", range(6))
            def test_bystander(i):
                pass

            @pytest.mark.skip(reason="s")
            def test_skipped():
                pass
            "#,
        ),
    ])
}

const CRASHERS: [&str; 2] = ["test_crash.py::test_os_exit", "test_crash.py::test_segfault"];

fn assert_crash_handled(workers: &str, extra: &[&str]) {
    let suite = crash_suite();
    let mut pargs: Vec<String> = vec!["-v".into()];
    for c in CRASHERS {
        pargs.push(format!("--deselect={c}"));
    }
    let pref: Vec<&str> = pargs.iter().map(String::as_str).collect();
    let baseline = run_pytest(&suite, &pref);
    assert_eq!(baseline.code, 1, "baseline\n{}", baseline.dump());

    let mut rargs = vec!["-n", workers];
    rargs.extend_from_slice(extra);
    let rpytest = run_rpytest(&suite, &rargs);
    let pair = Pair { pytest: baseline, rpytest };
    assert_clean_exit(&pair.rpytest);
    for c in CRASHERS {
        check(&pair, pair.rpytest.words(c) == ["FAILED"], &format!("{c} should be reported FAILED exactly once"));
    }
    let mut others = pair.rpytest.outcomes.clone();
    for c in CRASHERS {
        others.remove(c);
    }
    check(&pair, others == pair.pytest.outcomes, "non-crashing tests changed outcome (or went missing)");
    check(&pair, pair.rpytest.code == 1, "exit code should be 1");
    let (pc, rc) = (pair.pytest.counts(), pair.rpytest.counts());
    check(&pair, rc.get("failed") == Some(&(pc["failed"] + 2)), "failed count should include the 2 crashes");
    check(&pair, rc.get("passed") == pc.get("passed"), "passed count differs");
    check(&pair, rc.get("skipped") == pc.get("skipped"), "skipped count differs");
}

#[test]
fn crashing_worker_n1() {
    assert_crash_handled("1", &[]);
}

#[test]
fn crashing_worker_n2() {
    assert_crash_handled("2", &[]);
}

#[test]
fn crashing_worker_n4() {
    assert_crash_handled("4", &[]);
}

#[test]
fn crashing_worker_spawn_n2() {
    assert_crash_handled("2", &["--worker-start=spawn"]);
}

#[test]
fn crash_is_named_in_failure_report() {
    let suite = crash_suite();
    let r = run_rpytest(&suite, &["-n", "2"]);
    assert_clean_exit(&r);
    let summary = summary_lines(&r.stdout);
    for c in CRASHERS {
        assert!(
            summary.iter().any(|l| l.starts_with("FAILED ") && l.contains(c)),
            "{c} missing from short test summary\n{}",
            r.dump()
        );
    }
}

#[test]
fn test_closing_stdout_does_not_break_reporting() {
    let suite = Suite::new(&[(
        "test_fds.py",
        r#"
        import os, sys

        def test_writes_garbage_to_fd1():
            os.write(1, b"\x00\x00\x00\x10garbage-not-a-frame\n")

        def test_closes_fd1_and_fd2():
            os.close(1)
            os.close(2)

        def test_after():
            pass

        def test_fails_after():
            assert 0
        "#,
    )]);
    assert_same(&suite, &[], "2");
}

// ------------------------------------------------------ baseline sanity ---

/// The oracle itself: every suite above behaves under plain pytest the way
/// the comparisons assume (right exit code, outcomes parsed). If this fails,
/// the suite or the harness is wrong, not rpytest.
#[test]
fn baseline_suites_behave_under_plain_pytest() {
    let cases: Vec<(&str, Suite, Vec<&str>, i32, usize)> = vec![
        ("trivial", trivial_suite(), vec![], 0, 5),
        ("fixture_scopes", fixture_scopes_suite(), vec![], 1, 14),
        ("scoped_teardown_error", scoped_teardown_error_suite(), vec![], 1, 3),
        ("parametrize", parametrize_suite(), vec![], 1, 22),
        ("classes", classes_suite(), vec![], 1, 7),
        ("unittest", unittest_suite(), vec![], 1, 10),
        ("unittest_subtests", unittest_subtests_suite(), vec![], 1, 2),
        ("markers", markers_suite(), vec![], 1, 14),
        ("doctest", doctest_suite(), vec!["--doctest-modules"], 1, 4),
        ("builtin_fixtures", builtin_fixtures_suite(), vec![], 1, 10),
        ("conftest_hooks", conftest_hooks_suite(), vec![], 1, 5),
        ("select_k", selection_suite(), vec!["-k", "alpha and not beta"], 0, 2),
        ("select_m", selection_suite(), vec!["-m", "fast or slow"], 1, 4),
        ("failing", failing_suite(), vec![], 1, 8),
        ("junit", junit_suite(), vec![], 1, 10),
        ("collection_error", collection_error_suite(), vec![], 2, 0),
        ("warnings", warnings_suite(), vec![], 0, 5),
        ("many_tests", many_tests_suite(), vec![], 1, 320),
        ("odd_nodeids", odd_nodeids_suite(), vec![], 1, 21),
        ("ini_options", ini_options_suite(), vec![], 1, 4),
        ("capture_isolation", capture_isolation_suite(), vec![], 1, 7),
    ];
    let mut problems = String::new();
    for (name, suite, args, code, n) in cases {
        let mut a = vec!["-v"];
        a.extend(args);
        let r = run_pytest(&suite, &a);
        if r.code != code || r.outcomes.len() != n {
            problems.push_str(&format!(
                "{name}: expected exit {code} and {n} tests, got exit {} and {} tests\n{}\n",
                r.code,
                r.outcomes.len(),
                r.dump()
            ));
        }
    }
    assert!(problems.is_empty(), "{problems}");
}

#[test]
fn junitxml_relative_path_is_relative_to_cwd() {
    let suite = trivial_suite();
    let r = run_rpytest(&suite, &["-n", "2", "--junitxml=reports/out.xml"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
    let j = parse_junit(&suite.join("reports/out.xml"));
    assert_eq!(j.tests, "5", "{j:?}");
}

/// The per-test lines between the header and the first section: nothing but
/// `<nodeid> <WORD>` (default) or `[worker K] <nodeid> <WORD>` (`-v`).
fn progress_region(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| l.contains("collected ")).map(|i| i + 1).unwrap_or(0);
    lines[start..]
        .iter()
        .take_while(|l| !l.starts_with("=="))
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect()
}

fn assert_line_format(extra: &[&str], with_worker: bool) {
    let suite = markers_suite();
    let mut args = vec!["-n", "2"];
    args.extend_from_slice(extra);
    let r = run_rpytest(&suite, &args);
    assert_clean_exit(&r);
    let region = progress_region(&r.stdout);
    assert!(!region.is_empty(), "no per-test lines\n{}", r.dump());
    for line in &region {
        let parsed = parse_outcome_line(line);
        let ok = match &parsed {
            Some((Some(w), id, word)) if with_worker => *line == format!("[worker {w}] {id} {word}"),
            Some((None, id, word)) if !with_worker => *line == format!("{id} {word}"),
            _ => false,
        };
        assert!(ok, "line {line:?} is not in the documented form\n{}", r.dump());
    }
}

#[test]
fn default_mode_lines_are_exactly_nodeid_word() {
    assert_line_format(&[], false);
}

#[test]
fn verbose_mode_lines_are_exactly_worker_nodeid_word() {
    assert_line_format(&["-v"], true);
}
