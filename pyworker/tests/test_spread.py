"""The spread collection's measured choice and its deal of the files
(``spread.split``, ``spread.size_reason``); the whole path runs in
tests/parallel_collection.rs."""
import os
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker import spread


def files(tmp_path, sizes):
    nodes = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"test_{i}.py"
        path.write_bytes(b"#" * size)
        nodes.append(SimpleNamespace(path=path))
    return nodes


def test_each_share_keeps_collection_order_and_the_bytes_balance(tmp_path):
    nodes = files(tmp_path, [9000, 1000, 1000, 1000, 1000, 5000, 1000, 1000])
    shares = spread.split(nodes, 2)
    assert sorted(unit for share in shares for unit in share) == list(range(8))
    assert all(share == sorted(share) for share in shares)
    load = [sum(nodes[u].path.stat().st_size for u in share) for share in shares]
    assert abs(load[0] - load[1]) <= 5000, load


def test_fewer_files_than_workers_leave_no_empty_share(tmp_path):
    assert spread.split(files(tmp_path, [100, 100]), 4) == [[0], [1]]


def test_small_suites_and_one_huge_file_stay_in_the_zygote(tmp_path):
    assert "one worker" in spread.size_reason(files(tmp_path, [20000, 20000]), 1)
    assert "small suite" in spread.size_reason(files(tmp_path, [100, 100]), 2)
    assert "most of the suite" in spread.size_reason(files(tmp_path, [60000, 1000, 1000]), 2)
    assert spread.size_reason(files(tmp_path, [20000, 20000]), 2) is None
    assert spread.size_reason(files(tmp_path, [100, 100]), 2, always=True) is None
