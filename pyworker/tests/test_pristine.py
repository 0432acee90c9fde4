"""Tests for rpytest_worker.pristine: rpytest's own calls do not go through
a patched standard library, and pytest's code can run without the patches
for a moment (``untouched``), which are then back in place."""
import os
import select
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker import pristine


def broken(*args, **kwargs):
    raise OSError("patched by a test")


def test_the_bound_functions_are_the_originals(monkeypatch):
    original_write = os.write
    monkeypatch.setattr(os, "write", broken)
    monkeypatch.setattr(select, "select", broken)
    assert pristine.write is original_write
    r, w = os.pipe()
    pristine.write(w, b"x")
    assert pristine.select_readable([r], [], [], 0)[0] == [r]
    assert pristine.read(r, 1) == b"x"
    pristine.close(r)
    pristine.close(w)


def test_untouched_restores_the_originals_then_the_patches(monkeypatch):
    original_write = os.write
    monkeypatch.setattr(os, "write", broken)
    monkeypatch.setattr(select, "select", broken)
    monkeypatch.setattr(os, "rpytest_test_added", 1, raising=False)
    with pristine.untouched():
        assert os.write is original_write
        assert select.select is not broken
        assert os.rpytest_test_added == 1, "names the user added are left alone"
    assert os.write is broken
    assert select.select is broken
