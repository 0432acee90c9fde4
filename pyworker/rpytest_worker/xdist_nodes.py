"""The worker-node lifecycle pytest-xdist gives plugins, played across fork.

Plugins written for pytest-xdist split their work between the controller
and the workers through four points, and rpytest runs each where xdist does:

- ``pytest_configure_node(node)``: the controller, before a worker starts,
  may add to ``node.workerinput``. The zygote calls it before each fork; the
  child starts with that ``workerinput`` as its ``config.workerinput``.
- ``pytest_sessionfinish`` in each worker: a plugin leaves what the
  controller needs in ``config.workeroutput`` (syrupy its snapshot report).
  A forked worker was configured by the zygote, so plugins that xdist
  registers only on the controller (they look for ``workerinput`` at
  configure time: pytest-cov's central controller, pytest-html,
  pytest-json-report, junitxml, the terminal) are left out of this call,
  and out of the controller hooks below when those expect what a worker's
  own ``pytest_configure`` would have left (pytest-metadata).
- ``config.workeroutput`` travels back with the worker's ``finished``
  message, through the engine, to the zygote.
- ``pytest_testnodedown(node, error)`` on the controller, once per worker
  process, with ``node.workeroutput`` (absent, and ``error`` set, when the
  worker crashed), before the session finishes.

Without pytest-xdist installed the two controller hooks have no spec; the
zygote adds xdist's, so plugins that implement them optionally still work.
"""
import contextlib
import inspect
import os
import sys
import tempfile
import traceback
from types import SimpleNamespace

import pytest

from .protocol import packb


class XdistNodeHooks:
    """pytest-xdist's specs of the controller hooks, for when xdist is absent."""

    @pytest.hookspec()
    def pytest_configure_node(self, node):
        """A worker node is about to start."""

    @pytest.hookspec()
    def pytest_testnodedown(self, node, error):
        """A worker node ended."""


def workerinput(index, count, testrunuid):
    """``config.workerinput`` as pytest-xdist gives it to a worker."""
    return {"workerid": f"gw{index}", "workercount": count, "testrunuid": testrunuid}


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
_CONFIGURED_FOR_ALL = ("pytest_html", "pytest_jsonreport", "_pytest.junitxml", "pytest_metadata")


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
    from .protocol import unpackb

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
