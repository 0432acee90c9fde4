"""What pytest-xdist gives users and plugins, played by rpytest's processes.

Suites and plugins written for pytest-xdist keep working without it (and
beside it: rpytest runs the workers, xdist's own controller never starts):

- ``-n`` and ``--dist`` in pytest's addopts are rpytest's worker count and
  distribution mode (``XdistWorkerCount``).
- Each worker has xdist's identity: ``config.workerinput`` and the
  ``PYTEST_XDIST_*`` variables (``become_xdist_worker``); the
  ``worker_id``/``testrun_uid`` fixtures are in ``fixtures``.
- The worker-node lifecycle xdist gives plugins, each point run where xdist
  runs it. ``pytest_configure_node(node)`` on the controller may add to
  ``node.workerinput``: the zygote calls it before each fork, and the child
  starts with that ``config.workerinput``. ``pytest_sessionfinish`` in each
  worker, where a plugin leaves what the controller needs in
  ``config.workeroutput`` (syrupy its snapshot report); a forked worker was
  configured by the zygote, so plugins that xdist registers only on the
  controller (they look for ``workerinput`` at configure time: pytest-cov's
  central controller, pytest-html, pytest-json-report, junitxml, the
  terminal) are left out of this call, and out of the controller hooks when
  those expect what a worker's own ``pytest_configure`` would have left
  (pytest-metadata). ``config.workeroutput`` travels back with the worker's
  ``finished`` message, through the engine, to the zygote.
  ``pytest_testnodedown(node, error)`` runs on the controller once per
  worker process, with ``node.workeroutput`` (absent, and ``error`` set,
  when the worker crashed), before the session finishes.

Without pytest-xdist installed the two controller hooks have no spec; the
zygote adds xdist's, so plugins that implement them optionally still work.
"""
import contextlib
import importlib.util
import inspect
import os
import sys
import tempfile
import traceback
from types import SimpleNamespace

import pytest

from . import pytest_internals
from .protocol import packb, unpackb


class XdistWorkerCount:
    """An `-n` in pytest's addopts (ini file or PYTEST_ADDOPTS) is rpytest's
    worker count, as xdist users have it; the engine takes `-n` off the
    command line itself. Registered in the zygote and in spawned workers."""

    def pytest_addoption(self, parser):
        # Without xdist installed pytest would reject the `-n`. pytest keeps
        # lowercase short options for itself; xdist registers its own `-n`
        # past that check the same way.
        if importlib.util.find_spec("xdist") is None:
            pytest_internals.add_lowercase_short_option(
                parser.getgroup("rpytest"), "-n", "--numprocesses", dest="numprocesses", default=None)

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


class XdistNodeHooks:
    """pytest-xdist's specs of the controller hooks, for when xdist is absent."""

    @pytest.hookspec()
    def pytest_configure_node(self, node):
        """A worker node is about to start."""

    @pytest.hookspec()
    def pytest_testnodedown(self, node, error):
        """A worker node ended."""


def workerinput(index, count, testrunuid):
    """``config.workerinput`` as pytest-xdist gives it to a worker, before
    the controller's ``pytest_configure_node`` hooks add to it."""
    return {"workerid": f"gw{index}", "workercount": count, "testrunuid": testrunuid, "mainargv": list(sys.argv)}


def become_xdist_worker(config, workerinput):
    """This process is, to plugins and tests, xdist's worker ``workerinput``."""
    os.environ["PYTEST_XDIST_WORKER"] = workerinput["workerid"]
    os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(workerinput["workercount"])
    os.environ["PYTEST_XDIST_TESTRUNUID"] = workerinput["testrunuid"]
    config.workerinput = workerinput
    if not hasattr(config, "workeroutput"):  # a spawned worker is one from its start
        config.workeroutput = {}
    _let_rerunfailures_report_reruns()


def _let_rerunfailures_report_reruns():
    """pytest-rerunfailures, on an xdist worker (``config.workerinput``), logs
    the report of a failed try it reruns only if pytest-xdist >= 1.20 is
    installed (older xdist ended the node on that report). Without xdist our
    workers would then hide every rerun: no RERUN line, no "rerun" count, and
    --retries could not tell that the plugin already reran the test."""
    module = sys.modules.get("pytest_rerunfailures")
    if module is not None and callable(getattr(module, "works_with_current_xdist", None)):
        module.works_with_current_xdist = lambda: True


def add_specs_unless_xdist(config):
    # An optional implementation (ours, pytest-cov's) makes the hook exist without a spec.
    hook = getattr(config.hook, "pytest_testnodedown", None)
    if hook is None or hook.spec is None:
        config.pluginmanager.add_hookspecs(XdistNodeHooks)


class WorkerNode:
    """What xdist's ``WorkerController`` shows the controller's hooks."""

    def __init__(self, config, worker, workerinput, workeroutput=None):
        self.config = config
        self.gateway = SimpleNamespace(id=f"gw{worker}")
        self.workerinput = workerinput
        if workeroutput is not None:
            self.workeroutput = workeroutput

    def __repr__(self):
        return f"<WorkerNode {self.gateway.id}>"


# Plugins (by module) configured once, in the zygote, for every worker: what
# their worker half would do at configure time is already in the zygote.
_CONFIGURED_FOR_ALL = ("pytest_html", "pytest_jsonreport", pytest_internals.JUNITXML_MODULE, "pytest_metadata")


def controller_only(config):
    """The plugins a worker of xdist would not have, or whose node hooks
    expect a worker configured by itself: the zygote registered and
    configured them for the whole run."""
    pm = config.pluginmanager
    found = [pm.get_plugin(name) for name in ("_cov", "terminalreporter")]
    for plugin in pm.get_plugins():
        module = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
        if module.startswith(_CONFIGURED_FOR_ALL):
            found.append(plugin)
    return [plugin for plugin in found if plugin is not None]


def _hook_without_controller_plugins(config, name):
    return config.pluginmanager.subset_hook_caller(name, remove_plugins=controller_only(config))


def configure_node(config, worker, workerinput):
    """Zygote, before forking worker ``worker``: the controller's hook may add
    to ``workerinput``; returns it, for the child."""
    hook = getattr(config.hook, "pytest_configure_node", None)
    if hook is not None and hook.get_hookimpls():  # on every fork: nothing to do without implementations
        node = WorkerNode(config, worker, workerinput)
        _hook_without_controller_plugins(config, "pytest_configure_node")(node=node)
    return workerinput


def finish_worker_session(session):
    """Worker, after its last test's teardown: the session's end as an xdist
    worker sees it. What the hooks print is dropped, as xdist drops its
    workers' output (the zygote's own session end prints once), unless a
    hook fails. Returns ``config.workeroutput`` packed for the wire (None
    when empty or not packable)."""
    config = session.config
    session.exitstatus = 1 if session.testsfailed else 0
    hook = _hook_without_controller_plugins(config, "pytest_sessionfinish")
    with _output_kept_aside() as kept:
        try:
            hook(session=session, exitstatus=session.exitstatus)
            failure = None
        except Exception:  # noqa: BLE001  the tests' results stand; say what failed
            failure = traceback.format_exc()
    if failure is not None:
        sys.stderr.write(f"rpytest: pytest_sessionfinish failed in a worker:\n{kept.read()}{failure}")
    output = getattr(config, "workeroutput", None)
    if not output:
        return None
    try:
        return packb(output)
    except (TypeError, ValueError) as e:
        sys.stderr.write(f"rpytest: a plugin's config.workeroutput cannot be sent to the controller ({e}); "
                         "it is dropped\n")
        return None


class _KeptOutput:
    def __init__(self, file):
        self.file = file

    def read(self):
        self.file.seek(0)
        return self.file.read().decode(errors="replace")


@contextlib.contextmanager
def _output_kept_aside():
    """Points stdout and stderr (the file descriptors) at a temp file."""
    with tempfile.TemporaryFile() as file:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        try:
            yield _KeptOutput(file)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, old in zip((1, 2), saved):
                os.dup2(old, fd)
                os.close(old)


def nodes_down(config, nodes):
    """Zygote, at the end of the run: ``pytest_testnodedown`` once per worker
    process, as xdist's controller calls it. ``nodes``: the engine's
    ``node_down`` messages. Sets ``numprocesses`` to the count of workers
    that ran, the number of reports plugins such as syrupy expect."""
    if not nodes:
        return
    if getattr(config.option, "numprocesses", None) is None and hasattr(config.option, "numprocesses"):
        config.option.numprocesses = len(nodes)
    hook = _hook_without_controller_plugins(config, "pytest_testnodedown")
    for node in nodes:
        output = node.get("workeroutput")
        output = unpackb(output) if output is not None else None
        workerinput = node.get("workerinput") or {}
        hook(node=WorkerNode(config, node["worker"], workerinput, output), error=node.get("error"))
