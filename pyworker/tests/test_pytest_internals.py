"""Each accessor of rpytest_worker.pytest_internals against a real pytest
session (pytester, in process), so that a pytest release that moves one of
pytest's private names fails here, by name, not in a run. scripts/matrix.sh
runs this file on pytest 7.4 and 8.4 as scripts/test.sh runs it on 9.x;
scripts/plugins.sh runs it where the plugins whose private state is read
(syrupy, pytest-benchmark, pytest-cov) are installed."""
import inspect
import io
import os
import re
import sys
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker import pytest_internals as internals

pytest_plugins = ["pytester"]


def accessors():
    return sorted(name for name, value in vars(internals).items()
                  if inspect.isfunction(value) and value.__module__ == internals.__name__ and not name.startswith("_"))


def test_every_accessor_states_the_versions_it_was_checked_on():
    assert len(accessors()) >= 40
    missing = [name for name in accessors()
               if internals.CHECKED_ON not in " ".join(getattr(internals, name).__doc__.split())]
    assert missing == [], f"say '{internals.CHECKED_ON}' in the docstring of each accessor"


def test_every_accessor_has_a_test_here():
    source = Path(__file__).read_text()
    untested = [name for name in accessors() if not re.search(rf"internals\.{name}\b", source)]
    assert untested == [], "test each accessor of pytest_internals in this file"


class Probe:
    """Calls ``action(session)`` at a hook of an inner session and keeps what it returns."""

    def __init__(self, hook="pytest_collection_finish", action=None):
        self.results = []
        setattr(self, hook, pytest.hookimpl(tryfirst=True)(lambda session: self.results.append(action(session))))


def probe(pytester, action, *args, hook="pytest_collection_finish"):
    """What ``action(session)`` returned in a session of ``args`` (in
    collection order: pytest-randomly off where it is installed)."""
    plugin = Probe(hook, action)
    pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", *args, plugins=[plugin])
    assert len(plugin.results) == 1, "the probe's hook did not run once"
    return plugin.results[0]


def summary_line(result, start):
    return next(line for line in result.outlines if line.startswith(start))


# Versions and behaviours.


def test_version_is_the_running_pytests():
    assert ".".join(map(str, internals.version())) == ".".join(pytest.__version__.split(".")[:2])


def test_shows_strict_xpass_message_says_what_the_short_summary_does(pytester):
    pytester.makepyfile(test_x="""
        import pytest
        @pytest.mark.xfail(strict=True, reason="why")
        def test_a():
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rf")
    line = summary_line(result, "FAILED test_x.py")
    assert ("[XPASS(strict)] why" in line) == internals.shows_strict_xpass_message(), line


def test_untrims_summary_only_on_ci_says_what_dash_vv_does(pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    pytester.makepyfile("def test_a():\n    assert 0, 'm' * 300\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rf", "-vv")
    whole = "m" * 300 in result.stdout.str().split("short test summary info")[-1]
    assert whole != internals.untrims_summary_only_on_ci()


def test_collects_through_directory_nodes_says_whether_pytest_has_them():
    assert internals.collects_through_directory_nodes() == hasattr(pytest, "Dir")


def test_pytest_owns_module_tells_pytests_plugins_from_others(pytester):
    modules = probe(pytester, lambda s: [type(p).__module__ if not inspect.ismodule(p) else p.__name__
                                         for p in s.config.pluginmanager.get_plugins()])
    assert internals.pytest_owns_module(
        type(probe(pytester, lambda s: s.config.pluginmanager.get_plugin("terminalreporter"))).__module__)
    assert any(internals.pytest_owns_module(name) for name in modules)
    assert not internals.pytest_owns_module(__name__)
    assert not internals.pytest_owns_module("pytest_timeout")


# The command line.


def test_main_taking_prog_names_the_program_in_usage_errors(pytester, capsys):
    main = internals.main_taking_prog()
    if main is None:
        assert internals.version() < (9, 0), "pytest 9 takes the program's name"
        return
    pytester.chdir()
    code = main(args=["--no-such-option", "-p", "no:cacheprovider"], plugins=[], prog="probe-prog")
    assert int(code) == 4
    assert "probe-prog" in capsys.readouterr().err


def test_parse_command_line_uses_the_sessions_parser(pytester):
    namespace = probe(pytester, lambda s: internals.parse_command_line(s.config, ["-k", "fast", "a.py"]))
    assert namespace.keyword == "fast"
    assert list(namespace.file_or_dir) == ["a.py"]


def test_add_lowercase_short_option_registers_it(pytester):
    pytester.makeconftest("""
        import sys
        sys.path.insert(0, %r)
        from rpytest_worker import pytest_internals
        def pytest_addoption(parser):
            pytest_internals.add_lowercase_short_option(parser.getgroup("probe"), "-z", "--zed", dest="zed")
    """ % os.path.join(os.path.dirname(__file__), os.pardir))
    assert probe(pytester, lambda s: s.config.option.zed, "-z", "3") == "3"


# Paths, reports and warnings.


def test_relative_path_is_pytests(tmp_path):
    assert internals.relative_path(tmp_path, tmp_path / "a" / "b.py") == os.path.join("a", "b.py")
    assert internals.relative_path(tmp_path / "a", tmp_path / "c.py") == os.path.join("..", "c.py")


def test_report_chars_resolves_dash_r(pytester):
    chars = probe(pytester, lambda s: internals.report_chars(s.config), "-rxX")
    assert "x" in chars and "X" in chars
    assert "x" not in probe(pytester, lambda s: internals.report_chars(s.config), "-rN")


def test_terminal_writer_writes_to_its_file():
    out = io.StringIO()
    writer = internals.terminal_writer(out)
    writer.hasmarkup = False
    writer.code_highlight = False
    writer.line("hello")
    assert out.getvalue() == "hello\n"


def test_crash_location_is_what_reprcrash_shows():
    location = internals.crash_location("a.py", 3, "boom")
    assert str(location) == "a.py:3: boom"
    assert (location.path, location.lineno, location.message) == ("a.py", 3, "boom")


def test_warning_text_and_location_are_the_summarys(pytester):
    pytester.makepyfile(test_w="import warnings\ndef test_a():\n    warnings.warn(UserWarning('careful'))\n")
    seen = []

    class Recorder:
        def pytest_warning_recorded(self, warning_message, when, nodeid, location):
            config = pytester_config[0]
            text = internals.warning_text(warning_message)
            fslocation = (warning_message.filename, warning_message.lineno)
            seen.append((text, internals.warning_location(text, nodeid, fslocation, config),
                         internals.warning_location(text, "", fslocation, config)))

        def pytest_configure(self, config):
            pytester_config.append(config)

    pytester_config = []
    pytester.inline_run("-p", "no:cacheprovider", plugins=[Recorder()])
    (text, with_id, without_id), = seen
    assert "UserWarning: careful" in text
    assert with_id == "test_w.py::test_a"
    assert without_id == "test_w.py:3"


def test_catching_collection_warnings_records_them_for_the_collection(pytester):
    seen = []

    class Recorder:
        def pytest_warning_recorded(self, warning_message, when, nodeid, location):
            seen.append((str(warning_message.message), when))

    def warn(session):
        with internals.catching_collection_warnings(session.config):
            warnings.warn(UserWarning("while collecting"), stacklevel=1)

    pytester.inline_run("-p", "no:cacheprovider", plugins=[Recorder(), Probe(action=warn)])
    assert ("while collecting", "collect") in seen


def test_node_id_value_is_what_item_id_holds(pytester):
    pytester.makepyfile("def test_a():\n    pass\n")
    item = probe(pytester, lambda s: s.items[0])
    value = internals.node_id_value(item.nodeid)
    assert str(value) == item.nodeid
    if hasattr(item, "id"):
        assert value == item.id


def test_has_only_test_report_fields_tells_a_plain_report():
    report = pytest.TestReport(nodeid="a.py::t", location=("a.py", 0, "t"), keywords={}, outcome="passed",
                               longrepr=None, when="call", duration=0.1, start=1.0, stop=1.1)
    assert internals.has_only_test_report_fields(report)
    report.extras = ["a plugin's"]
    assert not internals.has_only_test_report_fields(report)


# junitxml.


def test_junit_xml_is_the_sessions_logxml(pytester):
    assert probe(pytester, lambda s: internals.junit_xml(s.config)) is None
    xml = probe(pytester, lambda s: internals.junit_xml(s.config), "--junitxml=out.xml")
    assert type(xml).__module__ == internals.JUNITXML_MODULE
    assert callable(xml.node_reporter)
    assert isinstance(xml.global_properties, list) and isinstance(xml.node_reporters, dict)
    assert isinstance(xml.node_reporters_ordered, list)


def test_xml_escape_makes_text_valid_xml():
    assert internals.xml_escape("a\x01b<") == "a#x01b<"


# The terminal reporter.


def test_is_plain_terminal_reporter_tells_pytests_from_a_subclass(pytester):
    terminal = probe(pytester, lambda s: s.config.pluginmanager.get_plugin("terminalreporter"))
    assert internals.is_plain_terminal_reporter(terminal)
    subclass = type("Sugar", (type(terminal),), {})
    assert not internals.is_plain_terminal_reporter(object.__new__(subclass))


def test_the_terminal_writer_can_be_read_and_swapped(pytester):
    def write_elsewhere(session):
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        real = internals.terminal_writer_of(terminal)
        buffer = io.StringIO()
        assert internals.swap_terminal_writer(terminal, type(real)(buffer)) is real
        terminal.write_line("into the buffer")
        assert internals.swap_terminal_writer(terminal, real) is not real
        return real, buffer.getvalue()

    real, written = probe(pytester, write_elsewhere)
    assert written == "into the buffer\n"
    assert isinstance(real.hasmarkup, bool) and isinstance(real.code_highlight, bool)
    assert isinstance(real.fullwidth, int)


def test_the_collected_count_is_the_one_the_terminal_shows(pytester):
    pytester.makepyfile("def test_a():\n    pass\n")

    def set_to_seven(session):
        internals.set_collected_count(session.config.pluginmanager.get_plugin("terminalreporter"), 7)

    def five(session):
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        internals.set_collected_count(terminal, 7)
        internals.adjust_collected_count(terminal, -2)

    assert "collected 7 items" in pytester.runpytest_inprocess(plugins=[Probe(action=set_to_seven)]).stdout.str()
    assert "collected 5 items" in pytester.runpytest_inprocess(plugins=[Probe(action=five)]).stdout.str()


def test_restart_session_clock_makes_the_duration_count_from_now(pytester):
    def duration(restart):
        def late(session):
            time.sleep(1.5)
            if restart:
                internals.restart_session_clock(session.config.pluginmanager.get_plugin("terminalreporter"))

        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[Probe(action=late)])
        return float(re.search(r"in (\d+\.\d+)s", result.outlines[-1]).group(1))

    assert duration(restart=True) < duration(restart=False) - 1.0


def test_max_warnings_is_the_terminals_limit(pytester):
    def limit(session):
        return internals.max_warnings(session.config.pluginmanager.get_plugin("terminalreporter"))

    if internals.version() >= (9, 1):
        assert probe(pytester, limit, "--max-warnings=3") == 3
    assert probe(pytester, limit) is None
    assert internals.max_warnings(None) is None


# Capture, temporary directories, faulthandler, the cache.


def test_global_capturing_holds_the_saved_descriptors(pytester):
    def saved(session):
        capturing = internals.global_capturing(session.config)
        return [getattr(stream, "targetfd_save", None) for stream in (capturing.out, capturing.err)]

    out, err = probe(pytester, saved, "--capture=fd")
    assert isinstance(out, int) and isinstance(err, int)
    assert probe(pytester, saved, "-s") == [None, None]


def test_tmp_path_factory_and_set_basetemp(pytester, tmp_path):
    def moved(session):
        factory = internals.tmp_path_factory(session.config)
        internals.set_basetemp(factory, tmp_path)
        return factory.getbasetemp()

    assert probe(pytester, moved) == tmp_path
    assert probe(pytester, lambda s: internals.tmp_path_factory(s.config), "-p", "no:tmpdir") is None


def test_faulthandler_stderr_fds_are_open_copies_of_stderr(pytester):
    fds = probe(pytester, lambda s: [os.fstat(fd) and fd for fd in internals.faulthandler_stderr_fds(s.config)])
    assert len(fds) == 1
    assert probe(pytester, lambda s: internals.faulthandler_stderr_fds(s.config), "-p", "no:faulthandler") == []


def test_cache_dir_is_the_cache_plugins(pytester):
    plugin = Probe(action=lambda s: internals.cache_dir(s.config))
    pytester.inline_run(plugins=[plugin])
    assert Path(plugin.results[0]).name == ".pytest_cache"
    assert probe(pytester, lambda s: internals.cache_dir(s.config)) is None  # -p no:cacheprovider


# The setup stack and fixtures.

SESSION_FIXTURE = """
    import pytest
    @pytest.fixture(scope="session")
    def res():
        print("set up", file=open("log", "a"))
        yield 1
        print("torn down", file=open("log", "a"))
    @pytest.mark.parametrize("p", [1], scope="session")
    def test_a(res, p):
        pass
    @pytest.mark.parametrize("q", [1])
    def test_b(q):
        pass
"""


def log(pytester):
    path = pytester.path / "log"
    return path.read_text().split("\n")[:-1] if path.exists() else []


def test_teardown_everything_tears_down_what_is_set_up(pytester):
    pytester.makepyfile(SESSION_FIXTURE)

    def run_then_teardown(session):
        item = session.items[0]
        item.ihook.pytest_runtest_protocol(item=item, nextitem=session.items[1])
        before = log(pytester)
        internals.teardown_everything(session)
        return before, log(pytester)

    assert probe(pytester, run_then_teardown, hook="pytest_runtestloop") == (
        ["set up"], ["set up", "torn down"])


def test_a_shared_fixture_is_set_up_and_its_finalizers_taken(pytester):
    pytester.makepyfile(SESSION_FIXTURE)

    def share(session):
        item = session.items[0]
        assert "res" in internals.fixture_info(item).names_closure
        assert internals.fixture_info(item).name2fixturedefs["res"][-1].scope == "session"
        finalizers = internals.finalizers_added_by(session, lambda: internals.set_up_fixture(item, "res"))
        set_up = log(pytester)
        for finalizer in reversed(finalizers):
            finalizer()
        return set_up, len(finalizers), log(pytester)

    set_up, count, after = probe(pytester, share, hook="pytest_runtestloop")
    assert set_up == ["set up"] and count >= 1
    assert after == ["set up", "torn down"]


def test_parametrize_scopes_names_each_arguments_scope(pytester):
    pytester.makepyfile(SESSION_FIXTURE)
    scopes = probe(pytester, lambda s: {item.name: internals.parametrize_scopes(item) for item in s.items})
    assert scopes == {"test_a[1]": ["session"], "test_b[1]": ["function"]}


def test_the_fixture_manager_orders_items_with_the_fixture_reorder_set(pytester):
    pytester.makepyfile(SESSION_FIXTURE)
    original = internals.fixture_reorder()
    seen = []

    def reorder(items):
        seen.append([item.name for item in items])
        return list(reversed(original(items)))

    internals.set_fixture_reorder(reorder)
    try:
        names = probe(pytester, lambda s: [item.name for item in s.items])
    finally:
        internals.set_fixture_reorder(original)
    assert internals.fixture_reorder() is original
    assert seen == [["test_a[1]", "test_b[1]"]]
    assert names == ["test_b[1]", "test_a[1]"]


def test_forget_fixtures_under_drops_a_files_fixtures_only(pytester):
    fixture_file = "import pytest\n@pytest.fixture\ndef {0}():\n    pass\ndef test_a({0}):\n    pass\n"
    pytester.makepyfile(test_one=fixture_file.format("mine"), test_two=fixture_file.format("yours"))

    def names(session):
        found = set()

        def walk(value, depth=0):
            if depth > 6:
                return
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(key, depth + 1)
                    walk(inner, depth + 1)
            elif isinstance(value, (list, tuple)):
                for inner in value:
                    walk(inner, depth + 1)
            elif type(value).__name__ == "FixtureDef":
                found.add((value.argname, value.baseid))

        walk(vars(session._fixturemanager))
        return found

    def forget(session):
        before = names(session)
        internals.forget_fixtures_under(session, "test_one.py")
        return before, names(session)

    before, after = probe(pytester, forget)
    assert ("mine", "test_one.py") in before and ("yours", "test_two.py") in before
    assert ("mine", "test_one.py") not in after and ("yours", "test_two.py") in after


# Plugins' private state.


def test_plugin_timeout_env_timeout_is_its_resolved_limit(pytester, monkeypatch):
    pytest.importorskip("pytest_timeout")
    monkeypatch.setenv("PYTEST_TIMEOUT", "7")
    assert probe(pytester, lambda s: internals.timeout_plugin_env_timeout(s.config)) == 7.0
    monkeypatch.delenv("PYTEST_TIMEOUT")
    assert probe(pytester, lambda s: internals.timeout_plugin_env_timeout(s.config)) is None


def test_plugin_syrupy_session_and_its_lock_files(pytester):
    assert internals.syrupy_session(pytest.Config.__new__(pytest.Config)) is None
    internals.remove_syrupy_lock_files(None)
    pytest.importorskip("syrupy")

    def clean(session):
        snapshots = internals.syrupy_session(session.config)
        internals.remove_syrupy_lock_files(snapshots)
        return type(snapshots).__name__

    assert probe(pytester, clean) == "SnapshotSession"


def test_plugin_benchmark_session_is_pytest_benchmarks(pytester):
    assert internals.benchmark_session(pytest.Config.__new__(pytest.Config)) is None
    pytest.importorskip("pytest_benchmark")
    session = probe(pytester, lambda s: internals.benchmark_session(s.config))
    assert type(session).__name__ == "BenchmarkSession" and isinstance(session.disabled, bool)


def test_plugin_cov_made_central_and_its_data_file(pytester):
    internals.make_cov_plugin_central(None)
    assert internals.coverage_names_data_file_per_process(None)
    pytest.importorskip("pytest_cov")
    pytester.makepyfile("def test_a():\n    pass\n")

    def central(session):
        plugin = session.config.pluginmanager.get_plugin("_cov")
        internals.make_cov_plugin_central(plugin)
        cov = plugin.cov_controller.cov
        return plugin._is_worker(session), internals.coverage_names_data_file_per_process(cov)

    worker, per_process = probe(pytester, central, "--cov=.")
    assert worker is False
    assert per_process is True
