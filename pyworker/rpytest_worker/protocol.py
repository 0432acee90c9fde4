"""The wire format between the rpytest engine (Rust) and its Python processes.

This is the only Python module that knows how bytes travel; its Rust twin is
``src/protocol.rs``. A frame is a big-endian u32 length followed by one
MessagePack map with a ``type`` key. Every process opens with ``hello``
carrying ``PROTOCOL_VERSION``, so a stale worker cache or an old daemon is a
clear error rather than a silent misread (a Rust unit test checks that both
sides carry the same number). Each message sent from Python is built by the
function of its name below.

Besides the socket, the engine talks to a process through its environment
(the ``RPYTEST_*`` variables, read once and removed in ``identity``) and its
exit status: the bootstrap (``src/pyworker.rs``) exits 97 when pytest cannot
be imported.

Messages, Python -> engine:
    hello         {protocol, role: "zygote"|"worker", pid, worker?, inventory?}
    shard_request {ids: [..]}             zygote, sharding: which tests to keep?
    collected     {items: [{id, shown, group, timeout}], deselected,
                   inventory, rootdir, basetemp, errors: [{id, longrepr}],
                   warnings: [...], dist, numprocesses, maxfail, durations...}
                  group: the xdist_group name (several: sorted, joined by "_")
                  or None; dist, numprocesses: xdist's --dist and -n from
                  pytest's config (addopts), or None
                  shared_fixtures: the shared session fixtures set up
                  before the fork (to tear down once at the end);
                  threads: names of threads alive besides the main one
                  (the engine then spawns workers instead of forking);
                  timeout: the item's @pytest.mark.timeout seconds or None;
                  timeout_plugin, timeout_plugin_active: pytest-timeout's
                  global limit (or None) and whether it is installed
    ready         {}                      a worker wants more tests
    test_done     {index, phases: [...], warnings: [...], max_rss_kb,
                   junit?: {attrs, properties}}
                  one finished test; max_rss_kb: the worker's ru_maxrss;
                  junit: what record_xml_attribute/record_testsuite_property
                  recorded outside the reports
    interrupted   {index, phases, warnings, message, detail: [str], returncode?}
                                          a test raised KeyboardInterrupt or
                                          pytest.exit(): the session ends
    stop_requested {reason, interrupted}  session.shouldfail (-x, --maxfail) or,
                                          interrupted, shouldstop (--sw, a plugin)
    leaked        {leaks: [{index, pid, cmdline}]}
                                          processes a worker's tests left running
                                          after every fixture was torn down
                                          (killed); sent before finished
    finished      {workeroutput}          a worker ran its last test and ended its
                                          session; workeroutput: its packed
                                          config.workeroutput, or None
    worker_forked {worker, pid}                              (zygote)
    worker_exited {worker, pid, exit_code?, signal?}         (zygote)
    terminal_summary {text}               (zygote) what plugins' pytest_terminal_summary
                                          hooks wrote, for the engine to print
    session_ended {exit_code}             (zygote) pytest.main returned: the
                                          session's final exit status
    shared_teardown_done {phases: [...]}  (zygote) the shared session fixtures
                                          are torn down; phases: a failure, as
                                          the teardown of the teardown_shared index
    internal_error {message}
Engine -> Python:
    shard_plan {keep: [..], line}         zygote: keep these shard_request indices
                                          (deselect the rest), print line
    fork     {worker}                     zygote: start worker number N
    run      {indices: [..]}              worker: more tests (collection indices)
    no_more  {}                           worker: run what you hold, then finish
    stop     {}                           worker: start nothing more, then finish
    replay   {entries: [...]}             zygote: reports to replay at finish
                                          (a run's reports come in chunks, each
                                          well under the frame limit)
    node_down {worker, workeroutput, error}
                                          zygote: a worker process ended (its
                                          output as the worker packed it), or was
                                          lost (error); for pytest_testnodedown
    finish   {entries: [...], exitstatus} zygote: the last chunk; replay them all
                                          into the session and let pytest
                                          finish it (then session_ended, exit)
    teardown_shared {index?}              zygote: every worker is done; tear the
                                          shared session fixtures down (a failure
                                          is reported on test index, the last run)
    shutdown {}
"""
import os
import select
import socket
import struct

PROTOCOL_VERSION = 4
MAX_FRAME = 256 * 1024 * 1024
_LEN = struct.Struct(">I")


def _load_codec():
    """msgpack when importable (fast, C); otherwise the pure-Python fallback."""
    if not os.environ.get("RPYTEST_NO_MSGPACK"):
        try:
            import msgpack

            def pack(obj):
                return msgpack.packb(obj, use_bin_type=True)

            def unpack(data):
                return msgpack.unpackb(data, raw=False, strict_map_key=False)

            return pack, unpack
        except ImportError:
            pass
    from .msgpack_fallback import packb, unpackb

    return packb, unpackb


packb, unpackb = _load_codec()


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


class Connection:
    """One framed MessagePack stream over a Unix socket to the engine."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self._buf = bytearray()

    def send(self, msg):
        self.send_packed(packb(msg))

    def send_packed(self, data):
        """Sends a message already packed (see ``reports.fit_to_frame``)."""
        self.sock.sendall(_LEN.pack(len(data)) + data)

    def poll(self):
        """True when a frame (or end of stream) can be read without blocking."""
        if self._complete_frame():
            return True
        return bool(select.select([self.sock], [], [], 0)[0])

    def recv(self):
        """The next message as a dict, or None when the engine has gone."""
        while not self._complete_frame():
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self._buf += chunk
        (n,) = _LEN.unpack_from(self._buf)
        msg = unpackb(bytes(self._buf[4 : 4 + n]))
        del self._buf[: 4 + n]
        if not isinstance(msg, dict) or "type" not in msg:
            raise ProtocolError("frame is not a map with a 'type' key")
        return msg

    def _complete_frame(self):
        if len(self._buf) < 4:
            return False
        (n,) = _LEN.unpack_from(self._buf)
        if n > MAX_FRAME:
            raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME} limit")
        return len(self._buf) >= 4 + n

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


# Every message the Python side sends is built here, one function per type,
# so the wire format reads in one place (the docstring above lists them).


def hello(role, **fields):
    return {"type": "hello", "protocol": PROTOCOL_VERSION, "role": role, "pid": os.getpid(), **fields}


def shard_request(ids):
    return {"type": "shard_request", "ids": ids}


def collected(**fields):
    """The inventory and the session's settings: see ``ZygotePlugin._announce``."""
    return {"type": "collected", **fields}


def ready():
    return {"type": "ready"}


def test_done(index, phases, warnings, max_rss_kb, junit=None):
    done = {"type": "test_done", "index": index, "phases": phases, "warnings": warnings, "max_rss_kb": max_rss_kb}
    if junit:
        done["junit"] = junit
    return done


def interrupted(index, phases, warnings, message, detail, returncode):
    return {"type": "interrupted", "index": index, "phases": phases, "warnings": warnings,
            "message": message, "detail": detail, "returncode": returncode}


def stop_requested(reason, interrupted):
    return {"type": "stop_requested", "reason": str(reason), "interrupted": interrupted}


def leaked(leaks):
    return {"type": "leaked", "leaks": leaks}


def finished(workeroutput):
    return {"type": "finished", "workeroutput": workeroutput}


def worker_forked(worker, pid):
    return {"type": "worker_forked", "worker": worker, "pid": pid}


def worker_exited(worker, pid, code):
    """``code``: ``os.waitstatus_to_exitcode``'s (negative for a signal)."""
    return {"type": "worker_exited", "worker": worker, "pid": pid,
            "exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}


def shared_teardown_done(phases):
    return {"type": "shared_teardown_done", "phases": phases}


def terminal_summary(text):
    return {"type": "terminal_summary", "text": text}


def session_ended(exit_code):
    return {"type": "session_ended", "exit_code": exit_code}


def internal_error(message):
    return {"type": "internal_error", "message": message}
