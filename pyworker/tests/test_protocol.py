"""Tests for rpytest_worker.protocol: every message Python sends has a golden
sample (for the Rust side's test), the samples travel as Connection frames,
and every incoming message is checked by ``decode``."""
import inspect
import os
import select
import socket
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker import identity, msgpack_fallback, protocol

PYWORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)

# Functions of protocol.py that build no message.
NOT_CONSTRUCTORS = {"decode", "frame", "packb", "samples", "daemon_samples", "main"}


def constructors():
    return {name for name, fn in vars(protocol).items()
            if inspect.isfunction(fn) and fn.__module__ == protocol.__name__
            and not name.startswith("_") and name not in NOT_CONSTRUCTORS}


def test_every_constructor_has_a_sample():
    sampled = {msg["type"] for msg in protocol.samples() + protocol.daemon_samples()}
    assert len(constructors()) >= 17
    assert constructors() - sampled == set(), "add a sample of each new message to protocol.samples()"
    assert sampled - constructors() == set(), "each message type is built by the function of its name"


def test_engine_and_daemon_samples_do_not_mix():
    daemon = {msg["type"] for msg in protocol.daemon_samples()}
    assert daemon == {"warm", "verdict", "taken", "ended", "refreshed", "stale"}
    assert not daemon & {msg["type"] for msg in protocol.samples()}


@pytest.mark.parametrize("which, make", [("samples", protocol.samples), ("daemon-samples", protocol.daemon_samples)])
def test_the_cli_writes_the_samples_as_connection_frames(tmp_path, which, make):
    out = tmp_path / "frames.bin"
    subprocess.run([sys.executable, "-m", "rpytest_worker.protocol", which, str(out)], cwd=PYWORKER, check=True)
    data = out.read_bytes()
    messages = []
    while data:
        (n,) = struct.unpack(">I", data[:4])
        messages.append(protocol.unpackb(data[4 : 4 + n]))
        data = data[4 + n :]
    assert messages == protocol.unpackb(protocol.packb(make()))


def test_the_cli_says_how_to_use_it():
    run = subprocess.run([sys.executable, "-m", "rpytest_worker.protocol"], cwd=PYWORKER, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 2
    assert "samples" in run.stderr


def test_collected_takes_every_key_and_no_other():
    sample = next(msg for msg in protocol.samples() if msg["type"] == "collected")
    fields = {key: value for key, value in sample.items() if key != "type"}
    assert protocol.collected(**fields) == sample
    fields.pop("maxfail")
    with pytest.raises(TypeError, match="maxfail"):
        protocol.collected(**fields)


def test_decode_accepts_each_engine_message_as_bytes_or_a_map():
    for kind, keys in protocol.FROM_ENGINE.items():
        msg = {"type": kind, **{key: None for key in keys}}
        assert protocol.decode(protocol.packb(msg)) == msg
        assert protocol.decode(msg) == msg
    for msg in ({"type": "handover", "socket": "/run/engine.sock", "args": ["-k", "slow"]},
                {"type": "serve", "args": ["tests/test_a.py"]}, {"type": "retire"},
                {"type": "refresh", "files": ["/p/test_a.py"], "dirs": []}):
        assert protocol.decode(msg, protocol.FROM_DAEMON) == msg


@pytest.mark.parametrize("frame, error", [
    ({"type": "fork", "worker": 1}, "'fork' message lacks count"),
    ({"type": "launch"}, "unknown message type 'launch'"),
    ({"type": "handover", "socket": "/s"}, "unknown message type 'handover'"),
    ({"kind": "run"}, "not a map with a 'type' key"),
    ([1, 2], "not a map with a 'type' key"),
    (b"\xc1", "undecodable frame"),
])
def test_decode_refuses_what_the_engine_never_sends(frame, error):
    with pytest.raises(protocol.ProtocolError, match=error):
        protocol.decode(frame)


def test_a_connection_decodes_what_it_receives(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    conn = protocol.Connection(path)
    peer, _ = server.accept()
    run = protocol.frame(protocol.packb({"type": "run", "indices": [3, 4]}))
    peer.sendall(run + protocol.frame(protocol.packb({"type": "run"})))
    assert conn.recv() == {"type": "run", "indices": [3, 4]}
    with pytest.raises(protocol.ProtocolError, match="lacks indices"):
        conn.recv()
    peer.close()
    assert conn.recv() is None
    conn.close()
    server.close()


def test_a_connection_survives_a_patched_standard_library(tmp_path, monkeypatch):
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def broken(*args, **kwargs):
        raise OSError("patched by a test")

    # What a test may leave behind, before the connection exists and after.
    for name in ("sendall", "send", "recv", "connect"):
        monkeypatch.setattr(socket.socket, name, broken)
    monkeypatch.setattr(socket, "socket", broken)
    monkeypatch.setattr(select, "select", broken)
    monkeypatch.setattr(os, "getpid", broken)
    conn = protocol.Connection(path)
    monkeypatch.undo()
    peer, _ = server.accept()
    peer.sendall(protocol.frame(protocol.packb({"type": "no_more"})))
    monkeypatch.setattr(socket.socket, "sendall", broken)
    monkeypatch.setattr(socket.socket, "recv", broken)
    monkeypatch.setattr(select, "select", broken)
    conn.send(protocol.ready())
    assert conn.poll()
    assert conn.recv() == {"type": "no_more"}
    assert not conn.poll()
    monkeypatch.undo()
    assert peer.recv(100) == protocol.frame(protocol.packb(protocol.ready()))
    conn.close()
    peer.close()
    server.close()


@pytest.mark.parametrize("pack", [protocol.packb, protocol._packb_escaping, msgpack_fallback.packb])
def test_a_lone_surrogate_travels_as_its_escape(pack):
    message = {"type": "internal_error", "message": "lone surrogate \udcff"}
    if pack is msgpack_fallback.packb:
        with pytest.raises(UnicodeEncodeError):
            pack(message)
        pack = lambda m: msgpack_fallback.packb(m, unicode_errors="backslashreplace")  # noqa: E731
    assert protocol.unpackb(pack(message)) == {"type": "internal_error", "message": "lone surrogate \\udcff"}
    assert protocol.packb({"ok": "é"}) == msgpack_fallback.packb({"ok": "é"})


def test_the_docstring_lists_every_message_and_variable():
    doc = protocol.__doc__
    types = {msg["type"] for msg in protocol.samples() + protocol.daemon_samples()}
    types |= set(protocol.FROM_ENGINE) | set(protocol.FROM_DAEMON)
    assert [kind for kind in sorted(types) if f"    {kind} {{" not in doc] == []
    assert [name for name in identity.PRIVATE if f"``{name}``" not in doc] == []
    assert "97" in doc
