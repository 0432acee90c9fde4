"""Tests for rpytest_worker.reports.fit_to_frame: a report too large
for one protocol frame keeps its outcome, and its output is cut with a note."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker.protocol import unpackb
from rpytest_worker.reports import fit_to_frame


def _done(output, longrepr=None):
    outcome = "failed" if longrepr else "passed"
    phase = {"when": "call", "outcome": outcome, "sections": [["Captured stdout call", output]]}
    if longrepr:
        phase["longrepr"] = longrepr
        phase["full"] = {"longrepr": longrepr}
    return {"type": "test_done", "index": 3, "phases": [phase], "warnings": []}


def test_a_report_within_the_limit_is_left_whole():
    data = fit_to_frame(_done("x" * 1000), limit=10_000)
    assert unpackb(data)["phases"][0]["sections"][0][1] == "x" * 1000


def test_an_oversized_report_is_cut_in_the_middle_with_a_note():
    output = "head" + "x" * 100_000 + "tail"
    data = fit_to_frame(_done(output, longrepr="E" * 50_000), limit=20_000)
    assert len(data) <= 20_000
    phase = unpackb(data)["phases"][0]
    text = phase["sections"][0][1]
    assert text.startswith("head") and text.endswith("tail")
    assert "characters cut here" in text
    assert phase["outcome"] == "failed" and "characters cut here" in phase["longrepr"]
    assert phase["full"]["longrepr"] == phase["longrepr"]
