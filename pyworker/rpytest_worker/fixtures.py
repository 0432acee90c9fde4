"""Fixtures xdist users rely on, so suites written for xdist run unchanged.

The values come from ``config.workerinput``, which each rpytest worker sets
exactly as an xdist worker has it; outside a worker they match xdist's.
"""
import pytest


@pytest.fixture(scope="session")
def worker_id(request):
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "master"


@pytest.fixture(scope="session")
def testrun_uid(request):
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["testrunuid"] if workerinput else None
