"""``fixture_order``: a warm session's fixture ordering, worked out once,
is the order pytest itself gives, and only for the very same items (run in
a fresh pytest on a suite whose module- and class-scoped parametrized
fixtures make pytest reorder; the warm path runs in tests/warm_selection.rs)."""
import json
import os
import subprocess
import sys
import textwrap

PYWORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)

SUITE = """
import pytest

@pytest.fixture(scope="module", params=[1, 2])
def mod(request):
    return request.param

@pytest.fixture(scope="class", params=["a", "b"])
def cls(request):
    return request.param

def test_plain():
    pass

def test_mod(mod):
    pass

class TestC:
    def test_cls(self, cls, mod):
        pass

    def test_other(self, cls):
        pass

def test_mod_again(mod):
    pass
"""

# Stands where the checkpoint works the order out (before the fixture
# manager's hook) and records what the fixture manager then did.
PLUGIN = """
import json, os, pytest
from rpytest_worker import fixture_order, pytest_internals

class Watch:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items):
        original = pytest_internals.fixture_reorder()
        self.collected = [i.nodeid for i in items]
        self.expected = [i.nodeid for i in original(list(items))]
        memo = fixture_order.install()
        calls = []
        memo.reorder = lambda seq: calls.append(len(seq)) or original(seq)
        self.calls = calls
        if os.environ["CASE"] == "same":
            memo.work_out(items)
        elif os.environ["CASE"] == "other":
            memo.work_out(list(reversed(items)))
        self.memo = memo

    def pytest_collection_finish(self, session):
        with open(os.environ["OUT"], "w") as f:
            json.dump({"got": [i.nodeid for i in session.items], "expected": self.expected,
                       "collected": self.collected,
                       "calls": self.calls, "same_object": pytest_internals.fixture_reorder() is self.memo}, f)

def pytest_configure(config):
    config.pluginmanager.register(Watch(), "watch")
"""


def run(tmp_path, case):
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "watch_plugin.py").write_text(textwrap.dedent(PLUGIN))
    out = tmp_path / f"{case}.json"
    env = dict(os.environ, CASE=case, OUT=str(out), PYTHONPATH=os.pathsep.join([PYWORKER, str(tmp_path)]))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "watch_plugin", "--co", "-p", "no:cacheprovider"]
    proc = subprocess.run(argv, check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_the_same_items_take_the_order_worked_out_and_it_is_pytests(tmp_path):
    got = run(tmp_path, "same")
    assert got["same_object"]
    assert got["got"] == got["expected"]
    assert got["expected"] != got["collected"]  # the suite makes pytest reorder
    # Worked out once (work_out); the fixture manager's call found it.
    assert len(got["calls"]) == 1, got["calls"]


def test_other_items_are_ordered_by_pytest(tmp_path):
    got = run(tmp_path, "other")
    assert got["got"] == got["expected"]
    # work_out for the reversed list, then pytest's own for the real one.
    assert len(got["calls"]) == 2, got["calls"]


def test_nothing_worked_out_orders_as_pytest(tmp_path):
    got = run(tmp_path, "none")
    assert got["got"] == got["expected"]
    assert len(got["calls"]) == 1, got["calls"]
