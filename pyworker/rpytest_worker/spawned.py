"""A spawned worker: a fresh interpreter that collects for itself, then works like a fork.

The engine spawns workers instead of forking them when forking is unsafe
(threads alive in the zygote, ``fork_safety``) or asked for
(``--worker-start=spawn``). Before it starts one it asks the zygote
(``configure_node``) to run the controller's ``pytest_configure_node`` for
it, as xdist's controller does for each node; the zygote writes that
``workerinput`` and its own collection order to a file (``write_input``)
whose path the worker gets in ``RPYTEST_SPAWN_INPUT``.

The worker is xdist's worker from ``pytest_cmdline_main`` on, before any
plugin is configured, as in xdist: pytest-randomly then takes the
controller's seed from ``config.workerinput`` and shuffles as the zygote
did, pytest-rerunfailures reaches the zygote's rerun database. It runs
``pytest.main`` with the user's arguments like the zygote, then arranges its
items in the zygote's order, which the engine's indices refer to, and
proves with ``hello``'s inventory hash that it holds the same tests: the
same set collected in another order is fine, another set stops the worker.
"""
import json
import os
import sys

import pytest

from . import identity, pristine, protocol
from .plugin_compat import append_coverage, keep_coverage_central
from .worker import become_worker, silence_reporters
from .xdist_compat import become_xdist_worker, workerinput


def write_input(socket_path, index, node_input, items):
    """Zygote: what spawned worker ``index`` starts with, in a file next to
    the engine's socket (a directory of the run's own); returns its path."""
    path = os.path.join(os.path.dirname(socket_path), f"spawn-gw{index}.msgpack")
    data = {"workerinput": node_input, "order": [item.nodeid for item in items]}
    try:
        packed = protocol.packb(data)
    except (TypeError, ValueError) as e:
        sys.stderr.write(f"rpytest: a plugin's pytest_configure_node left a workerinput that cannot be passed "
                         f"to spawned worker gw{index} ({e}); it gets xdist's own keys only\n")
        data["workerinput"] = workerinput(index, node_input["workercount"], node_input["testrunuid"])
        packed = protocol.packb(data)
    with pristine.open_file(path + ".tmp", "wb") as f:
        f.write(packed)
    pristine.replace(path + ".tmp", path)
    return path


def read_input(path):
    """Worker: the zygote's ``write_input`` (empty when the engine had none)."""
    if not path:
        return {}
    with open(path, "rb") as f:
        return protocol.unpackb(f.read())


def in_order(items, order, subset):
    """``items`` arranged as ``order`` (the zygote's node ids), or None when
    they are not the same tests (``subset``: the zygote kept a shard of them)."""
    if not subset and len(items) != len(order):
        return None
    by_id = {}
    for item in items:
        by_id.setdefault(item.nodeid, []).append(item)
    arranged = []
    for nodeid in order:
        same = by_id.get(nodeid)
        if not same:
            return None
        arranged.append(same.pop(0))
    return arranged


class SpawnedWorkerPlugin:
    """Collects like pytest, then runs what the engine sends."""

    def __init__(self, index, count):
        self.index = index
        self.count = count
        self.given = read_input(identity.ENV.spawn_input)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_load_initial_conftests(self, early_config):
        append_coverage(early_config.known_args_namespace)
        yield

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config):
        """xdist's worker identity before any ``pytest_configure``, as xdist sets it."""
        node_input = self.given.get("workerinput") or workerinput(self.index, self.count, identity.ENV.testrunuid)
        become_xdist_worker(config, node_input)
        keep_coverage_central(config)

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        silence_reporters(config)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """Without the zygote's order: keep its shard selection (indices in a JSON file)."""
        path = identity.ENV.shard_keep
        if path and "order" not in self.given:
            with open(path) as f:
                keep = set(json.load(f))
            items[:] = [item for i, item in enumerate(items) if i in keep]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        env = identity.ENV
        if session.testsfailed:
            conn = protocol.Connection(env.socket)
            conn.send(protocol.internal_error(f"spawned worker gw{self.index} failed to collect the suite"))
            pristine.exit_now(3)
        order = self.given.get("order")
        arranged = in_order(session.items, order, subset=bool(env.shard_keep)) if order is not None else None
        if arranged is not None:
            session.items[:] = arranged  # else hello's hash tells the engine these are other tests
        config = session.config
        become_worker(session, self.index, env.socket, env.basetemp, config.workerinput, forked=False)
        sys.stdout.flush()
        pristine.exit_now(0)
