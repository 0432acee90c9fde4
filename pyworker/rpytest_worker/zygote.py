"""The zygote: one pytest session that collects once and forks the workers.

rpytest starts this module as ``python -c ... <pytest args>``. It runs
``pytest.main`` with the user's arguments, so configuration, plugins,
conftests, collection and usage errors are pytest's own. Its plugin takes
over ``pytest_runtestloop``: it reports the inventory to the engine, then
serves the engine's requests (fork a worker, tear shared fixtures down)
until the engine sends the run's reports with ``finish``. Those are
replayed into this session's plugins, and the loop returns to pytest, which
ends the session here as it ends any other: ``pytest_sessionfinish`` and
``pytest_unconfigure`` run in the process where the user's
``pytest_configure`` ran (its threads alive), and the exit status they
leave is the run's. The zygote itself runs no test.

When pytest would not run tests at all (collection errors, ``--co``, nothing
collected) the plugin steps aside and pytest finishes the session itself,
printing its own output and choosing its own exit code.

The bootstrap (``src/pyworker.rs``) exits 97 before importing this module
when pytest is missing, so rpytest can say how to install it.

The same module starts a spawned worker (``RPYTEST_ROLE=worker``), which
collects for itself instead of being forked. Every one of these processes
looks like ``python -m pytest ARGS`` to the code it runs (``identity``).
"""
import atexit
import gc
import hashlib
import importlib.util
import os
import select
import signal
import sys
import uuid

import pytest

from . import identity, protocol, shared_fixtures, sink
from .plugin_compat import PluginCompat
from .xdist_nodes import configure_node
from .xdist_nodes import workerinput as xdist_workerinput


def _die_with_parent():
    """Ask Linux to kill us when our parent dies, so nothing outlives rpytest."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # no prctl (not Linux): the engine kills the process group instead


def _become_subreaper():
    """Orphans of a crashed worker (a test's detached helper) become the
    zygote's, not init's or the warm daemon's, so they end with the run."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # no prctl: the engine's own subreaper catches what it can


def _end_orphans():
    """Every process still under the zygote when the run ends: what a lost
    worker's tests left behind (the workers themselves are done)."""
    from .worker import ChildWatch

    ChildWatch().end_leaks()


def inventory_hash(items):
    return hashlib.sha1("\n".join(item.nodeid for item in items).encode()).hexdigest()[:16]


def _collect_report_record(report):
    record = {"id": report.nodeid, "outcome": report.outcome, "longrepr": report.longreprtext}
    if report.skipped and isinstance(report.longrepr, tuple):
        path, lineno, reason = report.longrepr
        record["skip"] = [str(path), lineno, str(reason)]
    return record


def getreportopt(config):
    from _pytest.terminal import getreportopt as pytest_getreportopt

    return pytest_getreportopt(config)


def shown_nodeid(config, nodeid):
    """A node id as pytest's terminal shows it: relative to the invocation dir."""
    from _pytest.pathlib import bestrelpath

    if config.invocation_params.dir == config.rootpath:
        return nodeid
    path, *rest = nodeid.split("::")
    return "::".join([bestrelpath(config.invocation_params.dir, config.rootpath / path), *rest])


def xdist_group(item):
    """The item's ``xdist_group`` name as xdist computes it, or None."""
    names = set()
    for mark in item.iter_markers("xdist_group"):
        names.add(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")))
    return "_".join(sorted(names)) or None


def timeout_mark(item):
    """Seconds from the item's ``@pytest.mark.timeout(N)`` (pytest-timeout's
    signature: ``timeout(timeout=0, method=..., func_only=...)``), or None."""
    mark = item.get_closest_marker("timeout")
    if mark is None:
        return None
    value = mark.args[0] if mark.args else mark.kwargs.get("timeout")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def timeout_plugin_settings(config):
    """pytest-timeout's own global limit as it resolved it (its --timeout,
    else PYTEST_TIMEOUT, else ini ``timeout``) and whether it is active."""
    if not config.pluginmanager.hasplugin("timeout"):
        return {"timeout_plugin": None, "timeout_plugin_active": False}
    value = getattr(config, "_env_timeout", None)
    if value is None:
        value = config.getoption("timeout", None) or os.environ.get("PYTEST_TIMEOUT") or config.getini("timeout")
    try:
        value = float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        value = None
    return {"timeout_plugin": value or None, "timeout_plugin_active": True}


def shard_selection(conn, config, items):
    """Ask the engine which items this shard keeps; deselect the rest, as
    pytest-split does, so pytest's header and counts say "N deselected".
    Returns the line to show under pytest's "collected" line."""
    sys.stdout.flush()
    conn.send(protocol.shard_request([item.nodeid for item in items]))
    msg = conn.recv()
    if msg is None or msg["type"] != "shard_plan":
        os._exit(3)
    keep = set(msg["keep"])
    dropped = [item for i, item in enumerate(items) if i not in keep]
    items[:] = [item for i, item in enumerate(items) if i in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    return msg["line"]


def running_on_ci():
    return any(os.environ.get(name) for name in ("CI", "BUILD_NUMBER"))


def summary_untrimmed(config):
    """Whether the short summary shows whole crash messages, as this pytest decides."""
    from .reports import pytest_version

    if pytest_version() < (8, 0):
        return running_on_ci()  # pytest<8: only on CI
    forced_short = getattr(config.option, "force_short_summary", False)
    return (running_on_ci() or getattr(config.option, "verbose", 0) >= 2) and not forced_short


def _max_warnings(terminal):
    """--max-warnings / max_warnings (pytest>=9.1), enforced by pytest's terminal reporter."""
    get = getattr(terminal, "_get_max_warnings", None)
    return get() if get is not None else None


def _junit_path(config):
    path = getattr(config.option, "xmlpath", None)
    return os.path.normpath(os.path.abspath(path)) if path else None


class XdistWorkerCount:
    """An `-n` in pytest's addopts (ini file or PYTEST_ADDOPTS) is rpytest's
    worker count, as xdist users have it; the engine takes `-n` off the
    command line itself. Registered in the zygote and in spawned workers."""

    def pytest_addoption(self, parser):
        # Without xdist installed pytest would reject the `-n`. pytest keeps
        # lowercase short options for itself; `_addoption` is how xdist
        # registers its own `-n` past that check.
        if importlib.util.find_spec("xdist") is None:
            parser.getgroup("rpytest")._addoption("-n", "--numprocesses", dest="numprocesses", default=None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        # Left in place, xdist would start a controller of its own here
        # (its cmdline hook already turned `-n` into a --dist mode).
        config._rpytest_numprocesses = getattr(config.option, "numprocesses", None)
        if config._rpytest_numprocesses is not None:
            config.option.numprocesses = None
        config._rpytest_dist = getattr(config.option, "dist", "no")
        if config._rpytest_dist != "no":
            config.option.dist = "no"

    @staticmethod
    def found(config):
        value = getattr(config, "_rpytest_numprocesses", None)
        return None if value is None else str(value)

    @staticmethod
    def dist(config):
        """xdist's --dist from pytest's configuration, for the engine."""
        value = getattr(config, "_rpytest_dist", "no")
        return None if value == "no" else value


class ZygotePlugin:
    """Collects like pytest, then hands the run to the engine."""

    def __init__(self, conn, shared):
        self.conn = conn
        self.shared = shared
        self.deselected = 0
        self.collect_reports = []
        self.warnings = []
        self.children = {}  # pid -> worker number
        self.workerinputs = {}  # worker number -> its config.workerinput
        self.nodes_down = []  # the engine's node_down messages
        self.shard_line = None
        self._items = None  # the collected items as the engine reads them

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if identity.ENV.sharding:
            self.shard_line = shard_selection(self.conn, config, items)

    def pytest_report_collectionfinish(self, config, start_path, items):
        return [self.shard_line] if self.shard_line else []

    def pytest_deselected(self, items):
        self.deselected += len(items)

    def pytest_collectreport(self, report):
        if report.failed or report.skipped:
            self.collect_reports.append(_collect_report_record(report))

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        # Config-time warnings (e.g. pytest 7.4's deprecated --strict) come
        # before pytest_configure, so they are encoded later, in _announce.
        self.warnings.append((warning_message, when, nodeid))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        config = session.config
        if session.testsfailed and not config.option.continue_on_collection_errors:
            return None
        if config.option.collectonly or not session.items:
            return None
        threads = _other_threads()
        if not threads:
            # With threads alive the engine spawns workers: nothing to inherit.
            self.shared.setup(session)
        self._announce(session, threads)
        replayed, exitstatus = self._serve(session)
        return sink.finish_session(session, replayed, exitstatus, self.nodes_down, self.conn.send)

    def _announce(self, session, threads):
        from .reports import encode_warning, pytest_version

        config = session.config
        # `-p no:tmpdir` leaves no factory, hence no basetemp to share.
        factory = getattr(config, "_tmp_path_factory", None)
        self.basetemp = str(factory.getbasetemp()) if factory is not None else ""
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        config._rpytest_markup = bool(terminal and terminal._tw.hasmarkup)
        config._rpytest_code_highlight = bool(terminal and terminal._tw.code_highlight)
        # xdist's --testrunuid fixes the testrun_uid fixture's value, else a new one per run.
        self.testrunuid = getattr(config.option, "testrunuid", None) or uuid.uuid4().hex
        # Everything collected so far outlives the run: keep the garbage
        # collector off it in every forked child (fewer pages copied on
        # write, and no full collection walks the whole suite).
        # Imported once here rather than in every forked worker (milliseconds each).
        from . import worker  # noqa: F401

        gc.freeze()
        sys.stdout.flush()
        sys.stderr.flush()
        self.conn.send(protocol.collected(**{
            "items": self.item_records(session),
            "deselected": self.deselected,
            "inventory": inventory_hash(session.items),
            "basetemp": self.basetemp,
            "testrunuid": self.testrunuid,
            "collect_reports": self.collect_reports,
            "warnings": [encode_warning(*warning, config) for warning in self.warnings],
            "rootdir": str(config.rootpath),
            # With -p no:terminal pytest prints nothing, and the terminal's
            # options (-r, -v, --tb, ...) are not even defined.
            "terminal": terminal is not None,
            "reportchars": getreportopt(config) if terminal is not None else "",
            "junitxml": _junit_path(config),
            "verbosity": getattr(config.option, "verbose", 0),
            "tbstyle": getattr(config.option, "tbstyle", "auto"),
            "summary_untrimmed": summary_untrimmed(config),
            "no_summary": bool(getattr(config.option, "no_summary", False)),
            # --no-fold-skipped and --xfail-tb exist from pytest 8 on.
            "fold_skipped": bool(getattr(config.option, "fold_skipped", True)),
            "xfail_tb": bool(getattr(config.option, "xfail_tb", False)),
            "max_warnings": _max_warnings(terminal),
            "show_capture": getattr(config.option, "showcapture", "all"),
            "collect_failed": session.testsfailed,
            "maxfail": config.option.maxfail or 0,
            "numprocesses": XdistWorkerCount.found(config),
            **_durations_settings(config),
            "dist": XdistWorkerCount.dist(config),
            "shared_fixtures": self.shared.set_up,
            "threads": threads,
            "pytest_version": pytest_version(),
            **timeout_plugin_settings(config),
        }))

    def item_records(self, session):
        """What the engine reads of each collected item. Computed once: a warm
        zygote computes it while it waits for its run."""
        if self._items is None:
            self._items = [
                {"id": item.nodeid, "shown": shown_nodeid(session.config, item.nodeid), "group": xdist_group(item),
                 "timeout": timeout_mark(item)}
                for item in session.items
            ]
        return self._items

    def _serve(self, session):
        """Answer the engine until it says finish, then return the run's
        reports and exit status (``shutdown`` exits here)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        replayed = []
        while True:
            ready, _, _ = select.select([self.conn.sock, wake_r], [], [])
            if wake_r in ready:
                os.read(wake_r, 4096)
                self._reap()
            while self.conn.sock in ready:
                msg = self.conn.recv()
                if msg is None or msg["type"] == "shutdown":
                    self._exit()
                elif msg["type"] == "replay":
                    replayed.extend(msg["entries"])
                elif msg["type"] == "node_down":
                    self.nodes_down.append({**msg, "workerinput": self.workerinputs.get(msg["worker"])})
                elif msg["type"] == "finish":
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.close(wake_r)
                    os.close(wake_w)
                    return replayed + msg["entries"], msg["exitstatus"]
                else:
                    self._handle(session, msg, (wake_r, wake_w))
                if not self.conn._complete_frame():
                    break

    def _handle(self, session, msg, wake_fds):
        kind = msg["type"]
        if kind == "fork":
            index = msg["worker"]
            workerinput = xdist_workerinput(index, msg["count"], self.testrunuid)
            self.workerinputs[index] = configure_node(session.config, index, workerinput)
            self._fork(wake_fds, lambda: self._run_worker(session, index, workerinput), index)
        elif kind == "teardown_shared":
            phases = self.shared.teardown(session, msg.get("index"))
            self.conn.send(protocol.shared_teardown_done(phases))
        else:
            self.conn.send(protocol.internal_error(f"zygote got unexpected {kind!r}"))

    def _fork(self, wake_fds, child_main, worker):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in wake_fds:
                os.close(fd)
            self.conn.close()
            _die_with_parent()
            code = 3
            try:
                child_main()
                code = 0
            except BaseException:  # noqa: BLE001  a forked child must never return into the zygote's code
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        if worker is not None:
            self.children[pid] = worker
            self.conn.send(protocol.worker_forked(worker, pid))
        return pid

    def _run_worker(self, session, index, workerinput):
        from .worker import become_worker

        become_worker(session, index, identity.ENV.socket, self.basetemp, workerinput, forked=True)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            worker = self.children.pop(pid, None)
            if worker is None:
                continue
            self.conn.send(protocol.worker_exited(worker, pid, code))

    def _exit(self):
        # The zygote is the run's main process: its exit handlers run once,
        # as in a plain pytest process. Among them pytest's removal of the
        # basetemp's .lock; without it /tmp/pytest-of-<user>/pytest-N would
        # stay locked (undeletable) for three days after every run.
        atexit._run_exitfuncs()
        _end_orphans()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _other_threads():
    """Names of the threads alive besides this one: a fork copies the locks
    they hold (logging, stdio buffers) but not the threads that would
    release them."""
    import threading

    return [t.name for t in threading.enumerate() if t is not threading.current_thread()]


def _durations_settings(config):
    """--durations as pytest's runner plugin resolves it for its summary."""
    durations_min = config.option.durations_min
    if hasattr(config, "get_verbosity"):
        # pytest 8+: no --durations-min means 0.005, or 0 at -vv, with a hint.
        hint = durations_min is None
        if hint:
            durations_min = 0.005 if config.get_verbosity() < 2 else 0.0
    else:
        # pytest 7.4: the option defaults to 0.005, -vv shows all, the hint
        # is always there ("verbose" is absent under -p no:terminal).
        hint = True
        if config.getoption("verbose", 0) >= 2:
            durations_min = 0.0
    return {"durations": config.option.durations, "durations_min": durations_min, "durations_hint": hint}


class SpawnedWorkerPlugin:
    """A fresh interpreter that collects for itself, then works like a fork."""

    def __init__(self, index, count):
        self.index = index
        self.count = count

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        from .worker import silence_reporters

        silence_reporters(config)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """Keep the zygote's shard selection (indices in a JSON file)."""
        path = identity.ENV.shard_keep
        if path:
            import json

            with open(path) as f:
                keep = set(json.load(f))
            items[:] = [item for i, item in enumerate(items) if i in keep]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        from .protocol import Connection
        from .worker import become_worker

        env = identity.ENV
        if session.testsfailed:
            conn = Connection(env.socket)
            conn.send(protocol.internal_error(f"spawned worker gw{self.index} failed to collect the suite"))
            os._exit(3)
        workerinput = xdist_workerinput(self.index, self.count, env.testrunuid)
        become_worker(session, self.index, env.socket, env.basetemp, workerinput, forked=False)
        sys.stdout.flush()
        os._exit(0)


def run_pytest(args, plugin):
    """``pytest.main`` with rpytest's plugins, its usage errors naming
    rpytest: pytest>=9 calls itself "pytest.main()" there (unless told the
    program's name), older versions take the name from their parser's
    ``prog``, else ``sys.argv[0]`` (pytest's own ``__main__.py`` here)."""
    import inspect

    from . import fixtures

    zygote = isinstance(plugin, ZygotePlugin)
    plugins = [plugin, XdistWorkerCount(), fixtures.RegisterUnlessXdist(), PluginCompat(zygote)]
    try:
        from _pytest.config import _main
    except ImportError:
        _main = None
    if _main is not None and "prog" in inspect.signature(_main).parameters:
        return int(_main(args=args, plugins=plugins, prog="rpytest"))
    return int(pytest.main(args, plugins=[*plugins, NamedRpytest()]))


class NamedRpytest:
    """pytest<9: usage errors and ``--help`` say "rpytest" (the parser's
    ``prog``, read when it parses, after every plugin's ``pytest_addoption``)."""

    def pytest_addoption(self, parser):
        parser.prog = "rpytest"


def main():
    _die_with_parent()
    # The engine's variables are ours: read, then gone before any conftest
    # (or a subprocess a test starts) can see them.
    env = identity.take_engine_env()
    args = sys.argv[1:]
    identity.look_like_python_m_pytest(args)
    # The engine forwards an interrupt during collection as SIGINT, for
    # pytest to report; a SIGINT ignored by inheritance (rpytest started as
    # a background job) must not swallow it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from .protocol import Connection, hello

    if env.role == "worker":
        plugin = SpawnedWorkerPlugin(int(env.worker), int(env.worker_count))
        return run_pytest(args, plugin)
    _become_subreaper()
    if env.warm_fd:
        from .warm import main as warm_main

        code = warm_main(args)
    else:
        conn = Connection(env.socket)
        conn.send(hello("zygote"))
        code = run_pytest(args, ZygotePlugin(conn, shared_fixtures.SharedFixtures(env.shared_fixture_names())))
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(protocol.session_ended(code))
    _end_orphans()
    return code
