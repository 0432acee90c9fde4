"""Fixtures xdist users rely on, so suites written for xdist run unchanged.

The values come from ``config.workerinput``, which each rpytest worker sets
exactly as an xdist worker has it; outside a worker they match xdist's.
When pytest-xdist itself is loaded, its own ``worker_id``/``testrun_uid``
read ``config.workerinput`` the same way, so these are registered only
without it (and ``--fixtures`` lists what plain pytest lists).
"""
import sys

import pytest


@pytest.fixture(scope="session")
def worker_id(request):
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "master"


@pytest.fixture(scope="session")
def testrun_uid(request):
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["testrunuid"] if workerinput else None


class RegisterUnlessXdist:
    """Registers this module's fixtures when pytest-xdist is not loaded."""

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        if not config.pluginmanager.has_plugin("xdist"):
            config.pluginmanager.register(sys.modules[__name__], "rpytest_worker.fixtures")
