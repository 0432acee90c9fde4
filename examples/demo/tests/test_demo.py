"""A small suite that shows each kind of outcome rpytest reports."""
import time

import pytest


@pytest.mark.parametrize("n", range(20))
def test_square_is_non_negative(n):
    assert n * n >= 0


def test_catalogue_prices(catalogue):
    assert catalogue["pear"] > catalogue["apple"]


def test_runs_on_a_worker(worker_id):
    assert worker_id.startswith("gw")


def test_slow_enough_to_schedule_first():
    time.sleep(0.2)


@pytest.mark.skip(reason="shows a skip")
def test_skipped():
    pass


@pytest.mark.xfail(reason="shows an expected failure")
def test_expected_failure():
    assert 1 + 1 == 3


def test_deliberate_failure():
    assert {"a": 1} == {"a": 2}, "this one fails on purpose"
