"""A spawned worker: a fresh interpreter that collects for itself, then works like a fork.

The engine spawns workers instead of forking them when forking is unsafe
(threads alive in the zygote) or asked for (``--worker-start=spawn``). Such
a worker runs ``pytest.main`` with the user's arguments like the zygote,
keeps the zygote's shard selection, and proves with ``hello``'s inventory
hash that it collected the same items; then it is an ordinary worker.
"""
import json
import sys

import pytest

from . import identity, pristine, protocol
from .worker import become_worker, silence_reporters
from .xdist_compat import workerinput


class SpawnedWorkerPlugin:
    """Collects like pytest, then runs what the engine sends."""

    def __init__(self, index, count):
        self.index = index
        self.count = count

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        silence_reporters(config)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """Keep the zygote's shard selection (indices in a JSON file)."""
        path = identity.ENV.shard_keep
        if path:
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
        node_input = workerinput(self.index, self.count, env.testrunuid)
        become_worker(session, self.index, env.socket, env.basetemp, node_input, forked=False)
        sys.stdout.flush()
        pristine.exit_now(0)
