"""The one door into pytest's internals (and its plugins').

rpytest rides pytest's own session, so it needs a few things pytest keeps
private: the setup stack it tears fixtures down from, the terminal
reporter's writer and counters, the capture manager's global capture, the
junitxml plugin's state. Reached from everywhere, each pytest release could
break one of them silently. So this module is the only one in
``rpytest_worker`` that imports ``_pytest`` or reads a private attribute of
pytest's or a plugin's objects; ``scripts/check_pytest_door.sh`` (run
by ``scripts/test.sh``) fails when ``_pytest`` appears in any other file.

Each accessor is named for what it gets and says which pytest versions it
was checked on. Each has a test in ``pyworker/tests/test_pytest_internals.py``
that runs it against a real pytest session; ``scripts/matrix.sh`` runs those
tests on every supported pytest line (9.x, 8.4, 7.4), and
``scripts/plugins.sh`` runs the plugin accessors' tests with the plugins
installed. Where pytest has a public name (``pytest.CallInfo``,
``pytest.TestReport``, ``pytest.CollectReport``, ``pytest.File``), callers
use it, not this module.
"""
import inspect

import pytest
from _pytest import faulthandler as _faulthandler
from _pytest import fixtures as _fixtures
from _pytest import junitxml as _junitxml
from _pytest import timing as _timing
from _pytest._code.code import ReprFileLocation as _ReprFileLocation
from _pytest._io import TerminalWriter as _TerminalWriter
from _pytest.pathlib import bestrelpath as _bestrelpath
from _pytest.terminal import TerminalReporter as _TerminalReporter
from _pytest.terminal import WarningReport as _WarningReport
from _pytest.terminal import getreportopt as _getreportopt
from _pytest.warnings import catch_warnings_for_item as _catch_warnings_for_item
from _pytest.warnings import warning_record_to_str as _warning_record_to_str

try:
    from _pytest.config import _main as _main_taking_prog  # pytest.main's body; pytest>=9 takes ``prog``
except ImportError:
    _main_taking_prog = None
try:
    from _pytest.nodeid import coerce_node_id as _coerce_node_id  # pytest>=9.2: node ids are objects
except ImportError:
    _coerce_node_id = None

# The lines each accessor was checked on (scripts/battery.sh's pytest_spec),
# as their docstrings say; the tests check each docstring names them.
CHECKED_ON = "pytest 7.4, 8.4 and 9.2"

# The module junitxml's plugin object comes from (its LogXML's ``__module__``).
JUNITXML_MODULE = "_pytest.junitxml"


def version():
    """(major, minor) of the running pytest. Checked on pytest 7.4, 8.4 and 9.2."""
    major, minor = pytest.__version__.split(".")[:2]
    return (int(major), int("".join(c for c in minor if c.isdigit()) or 0))


# Behaviours that changed between the supported lines, named here so that
# no other module compares version numbers.


def shows_strict_xpass_message():
    """Whether the short summary shows a plain-string longrepr (a strict
    XPASS) as its message: pytest>=9. Checked on pytest 7.4, 8.4 and 9.2."""
    return version() >= (9, 0)


def untrims_summary_only_on_ci():
    """Whether only CI makes the short summary show whole crash messages
    (pytest<8; later, -vv does too). Checked on pytest 7.4, 8.4 and 9.2."""
    return version() < (8, 0)


def collects_through_directory_nodes():
    """Whether collection goes through ``Dir``/``Package`` directory nodes
    whose entries are sorted by name (pytest>=8), which a collection spread
    over workers and a file added to a warm session rely on. Checked on
    pytest 7.4, 8.4 and 9.2."""
    return version() >= (8, 0)


def pytest_owns_module(name):
    """Whether a module name is pytest's own (a builtin plugin's, for
    example). Checked on pytest 7.4, 8.4 and 9.2."""
    return name == "_pytest" or str(name).startswith("_pytest.")


def main_taking_prog():
    """pytest.main's body where it takes the program's name for usage
    errors (pytest>=9: ``_main(args, plugins, prog)``), else None. Checked
    on pytest 7.4, 8.4 and 9.2."""
    return _main_taking_prog if _main_taking_prog is not None and _takes_prog() else None


def _takes_prog():
    return "prog" in inspect.signature(_main_taking_prog).parameters


def parse_command_line(config, args):
    """``args`` parsed by the session's own parser into an options
    namespace (raises pytest's UsageError or argparse's SystemExit).
    Checked on pytest 7.4, 8.4 and 9.2."""
    return config._parser.parse(args)


def add_lowercase_short_option(group, *names, **attrs):
    """An option in ``group`` with a lowercase short name, which pytest
    keeps for itself through the public ``addoption`` (xdist adds its ``-n``
    this way). Checked on pytest 7.4, 8.4 and 9.2."""
    group._addoption(*names, **attrs)


# Reports, paths and warnings as pytest's terminal shows them.


def relative_path(directory, dest):
    """``dest`` relative to ``directory`` as pytest shows paths. Checked on
    pytest 7.4, 8.4 and 9.2."""
    return _bestrelpath(directory, dest)


def report_chars(config):
    """The resolved ``-r`` characters. Checked on pytest 7.4, 8.4 and 9.2."""
    return _getreportopt(config)


def terminal_writer(file):
    """A pytest TerminalWriter writing to ``file``. Checked on pytest 7.4,
    8.4 and 9.2."""
    return _TerminalWriter(file)


def crash_location(path, lineno, message):
    """What a report's ``longrepr.reprcrash`` is (path, 1-based line,
    message). Checked on pytest 7.4, 8.4 and 9.2."""
    return _ReprFileLocation(path, lineno, message)


def warning_text(warning_message):
    """A recorded warning as the warnings summary prints it. Checked on
    pytest 7.4, 8.4 and 9.2."""
    return _warning_record_to_str(warning_message)


def warning_location(message, nodeid, fslocation, config):
    """Where the warnings summary says a warning came from. Checked on
    pytest 7.4, 8.4 and 9.2."""
    return _WarningReport(message=message, nodeid=nodeid, fslocation=fslocation).get_location(config)


def catching_collection_warnings(config):
    """A context in which warnings are recorded as pytest's warnings plugin
    records them during collection. Checked on pytest 7.4, 8.4 and 9.2."""
    return _catch_warnings_for_item(config, ihook=config.hook, when="collect", item=None)


def node_id_value(nodeid):
    """What ``item.id`` is for a node id string: pytest>=9.2 has node id
    objects, older pytests the string. Checked on pytest 7.4, 8.4 and 9.2."""
    return _coerce_node_id(nodeid) if _coerce_node_id is not None else nodeid


# The fields every TestReport has; anything else was attached by a plugin
# (pytest-html's ``extras``, ``wasxfail``, a conftest's attribute).
_TEST_REPORT_FIELDS = frozenset({"nodeid", "_id", "location", "keywords", "outcome", "longrepr", "when",
                                 "user_properties", "sections", "duration", "start", "stop"})


def has_only_test_report_fields(report):
    """Whether a TestReport carries nothing but what pytest gives every
    one. Checked on pytest 7.4, 8.4 and 9.2."""
    return _TEST_REPORT_FIELDS.issuperset(vars(report))


# junitxml's state: in the stash under the plugin's key.


def junit_xml(config):
    """The junitxml plugin's LogXML (None without ``--junitxml``). Checked
    on pytest 7.4, 8.4 and 9.2."""
    return config.stash.get(_junitxml.xml_key, None)


def xml_escape(text):
    """Text made valid in XML as junitxml writes it. Checked on pytest 7.4,
    8.4 and 9.2."""
    return _junitxml.bin_xml_escape(text)


# The terminal reporter.


def is_plain_terminal_reporter(reporter):
    """Whether ``reporter`` is pytest's own TerminalReporter, not a
    subclass a plugin put in its place (``pytest.TerminalReporter`` exists
    from 8.0 on). Checked on pytest 7.4, 8.4 and 9.2."""
    return type(reporter) is _TerminalReporter


def terminal_writer_of(terminal):
    """The TerminalWriter the terminal reporter writes through. Checked on
    pytest 7.4, 8.4 and 9.2."""
    return terminal._tw


def swap_terminal_writer(terminal, writer):
    """Makes the terminal reporter write through ``writer``; returns the
    writer it had. Checked on pytest 7.4, 8.4 and 9.2."""
    old, terminal._tw = terminal._tw, writer
    return old


def set_collected_count(terminal, count):
    """Sets the count the terminal reporter shows as "collected N items"
    (and compares with the deselected count). Checked on pytest 7.4, 8.4 and 9.2."""
    terminal._numcollected = count


def adjust_collected_count(terminal, delta):
    """Adds ``delta`` to that count. Checked on pytest 7.4, 8.4 and 9.2."""
    terminal._numcollected += delta


def restart_session_clock(terminal):
    """The session's duration the terminal prints counts from now
    (pytest>=8.4 keeps an Instant, older ones a timestamp). Checked on
    pytest 7.4, 8.4 and 9.2."""
    if hasattr(terminal, "_session_start"):
        terminal._session_start = type(terminal._session_start)()
    if hasattr(terminal, "_sessionstarttime"):
        terminal._sessionstarttime = _timing.time()


def max_warnings(terminal):
    """``--max-warnings`` / ``max_warnings`` as the terminal reporter
    enforces it (pytest>=9.1), else None. Checked on pytest 7.4, 8.4 and 9.2."""
    get = getattr(terminal, "_get_max_warnings", None)
    return get() if get is not None else None


# Capture, temporary directories, faulthandler, the cache.


def global_capturing(config):
    """The capture manager's global capture (its ``out``/``err`` hold the
    saved descriptors, ``targetfd_save``; both None with ``-s``), or None
    when it is not capturing. Checked on pytest 7.4, 8.4 and 9.2."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    return getattr(capman, "_global_capturing", None)


def tmp_path_factory(config):
    """The session's TempPathFactory (None with ``-p no:tmpdir``). Checked
    on pytest 7.4, 8.4 and 9.2."""
    return getattr(config, "_tmp_path_factory", None)


def set_basetemp(factory, path):
    """Makes ``path`` (made already) the factory's basetemp, as if pytest
    had chosen it. Checked on pytest 7.4, 8.4 and 9.2."""
    factory._basetemp = path


def faulthandler_stderr_fds(config):
    """The copies of stderr pytest's faulthandler plugin dumps tracebacks
    into (pytest 7.4.0 kept a file under another key). Checked on pytest
    7.4, 8.4 and 9.2."""
    fds = []
    key = getattr(_faulthandler, "fault_handler_stderr_fd_key", None)
    if key is not None and key in config.stash:
        fds.append(config.stash[key])
    key = getattr(_faulthandler, "fault_handler_stderr_key", None)
    if key is not None and key in config.stash:
        fds.append(config.stash[key].fileno())
    return fds


def cache_dir(config):
    """The cache plugin's directory (None with ``-p no:cacheprovider``).
    Checked on pytest 7.4, 8.4 and 9.2."""
    return getattr(getattr(config, "cache", None), "_cachedir", None)


# The setup stack and fixtures.


def teardown_everything(session):
    """Tears down everything set up, as after the last test. Checked on
    pytest 7.4, 8.4 and 9.2."""
    session._setupstate.teardown_exact(None)


def finalizers_added_by(session, set_up):
    """Calls ``set_up()`` with the session on the setup stack, and takes off
    the session's finalizers that it added: the list, in the order pytest
    would run them backwards. Checked on pytest 7.4, 8.4 and 9.2 (each
    stack entry is (finalizers, error))."""
    stack = session._setupstate.stack
    pushed = session not in stack
    if pushed:
        stack[session] = ([session.teardown], None)
    finalizers = stack[session][0]
    before = len(finalizers)
    set_up()  # an interrupt leaves them on the stack, for pytest to tear down
    added = finalizers[before:]
    del finalizers[before:]
    if pushed:
        del stack[session]
    return added


def fixture_info(item):
    """The item's fixture closure (``names_closure``, ``name2fixturedefs``),
    or None for an item without fixtures. Checked on pytest 7.4, 8.4 and 9.2."""
    return getattr(item, "_fixtureinfo", None)


def set_up_fixture(item, name):
    """Sets up fixture ``name`` through the item's request, as the first
    test using it would, then gives the item a fresh request. Checked on
    pytest 7.4, 8.4 and 9.2. pytest 9.2 warns (PytestRemovedIn10Warning)
    that the item is not set up, and says 10.1 will raise: the test of
    this accessor fails then."""
    __tracebackhide__ = True
    item._initrequest()
    try:
        item._request.getfixturevalue(name)
    finally:
        item._initrequest()


def parametrize_scopes(item):
    """The scope names (``"function"`` ... ``"session"``) of the item's
    parametrized arguments. Checked on pytest 7.4, 8.4 and 9.2."""
    callspec = getattr(item, "callspec", None)
    scopes = getattr(callspec, "_arg2scope", None) or {}
    return [getattr(scope, "value", scope) for scope in scopes.values()]


def fixture_reorder():
    """The function pytest's fixture manager orders a session's items by
    their higher-scoped parametrized fixtures with (``reorder_items``,
    which it looks up as a module global on every call). Checked on
    pytest 7.4, 8.4 and 9.2."""
    return _fixtures.reorder_items


def set_fixture_reorder(reorder):
    """Makes the fixture manager order items with ``reorder`` (see
    ``fixture_reorder``). Checked on pytest 7.4, 8.4 and 9.2."""
    _fixtures.reorder_items = reorder


def forget_fixtures_under(session, nodeid):
    """Removes from the fixture manager every fixture defined under
    ``nodeid`` (a file collected again defines them anew). Its registries'
    layout differs between versions, so every dict and list in it is
    walked. Checked on pytest 7.4, 8.4 and 9.2."""
    manager = session._fixturemanager

    def under(key):
        key = getattr(key, "nodeid", key)
        return isinstance(key, str) and (key == nodeid or key.startswith(nodeid + "::"))

    for value in vars(manager).values():
        if isinstance(value, dict):
            for key in [key for key in value if under(key)]:
                del value[key]
            for inner in value.values():
                if isinstance(inner, dict):
                    for key in [key for key in inner if under(key)]:
                        del inner[key]
                elif isinstance(inner, list):
                    inner[:] = [d for d in inner if not under(getattr(d, "baseid", None))]
        elif isinstance(value, list):
            value[:] = [entry for entry in value if not (isinstance(entry, tuple) and entry and under(entry[0]))]


# Plugins' private state.


def timeout_plugin_env_timeout(config):
    """pytest-timeout's limit from PYTEST_TIMEOUT / ini as it resolved it at
    configure time, or None. Checked on pytest 7.4, 8.4 and 9.2 with
    pytest-timeout 2.x."""
    return getattr(config, "_env_timeout", None)


def syrupy_session(config):
    """syrupy's SnapshotSession, or None. Checked on pytest 7.4, 8.4 and 9.2
    with syrupy 4 to 7."""
    return getattr(config, "_syrupy", None)


def remove_syrupy_lock_files(snapshot_session):
    """What syrupy's xdist controller does at the end: removes the lock
    (sidecar) files the workers left, where this syrupy has them. Checked
    on pytest 7.4, 8.4 and 9.2 with syrupy 7."""
    cleanup = getattr(snapshot_session, "_cleanup_write_sidecars", None)
    if cleanup is not None:
        cleanup()


def benchmark_session(config):
    """pytest-benchmark's BenchmarkSession, or None. Checked on pytest 7.4,
    8.4 and 9.2 with pytest-benchmark 4 and 5."""
    return getattr(config, "_benchmarksession", None)


def make_cov_plugin_central(plugin):
    """pytest-cov's plugin never takes itself for an xdist worker (it then
    measures in central mode). Checked on pytest 7.4, 8.4 and 9.2 with
    pytest-cov 5 to 7."""
    if plugin is not None and callable(getattr(plugin, "_is_worker", None)):
        plugin._is_worker = lambda session: False


def coverage_names_data_file_per_process(cov):
    """Whether the Coverage object pytest-cov made gives each process a data
    file of its own (pytest-cov>=6 asks for a suffix). Checked on pytest 7.4,
    8.4 and 9.2 with pytest-cov 5 to 7."""
    return getattr(cov, "_data_suffix_specified", True) is True
