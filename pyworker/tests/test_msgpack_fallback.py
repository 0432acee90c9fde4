"""Tests for rpytest_worker.msgpack_fallback, checked byte-for-byte against msgpack."""
import collections
import enum
import math
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker.msgpack_fallback import packb, unpackb

INTS = [
    0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31,
    2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
    -1, -31, -32, -33, -127, -128, -129, -32767, -32768, -32769,
    -2**31 + 1, -2**31, -2**31 - 1, -2**32, -2**63 + 1, -2**63,
]
LENGTHS = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]
FLOATS = [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, math.pi, float("inf"), float("-inf"), float("nan")]


def _values():
    vals = [None, True, False] + INTS + FLOATS
    vals += ["x" * n for n in LENGTHS]
    vals += [b"\x01" * n for n in LENGTHS] + [bytearray(b"ab")]
    vals += ["é" * 16, "é" * 128, "日本語" * 100, "\U0001f600", "a\x00b"]
    vals += [list(range(n)) for n in (0, 15, 16, 65535, 65536)]
    vals += [tuple(range(n)) for n in (0, 15, 16)]
    vals += [{str(i): i for i in range(n)} for n in (0, 15, 16, 65535, 65536)]
    vals += [{i: None for i in range(20)}, {b"k": [1.0, None]}]
    vals.append({
        "type": "report", "id": "tests/test_a.py::test_x[1-2]", "when": "call",
        "outcome": "failed", "duration": 0.0123, "longrepr": "E  assert 1 == 2\n" * 50,
        "sections": [["Captured stdout call", "hi\n"]], "location": ["tests/test_a.py", 12, "test_x[1-2]"],
        "nested": [[[[{"a": [1, -1, 2**40, -2**40, b"", ""]}]]]], "big": list(range(-200, 70000, 97)),
    })
    return vals


VALUES = _values()
IDS = [f"{i}-{type(v).__name__}-{len(v) if hasattr(v, '__len__') else v}" for i, v in enumerate(VALUES)]


def _normalise(v):
    """What decoding returns: tuples become lists, bytearray becomes bytes."""
    if isinstance(v, (list, tuple)):
        return [_normalise(x) for x in v]
    if isinstance(v, dict):
        return {_normalise(k): _normalise(x) for k, x in v.items()}
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def _same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_bytes_match_msgpack(value):
    msgpack = pytest.importorskip("msgpack")
    assert packb(value) == msgpack.packb(value, use_bin_type=True)


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_decodes_msgpack_output(value):
    msgpack = pytest.importorskip("msgpack")
    data = msgpack.packb(value, use_bin_type=True)
    expected = msgpack.unpackb(data, raw=False, strict_map_key=False)
    got = unpackb(data)
    if isinstance(value, float):
        assert _same(got, value)
    else:
        assert got == expected


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_round_trip(value):
    got = unpackb(packb(value))
    if isinstance(value, float):
        assert _same(got, value)
        assert struct.pack(">d", got) == struct.pack(">d", value)
    else:
        assert got == _normalise(value)
        assert type(got) is type(_normalise(value))


@pytest.mark.parametrize("n", INTS)
def test_int_round_trip_type(n):
    got = unpackb(packb(n))
    assert got == n and type(got) is int


def test_known_encodings():
    assert packb(None) == b"\xc0"
    assert packb(False) == b"\xc2"
    assert packb(True) == b"\xc3"
    assert packb(127) == b"\x7f"
    assert packb(128) == b"\xcc\x80"
    assert packb(-32) == b"\xe0"
    assert packb(-33) == b"\xd0\xdf"
    assert packb(1.0) == b"\xcb" + struct.pack(">d", 1.0)
    assert packb("a" * 32) == b"\xd9\x20" + b"a" * 32
    assert packb(b"") == b"\xc4\x00"
    assert packb((1, 2)) == b"\x92\x01\x02"
    assert packb({"a": 1}) == b"\x81\xa1a\x01"


def test_decodes_all_int_forms_and_float32():
    cases = {
        b"\xcc\xff": 255, b"\xcd\x00\x01": 1, b"\xce\x00\x00\x00\x01": 1,
        b"\xcf" + b"\xff" * 8: 2**64 - 1, b"\xd0\x80": -128, b"\xd0\x01": 1,
        b"\xd1\x80\x00": -32768, b"\xd2\x80\x00\x00\x00": -2**31,
        b"\xd3\x80" + b"\x00" * 7: -2**63, b"\xd3" + b"\x00" * 7 + b"\x05": 5,
        b"\xff": -1, b"\x00": 0,
    }
    for data, value in cases.items():
        assert unpackb(data) == value
    assert unpackb(b"\xca" + struct.pack(">f", 1.5)) == 1.5
    assert unpackb(b"\xca" + struct.pack(">f", float("inf"))) == float("inf")


def test_decodes_non_minimal_container_and_str_headers():
    assert unpackb(b"\xdc\x00\x01\x01") == [1]
    assert unpackb(b"\xdd\x00\x00\x00\x00") == []
    assert unpackb(b"\xde\x00\x01\xa1k\xc0") == {"k": None}
    assert unpackb(b"\xdf\x00\x00\x00\x00") == {}
    assert unpackb(b"\xda\x00\x01a") == "a"
    assert unpackb(b"\xdb\x00\x00\x00\x01a") == "a"
    assert unpackb(b"\xc6\x00\x00\x00\x01a") == b"a"
    assert unpackb(bytearray(b"\x91\x01")) == [1]
    assert unpackb(memoryview(b"\x91\x01")) == [1]


def test_subclasses_pack_as_base_types():
    Point = collections.namedtuple("Point", "x y")

    class Color(enum.IntEnum):
        RED = 300

    value = [Point(1, 2), Color.RED, collections.OrderedDict(a=1)]
    assert packb(value) == packb([[1, 2], 300, {"a": 1}])
    msgpack = pytest.importorskip("msgpack")
    assert packb(value) == msgpack.packb(value, use_bin_type=True)


@pytest.mark.parametrize("value", [object(), {1, 2}, 1j, type, [1, object()], {"k": {"s"}}])
def test_pack_unsupported_type(value):
    with pytest.raises(TypeError):
        packb(value)


@pytest.mark.parametrize("n", [2**64, -2**63 - 1, 10**30])
def test_pack_int_out_of_range(n):
    with pytest.raises(OverflowError):
        packb(n)


@pytest.mark.parametrize("data", [
    b"",                        # empty
    b"\xcc",                    # uint8 without payload
    b"\xcd\x00",                # short uint16
    b"\xcf" + b"\x00" * 7,      # short uint64
    b"\xcb\x00\x00",            # short float64
    b"\xca\x00",                # short float32
    b"\xa3ab",                  # fixstr short
    b"\xd9",                    # str8 without length
    b"\xd9\x05abc",             # str8 short
    b"\xda\x00\x05abc",         # str16 short
    b"\xc4\x02a",               # bin8 short
    b"\xc6\xff\xff\xff\xff",    # huge bin32
    b"\x92\x01",                # fixarray missing element
    b"\xdd\xff\xff\xff\xff",    # huge array32
    b"\x81\xa1a",               # fixmap missing value
    b"\xdf\xff\xff\xff\xff",    # huge map32
    b"\xc1",                    # never-used byte
    b"\xd4\x00\x00",            # fixext: unsupported
    b"\xc7\x00\x00",            # ext8: unsupported
    b"\xa2\xff\xfe",            # invalid utf-8
    b"\x81\x90\x01",            # unhashable (list) map key
    b"\xc0\x00",                # trailing byte
    b"\x91\x01\x02",            # trailing byte after array
])
def test_unpack_malformed(data):
    with pytest.raises(ValueError):
        unpackb(data)
