"""The wire format between the rpytest engine (Rust) and its Python processes.

The only Python module that knows how bytes travel and what each message
holds; its Rust twin is ``src/protocol/mod.rs`` (``FromPython``, ``ToPython``),
and for a warm zygote's link to ``rpytest serve``, ``src/daemon/warm_zygote.rs``.
A frame is a big-endian u32 length followed by one MessagePack map with a
``type`` key. Every process opens with ``hello`` carrying ``PROTOCOL_VERSION``,
so a stale worker cache or an old daemon is a clear error, not a silent
misread (a Rust unit test checks that both sides carry the same number).
Each message Python sends is built by the function of its name below;
``samples()`` holds one of each, for the test that Rust reads them all
(``python -m rpytest_worker.protocol samples OUT_FILE`` writes them as
frames). ``decode`` checks each message received against ``FROM_ENGINE`` (or
``FROM_DAEMON``): an unknown type or a missing key is a ``ProtocolError``.

Besides the socket, the engine talks to a process through its environment
and its exit status. The variables ``RPYTEST_ROLE``, ``RPYTEST_SOCKET``,
``RPYTEST_WARM_FD``, ``RPYTEST_WARM_TTY``, ``RPYTEST_WARM_SPARE``, ``RPYTEST_WORKER``,
``RPYTEST_WORKER_COUNT``, ``RPYTEST_BASETEMP``, ``RPYTEST_TESTRUNUID``,
``RPYTEST_SHARDING``, ``RPYTEST_SHARD_KEEP``, ``RPYTEST_SPAWN_INPUT``, ``RPYTEST_SHARED_FIXTURES``,
``RPYTEST_FORK_PAST_THREADS``, ``RPYTEST_RETRYING`` and ``RPYTEST_COLLECT_SHARES`` are read once
and removed before user code runs (``identity.PRIVATE`` says what each holds); ``RPYTEST_NO_MSGPACK``, the
user's, selects ``msgpack_fallback``. The bootstrap (``src/python/embed.rs``)
exits 97 when pytest cannot be imported, so rpytest can say how to install
it; a process that cannot go on (no ``shard_plan``, a spawned worker that
failed to collect, a forked child whose code raised) exits 3.

Python -> engine (z: the zygote sends it, w: a worker):
    hello {protocol, role, pid, worker?, inventory?}  z w: first; a worker's
        number and ``collection.inventory_hash`` of what it holds
    shard_request {ids}                   z, sharding: which tests to keep?
    collected {COLLECTED_KEYS}            z: the inventory (items: [{id, shown,
        group, timeout}]), the deselected count (``unaffected``: how many of
        them ``--affected`` left out), the pytest settings the engine renders
        by, and holders (null, or per item the worker that collected it: spread.py)
    ready {}                              w: wants more tests
    started {index}                       w: starts test ``index`` now (what the
                                          engine's silence watch waits for)
    test_done {index, phases, warnings, max_rss_kb, item, junit?}
                                          w: one test ran (``reports``); item: the
                                          report's location and keywords, or null
    interrupted {index, phases, warnings, message, detail, returncode}
                                          w: KeyboardInterrupt or pytest.exit()
    stop_requested {reason, interrupted}  w: shouldfail (-x), or shouldstop
    leaked {leaks: [{index, pid, cmdline}]}  w: what its tests left running
    finished {workeroutput}               w: its session ended (packed output)
    worker_forked {worker, pid}           z
    node_configured {worker, path}        z: ``path`` holds what spawned worker N
                                          starts with (``spawned.write_input``)
    worker_exited {worker, pid, exit_code, signal}  z
    shared_teardown_done {phases}         z: a failure of the shared fixtures'
                                          teardown, or none
    terminal_summary {text}               z: what plugins' summary hooks wrote
    session_ended {exit_code, warnings}   z: pytest.main returned; the warnings
                                          recorded after ``collected`` (the cache's)
    internal_error {message}              z w
Engine -> Python (``FROM_ENGINE``):
    shard_plan {keep, line}               z: keep these shard_request indices
    fork {worker, count}                  z: start worker number N of count
    configure_node {worker, count}        z: worker N of count is to be spawned:
                                          ``pytest_configure_node``, then node_configured
    run {indices}                         w: more tests (collection indices)
    no_more {}                            w: run what you hold, then finish
    stop {}                               w: start nothing more, then finish
    replay {entries}                      z: reports for the end, in chunks
    node_down {worker, workeroutput, error}  z: a worker process ended or was lost
    finish {entries, exitstatus}          z: the last chunk: replay them all and
                                          let pytest finish the session
    teardown_shared {index}               z: tear the shared fixtures down (a
                                          failure is test ``index``'s, or None)
    shutdown {}                           z w: leave now
A checkpoint (a warm session) and ``rpytest serve``, over the socket pair
on RPYTEST_WARM_FD; the checkpoint serves many runs, each in a fork of its own:
    build {args}                          <- daemon: (a spare) go on, if configured with these
    warm {deps: {files, dirs}, started_ns}  -> daemon: collected; what it read
    serve {args}                          <- daemon (``FROM_DAEMON``): can you run these?
    verdict {reason}                      -> daemon: None: yes; else why not
    handover {socket, args}               <- daemon, with the client's stdout and
                                          stderr (SCM_RIGHTS): run them
    taken {pid}                           -> daemon: the run's own process took it
    ended {pid, exit_code, signal}        -> daemon: a run's process ended
    retire {}                             <- daemon: serve no more; exit once
                                          the runs still going have ended
    refresh {files, dirs}                 <- daemon: these files changed, and the
                                          listings of these directories
    refreshed {deps, started_ns, recollected} -> daemon: re-collected in place
    stale {reason}                        -> daemon: build a new session
"""
import array
import functools
import os
import sys

from . import msgpack_fallback, pristine

PROTOCOL_VERSION = 10
MAX_FRAME = 256 * 1024 * 1024
_LEN = pristine.Struct(">I")


def _load_codec():
    """msgpack when importable (fast, C); otherwise the pure-Python fallback.
    Returns (pack, pack with lone surrogates escaped, unpack)."""
    if not os.environ.get("RPYTEST_NO_MSGPACK"):
        try:
            import msgpack  # optional: the user's environment may not have it
        except ImportError:
            pass
        else:
            return (functools.partial(msgpack.packb, use_bin_type=True),
                    functools.partial(msgpack.packb, use_bin_type=True, unicode_errors="backslashreplace"),
                    functools.partial(msgpack.unpackb, raw=False, strict_map_key=False))
    return (msgpack_fallback.packb, functools.partial(msgpack_fallback.packb, unicode_errors="backslashreplace"),
            msgpack_fallback.unpackb)


_packb_strict, _packb_escaping, unpackb = _load_codec()


def packb(obj):
    """``obj`` as MessagePack. A string UTF-8 cannot encode (a lone surrogate:
    ``assert 0, "\\udcff"``, bytes decoded with ``surrogateescape``) is sent
    with ``backslashreplace``, as its escape, rather than lose the whole
    message; the strict encoder is tried first, as it is the fast one."""
    try:
        return _packb_strict(obj)
    except UnicodeEncodeError:
        return _packb_escaping(obj)


class ProtocolError(Exception):
    """The peer sent something that is not a valid message."""


# What the engine sends (``ToPython`` in src/protocol/mod.rs), each type with the
# keys it always carries (serde writes every field, None included).
FROM_ENGINE = {
    # to the zygote
    "shard_plan": ("keep", "line"), "fork": ("worker", "count"), "configure_node": ("worker", "count"),
    "teardown_shared": ("index",),
    "replay": ("entries",), "node_down": ("worker", "workeroutput", "error"), "finish": ("entries", "exitstatus"),
    # to a worker
    "run": ("indices",), "no_more": (), "stop": (),
    # to either
    "shutdown": (),
}
# What ``rpytest serve`` sends a warm zygote (``ToZygote`` in src/daemon/warm_zygote.rs).
FROM_DAEMON = {"build": ("args",), "serve": ("args",), "handover": ("socket", "args"), "retire": (),
               "refresh": ("files", "dirs")}


def decode(frame, known=FROM_ENGINE):
    """The message in ``frame`` (a frame's MessagePack body, or it unpacked) if it is one of
    ``known``'s types with every key that type carries; else raises ProtocolError."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        try:
            frame = unpackb(bytes(frame))
        except ValueError as e:
            raise ProtocolError(f"undecodable frame: {e}") from None
    if not isinstance(frame, dict) or "type" not in frame:
        raise ProtocolError("frame is not a map with a 'type' key")
    kind = frame["type"]
    required = known.get(kind) if isinstance(kind, str) else None
    if required is None:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(sorted(known))}")
    missing = [key for key in required if key not in frame]
    if missing:
        raise ProtocolError(f"{kind!r} message lacks {', '.join(missing)}")
    return frame


class Connection:
    """One framed MessagePack stream over a Unix socket to the engine."""

    incoming = FROM_ENGINE

    def __init__(self, path):
        self.sock = pristine.Socket(path)
        self._buf = bytearray()

    def send(self, msg):
        self.send_packed(packb(msg))

    def send_packed(self, data):
        """Sends a message already packed (see ``reports.fit_to_frame``)."""
        self.sock.sendall(frame(data))

    def poll(self):
        """True when a frame (or end of stream) can be read without blocking."""
        if self.has_frame():
            return True
        return bool(pristine.select_readable([self.sock], [], [], 0)[0])

    def recv(self):
        """The next message, decoded and checked (``decode``), or None when
        the peer has gone."""
        while not self.has_frame():
            chunk = self._read()
            if not chunk:
                return None
            self._buf += chunk
        (n,) = _LEN.unpack_from(self._buf)
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        return decode(body, self.incoming)

    def _read(self):
        return self.sock.recv(1 << 16)

    def has_frame(self):
        """Whether a whole frame is buffered (``recv`` will not block)."""
        if len(self._buf) < 4:
            return False
        (n,) = _LEN.unpack_from(self._buf)
        if n > MAX_FRAME:
            raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME} limit")
        return len(self._buf) >= 4 + n

    def close(self):
        self.sock.close()


class DaemonLink(Connection):
    """A warm zygote's socket pair to ``rpytest serve``: frames as with the
    engine, plus the file descriptors the handover passes."""

    incoming = FROM_DAEMON

    def __init__(self, fd):
        # The fd came through exec: keep it from the subprocesses a conftest starts.
        pristine.set_inheritable(fd, False)
        self.sock = pristine.Socket(fileno=fd)
        self._buf = bytearray()
        self._fds = []

    def recv_with_fds(self):
        """The next message (or None) and the file descriptors that came with it."""
        self._fds = []
        return self.recv(), self._fds

    def _read(self):
        data, ancdata, _, _ = self.sock.recvmsg(1 << 16, pristine.CMSG_SPACE(8 * 4))
        for level, kind, payload in ancdata:
            if level == pristine.SOL_SOCKET and kind == pristine.SCM_RIGHTS:
                self._fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        return data


def frame(data):
    """A packed message as it travels: its length, then its bytes."""
    return _LEN.pack(len(data)) + data


# Every message the Python side sends is built here, one function per type
# named as the type, so the wire format reads in one place (the docstring
# above lists them; ``samples`` holds one of each).


def hello(role, worker=None, inventory=None):
    """A worker says its number and ``collection.inventory_hash`` of its items."""
    ids = {} if worker is None else {"worker": worker, "inventory": inventory}
    return {"type": "hello", "protocol": PROTOCOL_VERSION, "role": role, "pid": pristine.getpid(), **ids}


def shard_request(ids):
    return {"type": "shard_request", "ids": ids}


# Every key of ``collected`` (``Inventory`` in src/protocol/records.rs); ``collection`` fills them.
COLLECTED_KEYS = frozenset((
    "items", "deselected", "unaffected", "inventory", "basetemp", "testrunuid", "collect_reports", "warnings",
    "rootdir",
    "terminal", "reportchars", "junitxml", "verbosity", "tbstyle", "summary_untrimmed", "no_summary",
    "fold_skipped", "xfail_tb", "instafail", "max_warnings", "show_capture", "capture", "collect_failed", "maxfail",
    "numprocesses",
    "durations", "durations_min", "durations_hint", "dist", "shared_fixtures", "threads", "holders", "pytest_version",
    "timeout_plugin", "timeout_plugin_active"))


def collected(**fields):
    """The inventory and the session's settings: every one of ``COLLECTED_KEYS``."""
    if fields.keys() != COLLECTED_KEYS:
        raise TypeError(f"collected: wrong keys {sorted(fields.keys() ^ COLLECTED_KEYS)}")
    return {"type": "collected", **fields}


def ready():
    return {"type": "ready"}


def started(index):
    return {"type": "started", "index": index}


def test_done(index, phases, warnings, max_rss_kb, item, junit=None):
    """``item``: ``{location, keywords}`` from the test's last report
    (``reports.item_base``), which the zygote's replay reuses."""
    done = {"type": "test_done", "index": index, "phases": phases, "warnings": warnings, "max_rss_kb": max_rss_kb,
            "item": item}
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


def node_configured(worker, path):
    return {"type": "node_configured", "worker": worker, "path": path}


def worker_exited(worker, pid, code):
    """``code``: ``os.waitstatus_to_exitcode``'s (negative for a signal)."""
    return {"type": "worker_exited", "worker": worker, "pid": pid,
            "exit_code": code if code >= 0 else None, "signal": -code if code < 0 else None}


def shared_teardown_done(phases):
    return {"type": "shared_teardown_done", "phases": phases}


def terminal_summary(text):
    return {"type": "terminal_summary", "text": text}


def session_ended(exit_code, warnings):
    """``warnings``: as ``reports.encode_warning`` makes them."""
    return {"type": "session_ended", "exit_code": exit_code, "warnings": warnings}


def internal_error(message):
    return {"type": "internal_error", "message": message}


# To ``rpytest serve``, from a warm zygote.


def warm(deps, started_ns):
    return {"type": "warm", "deps": deps, "started_ns": started_ns}


def verdict(reason):
    """``reason``: None when the checkpoint can serve the run."""
    return {"type": "verdict", "reason": reason}


def refreshed(deps, started_ns, recollected):
    """``recollected``: the test files collected again."""
    return {"type": "refreshed", "deps": deps, "started_ns": started_ns, "recollected": recollected}


def stale(reason):
    return {"type": "stale", "reason": reason}


def taken(pid):
    return {"type": "taken", "pid": pid}


def ended(pid, code):
    """``code``: ``os.waitstatus_to_exitcode``'s (negative for a signal)."""
    return {"type": "ended", "pid": pid, "exit_code": code if code >= 0 else None,
            "signal": -code if code < 0 else None}


# Golden samples: one realistic message of each type Python sends, built by
# the functions above, for the test that the Rust side reads every one.
_NODEID = "tests/test_shop.py::test_checkout[eur]"
_LONGREPR = "    def test_checkout(currency):\n>       assert total(currency) == 10\nE       assert 9 == 10\n"
_FULL = {"$report_type": "TestReport", "nodeid": _NODEID, "location": ["tests/test_shop.py", 10, "test_checkout[eur]"],
         "keywords": {"test_checkout[eur]": 1, "parametrize": 1}, "outcome": "failed", "longrepr": _LONGREPR,
         "when": "call", "user_properties": [["ticket", "SHOP-7"]], "duration": 0.0031, "start": 1767225600.25,
         "stop": 1767225600.2531}
# A failing test's phases as ``reports.encode_phase`` makes them: compact, full, with repeated sections left out.
_PHASES = [
    {"when": "setup", "outcome": "passed", "category": "", "letter": "", "word": "", "duration": 0.0004},
    {"when": "call", "outcome": "failed", "category": "failed", "letter": "F", "word": "FAILED", "duration": 0.0031,
     "full": _FULL, "sections": [["Captured stdout call", "paying 9 EUR\n"]], "head_line": "test_checkout[eur]",
     "longrepr": _LONGREPR, "crash": "assert 9 == 10", "crash_line": "tests/test_shop.py:12: assert 9 == 10"},
    {"when": "teardown", "outcome": "passed", "category": "", "letter": "", "word": "", "duration": 0.0002,
     "full": dict(_FULL, when="teardown", outcome="passed", longrepr=None), "sections": [],
     "sections_from_previous": 1, "head_line": "test_checkout[eur]"},
]
_SKIPPED = {"when": "setup", "outcome": "skipped", "category": "skipped", "letter": "s", "word": "SKIPPED",
            "duration": 0.0001, "full": dict(_FULL, outcome="skipped", when="setup"), "sections": [],
            "head_line": "test_refund", "skip": ["tests/test_shop.py", 20, "Skipped: no bank"]}
_WARNING = {"message": "tests/test_shop.py:5: DeprecationWarning: use v2", "location": _NODEID, "when": "runtest"}
_ITEMS = [{"id": _NODEID, "shown": "test_shop.py::test_checkout[eur]", "group": None, "timeout": None},
          {"id": "tests/test_shop.py::test_undo", "shown": "test_shop.py::test_undo", "group": "db", "timeout": 2.5}]
_COLLECT_REPORTS = [
    {"id": "tests/test_legacy.py", "outcome": "failed", "longrepr": "ImportError: no module 'x'"},
    {"id": "tests/test_gpu.py", "outcome": "skipped", "longrepr": "('tests/test_gpu.py', 3, 'Skipped: no GPU')",
     "skip": ["tests/test_gpu.py", 3, "Skipped: no GPU"]}]


def samples():
    """One of each message Python sends the engine (``hello`` as both roles); fixed values."""
    pid = 41873
    return [
        dict(hello("zygote"), pid=pid),
        dict(hello("worker", worker=1, inventory="3f2a9c04d1e8b7a6"), pid=pid + 2),
        shard_request([item["id"] for item in _ITEMS]),
        collected(
            items=_ITEMS, deselected=1, unaffected=0, inventory="3f2a9c04d1e8b7a6",
            basetemp="/tmp/pytest-of-ana/pytest-12",
            testrunuid="9f1c2e7d4b5a4c3e8d7f6a5b4c3d2e1f", collect_reports=_COLLECT_REPORTS,
            warnings=[dict(_WARNING, location=None, when="config")], rootdir="/home/ana/shop", terminal=True,
            reportchars="fE", junitxml="/home/ana/shop/junit.xml", verbosity=1, tbstyle="auto",
            summary_untrimmed=False, no_summary=False, fold_skipped=True, xfail_tb=False, instafail=False,
            max_warnings=None,
            show_capture="all", capture="fd", collect_failed=1, maxfail=0, numprocesses="4", durations=10,
            durations_min=0.005, durations_hint=True, dist="loadgroup", shared_fixtures=["database"],
            threads=["ThreadPoolExecutor-0_0"], holders=[0, 1],
            pytest_version=(8, 3), timeout_plugin=30.0, timeout_plugin_active=True),
        ready(),
        started(0),
        test_done(0, _PHASES, [_WARNING], 48212, {"location": ["tests/test_shop.py", 11, "test_checkout[eur]"],
                                                  "keywords": ["test_checkout[eur]", "test_shop.py", "shop", "eur"]},
                  junit={"attrs": {"owner": "payments"}, "properties": [["b", "7"]]}),
        interrupted(1, [_SKIPPED], [], "KeyboardInterrupt", ["tests/test_shop.py:22: KeyboardInterrupt"], None),
        stop_requested("stopping after 1 failures", interrupted=False),
        leaked([{"index": 0, "pid": 52011, "cmdline": "python -m http.server 8123"}]),
        finished(packb({"syrupy": {"snapshots": ["__snapshots__/test_shop.ambr"]}})),
        worker_forked(1, pid + 2),
        node_configured(1, "/tmp/rpytest-1000/run-52011/spawn-gw1.msgpack"),
        worker_exited(1, pid + 2, -9),
        shared_teardown_done([dict(_PHASES[1], when="teardown", category="error", letter="E", word="ERROR")]),
        terminal_summary("---------- coverage: platform linux, python 3.12.3 ----------\nTOTAL  120  4  97%\n"),
        session_ended(1, [dict(_WARNING, location="../venv/lib/pytest/cacheprovider.py:487", when="config")]),
        internal_error("zygote got unexpected 'run'"),
    ]


def daemon_samples():
    """One message of each type a warm zygote sends ``rpytest serve``."""
    stamp = 1767225600123456789
    deps = {"files": [["/home/ana/shop/tests/test_shop.py", [stamp, stamp, 812, 5242881]],
                      ["/home/ana/shop/tests/conftest.py", None]],
            "dirs": [["/home/ana/shop/tests", "6c1b0e5f8a2d4c3b9e7f1a0d2c4b6e8f", stamp]]}
    return [warm(deps, stamp - 10**9), verdict(None), verdict("option 'verbose' differs from the warm session's"),
            taken(41512), ended(41512, 1), ended(41513, -9),
            refreshed(deps, stamp, ["/home/ana/shop/tests/test_shop.py"]),
            stale("module shop.db was imported while pytest configured (by a conftest or plugin)")]


def main(argv):
    """``samples OUT_FILE`` (or ``daemon-samples OUT_FILE``): the samples as
    consecutive frames, as a Connection sends them."""
    which = {"samples": samples, "daemon-samples": daemon_samples}
    if len(argv) != 2 or argv[0] not in which:
        sys.stderr.write("usage: python -m rpytest_worker.protocol samples|daemon-samples OUT_FILE\n")
        return 2
    with open(argv[1], "wb") as out:
        out.write(b"".join(frame(packb(msg)) for msg in which[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
