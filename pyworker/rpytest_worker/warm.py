"""A pre-warmed zygote: collects ahead of time for ``rpytest serve``.

The daemon starts this zygote with a client's interpreter, cwd, arguments
and environment, its stdout/stderr going to a capture file, and a socket
pair to the daemon on ``RPYTEST_WARM_FD``. It runs ``pytest.main`` like any
zygote and collects, without the run's selection (``-k``, ``-m``, paths:
the daemon's key leaves them out). Where pytest would let plugins modify
the collected items it tells the daemon every file and directory its
collection depends on, and becomes a ``Checkpoint``: it waits for runs.

Each run gets a fork of it. The daemon passes the client's stdout and
stderr (SCM_RIGHTS) and the client's engine socket; the fork replays what
pytest printed so far into them, makes them its fd 1 and 2, connects to the
client's engine, applies the run's selection and from then on is an
ordinary zygote: the client's engine renders, schedules and tears down
exactly as in an embedded run. The checkpoint itself never runs a test, so
no run can leave state for the next.
"""
import contextlib
import gc
import hashlib
import io
import os
import shutil
import sys
import time

import pytest

from . import cache_plugins, fixture_order, identity, pristine, protocol, pytest_internals, shared_fixtures
from .checkpoint import Checkpoint
from .collection import item_record
from .recollect import ImportGraph, Refresh, Stale, visible_names
from .zygote import ZygotePlugin

# Directories walked for the set of candidate test files (by their mtimes).
MAX_WALKED_DIRS = 20000
# Directory names never walked: caches, VCS data, virtualenvs are found by
# pyvenv.cfg; what pytest imports from them is recorded file by file.
SKIPPED_DIRS = {"__pycache__", "node_modules"}
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py")
# What pytest's rootdir and inifile discovery looks for in every ancestor
# of its arguments and the invocation directory (setup.py: the rootdir
# when there is no ini file). Older pytests look for a subset.
DISCOVERY_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "setup.py",
)
# The clock's granularity (src/daemon/deps.rs SETTLE_NS): a file stamped
# this close before an instant may have been written after it.
SETTLE_NS = 10_000_000
# Where reads say nothing about the suite.
UNWATCHED_PREFIXES = ("/proc/", "/dev/", "/sys/")


class ReadRecorder:
    """Every file opened for reading and every directory listed while
    pytest configures and collects (Python's audit events), so data a test
    module reads at import time (parametrize cases from a JSON file, a glob
    of fixtures) counts as a dependency like the module itself. An audit
    hook cannot be removed: after the handover it only returns."""

    def __init__(self, on_read=None):
        self.files = set()
        self.dirs = set()
        self.recording = True
        self.on_read = on_read  # told each file read, as it is read
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if not self.recording:
            return
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, (str, bytes)) and not any(c in (mode or "r") for c in "wax+"):
                path = os.path.abspath(os.fsdecode(path))
                self.files.add(path)
                if self.on_read is not None:
                    self.on_read(path)
        elif event in ("os.listdir", "os.scandir") and isinstance(args[0], (str, bytes)):
            self.dirs.add(os.path.abspath(os.fsdecode(args[0])))

    def stop(self, config):
        """What was read, less what says nothing about the collection:
        bytecode caches, and pytest's own cache (it is rewritten by every
        run; the runs that use it while collecting never take a warm zygote)."""
        self.recording = False
        cachedir = pytest_internals.cache_dir(config)
        unwatched = (*UNWATCHED_PREFIXES, *([os.path.join(str(cachedir), "")] if cachedir else []))

        def watched(path):
            return not path.startswith(unwatched) and f"{os.sep}__pycache__{os.sep}" not in path

        files = {f for f in self.files if watched(f) and os.path.isfile(f)}
        dirs = {d for d in self.dirs if watched(d) and os.path.isdir(d)}
        return files, dirs


class DeferredCacheWrites:
    """pytest's cache written only once a run takes the zygote over.

    A pre-warmed zygote configures pytest seconds or minutes before any run
    asks for it, and plugins write the cache while configuring
    (pytest-randomly stores the seed it picked): the project's
    ``.pytest_cache`` then changed with no run, and ``--randomly-seed=last``
    replayed a seed no run had used. Until the handover ``Cache.set`` keeps
    the value here (``get`` sees it); ``commit`` writes everything, in order,
    as a cold run would have at its start. A zygote the daemon lets go
    writes nothing."""

    def __init__(self):
        self.pending = []  # (cache, key, value)
        self._set, self._get = pytest.Cache.set, pytest.Cache.get
        deferred = self

        def set_later(cache, key, value):
            deferred.pending.append((cache, key, value))

        def get_pending(cache, key, default):
            for owner, pending_key, value in reversed(deferred.pending):
                if owner is cache and pending_key == key:
                    return value
            return deferred._get(cache, key, default)

        pytest.Cache.set, pytest.Cache.get = set_later, get_pending

    def commit(self):
        pytest.Cache.set, pytest.Cache.get = self._set, self._get
        pending, self.pending = self.pending, []
        for cache, key, value in pending:
            cache.set(key, value)


def stat_record(path):
    """What the daemon compares before a run: None for an absent file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def _imported_files(session):
    config = session.config
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            files.add(os.path.abspath(path))
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if isinstance(path, str):
            files.add(os.path.abspath(path))
    files.update(str(item.path) for item in session.items)
    if config.inipath:
        files.add(str(config.inipath))
    for base in {config.rootpath, config.invocation_params.dir}:
        files.update(str(base / name) for name in CONFIG_FILES)
    files |= discovery_candidates(config, config.args)
    files.add(sys.executable)
    files.add(os.path.realpath(sys.executable))
    return files


def discovery_candidates(config, paths):
    """Every file whose appearance would change pytest's rootdir or inifile:
    the discovery names in the rootdir, the invocation directory, each path
    argument and all their ancestors, recorded whether or not they exist."""
    invocation = str(config.invocation_params.dir)
    starts = {str(config.rootpath), invocation}
    for arg in paths:
        starts.add(os.path.abspath(os.path.join(invocation, str(arg).split("::")[0])))
    bases = set()
    for start in starts:
        path = start
        while path not in bases:
            bases.add(path)
            path = os.path.dirname(path)
    return {os.path.join(base, name) for base in bases for name in DISCOVERY_FILES}


def path_dirs_and_pth_files():
    dirs, files = set(), set()
    for raw in sys.path:
        entry = os.path.abspath(raw or ".")
        if not os.path.isdir(entry):
            continue
        dirs.add(entry)
        with contextlib.suppress(OSError):
            files.update(os.path.join(entry, n) for n in os.listdir(entry) if n.endswith(".pth"))
    return dirs, files


def _walked_dirs(roots):
    """Directories under the collection roots: a file added, removed or
    renamed in any of them changes that directory's mtime."""
    seen = set()
    for root in sorted(roots):
        for top, names, _ in os.walk(root):
            if len(seen) >= MAX_WALKED_DIRS:
                return seen
            seen.add(top)
            names[:] = [n for n in names if not _skipped(top, n)]
    return seen


def _skipped(top, name):
    if name.startswith(".") or name in SKIPPED_DIRS or name.endswith(".egg-info"):
        return True
    return os.path.exists(os.path.join(top, name, "pyvenv.cfg"))


def _collection_roots(config):
    roots = {str(config.rootpath), str(config.invocation_params.dir)}
    for arg in config.args:
        path = os.path.abspath(os.path.join(str(config.invocation_params.dir), arg.split("::")[0]))
        roots.add(path if os.path.isdir(path) else os.path.dirname(path))
    return {r for r in roots if os.path.isdir(r)}


def listing_digest(path):
    """A digest of a directory's visible entry names (the daemon computes
    the same): it changes when a file is added, removed or renamed there."""
    names = visible_names(path)
    if names is None:
        return None
    return hashlib.sha256(b"\0".join(sorted(os.fsencode(name) for name in names))).hexdigest()[:32]


def dependencies(session, recorder):
    """Every file this collection read, with its stat, and every directory
    it looked in, with the digest of its listing and its mtime."""
    files = _imported_files(session)
    dirs, pth_files = path_dirs_and_pth_files()
    dirs |= _walked_dirs(_collection_roots(session.config))
    read_files, listed_dirs = recorder.stop(session.config)
    files |= read_files
    dirs |= listed_dirs
    return {
        "files": [[path, stat_record(path)] for path in sorted(files | pth_files)],
        "dirs": [[path, listing_digest(path), _mtime_ns(path)] for path in sorted(dirs)],
    }


def _mtime_ns(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class _TtyText(io.TextIOWrapper):
    """stdout that says it is a terminal, for a client whose stdout is one:
    pytest then prints the header as it would there (colours, width)."""

    def isatty(self):
        return True


def pretend_terminal(columns):
    """Until the handover, pytest sees a terminal `columns` wide on stdout.
    Returns the function that undoes the width (the stream stays: pytest's
    terminal writer holds it, and after the handover it is the terminal)."""
    sys.stdout.flush()
    raw = open(1, "wb", closefd=False)  # noqa: SIM115 (it is stdout for good)
    sys.stdout = _TtyText(raw, encoding=sys.stdout.encoding, errors=sys.stdout.errors, line_buffering=True)
    original = shutil.get_terminal_size
    shutil.get_terminal_size = lambda fallback=(80, 24): os.terminal_size((columns, fallback[1]))

    def restore():
        shutil.get_terminal_size = original

    return restore


def _read_capture(fd):
    """What pytest wrote to `fd` so far (the daemon opened it read-write)."""
    pristine.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = pristine.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[pristine.write(fd, view):]


def _same_file(a, b):
    sa, sb = pristine.fstat(a), pristine.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def adopt_client_streams(config, out, err, edits=()):
    """Replays the captured output into the client's streams, then makes
    them fd 1 and 2, also where pytest's capture restores them from.
    ``edits``: (old, new) byte strings replaced once in the replayed stdout."""
    sys.stdout.flush()
    sys.stderr.flush()
    merged = _same_file(1, 2)
    captured = _read_capture(1)
    for old, new in edits:
        captured = captured.replace(old, new, 1)
    _write_all(out, captured)
    if not merged:
        _write_all(err, _read_capture(2))
    capturing = pytest_internals.global_capturing(config)
    for name, fd in (("out", out), ("err", err)):
        saved = getattr(getattr(capturing, name, None), "targetfd_save", None)
        if saved is not None:
            pristine.dup2(fd, saved, inheritable=False)  # as pytest's own os.dup() made it
    for copy in pytest_internals.faulthandler_stderr_fds(config):
        pristine.dup2(err, copy, inheritable=False)
    pristine.dup2(out, 1)
    pristine.dup2(err, 2)
    pristine.close(out)
    pristine.close(err)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not isinstance(stream, _TtyText):
            stream.reconfigure(line_buffering=stream.isatty() or stream is sys.stderr)


class WarmZygotePlugin(ZygotePlugin):
    """A zygote that collects, then serves runs as a ``Checkpoint``."""

    def __init__(self, daemon, restore_terminal, recorder, shared, cache_writes, graph):
        super().__init__(None, shared, graph, recorder)
        self.cache_writes = cache_writes
        # Every file of the suite is read after this instant: one stamped
        # later may have changed while it was being read.
        self.started_ns = time.time_ns()
        self.daemon = daemon
        self.restore_terminal = restore_terminal
        self._records = {}  # id(item) -> its item record, made while waiting
        self.listings = {}  # directory -> its visible names when last collected

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session):
        """No cyclic garbage collection while collecting: thousands of nodes
        are made and none is garbage, yet each young-generation pass walks
        them (a sixth of the time). The collector runs again, fully, once
        the session is collected (``_settle``), before any run forks."""
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        cache_plugins.prepare(session.config)

    # Replaces ZygotePlugin's (which asks the engine for a shard: a warm run never shards).
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items):
        """Where a run's selection starts to matter: the checkpoint waits
        here, and each run's fork goes on from here with its own."""
        handover = self._become_checkpoint(session, items)
        self._adopt(session, handover)
        handover.plan.apply(session, items)
        yield

    def _become_checkpoint(self, session, items):
        self.graph.stop()
        if getattr(self, "_gc_was_enabled", False):
            gc.enable()
        self.daemon.send(protocol.warm(self._settle(session), self.started_ns))
        built_args = session.config.invocation_params.args
        refresh = lambda msg: self._refresh(session, items, msg)  # noqa: E731
        self.fixture_order = fixture_order.install()
        self.checkpoint = Checkpoint(self.daemon, built_args, refresh, self._prepare(session, items))
        return self.checkpoint.serve(session)  # returns in a run's fork only

    def _settle(self, session):
        """The session's dependencies, once its collected objects are
        collected and frozen (each run's fork then skips them)."""
        sys.stdout.flush()
        sys.stderr.flush()
        deps = dependencies(session, self.recorder)
        self.settled = dict(deps["files"])  # what the daemon checks before each run (``affected``)
        self.listings = {path: set(visible_names(path) or ()) for path, _, _ in deps["dirs"]}
        # Collected in full, then frozen: each run's fork (the run's
        # controller, which runs no test) then skips the session's objects in
        # its collections, pytest's two full ones at unconfigure included
        # (40 ms each for 5,000 tests). Workers unfreeze them first
        # (``ZygotePlugin._fork``): under test, every object is collectable
        # and seen by ``gc.get_referrers``, as in a cold run.
        gc.collect()
        gc.freeze()
        return deps

    def _prepare(self, session, items):
        """What each run would otherwise redo, done while the session idles
        (``Checkpoint.idle_work``), a slice at a time: each item's record
        for the engine, and its location (a cached property pytest reads for
        every report; the first read walks the item's source, a tenth of a
        trivial test's cost), then pytest's fixture order for the whole
        session (``fixture_order``). A run that waited for this session to
        be built does its own share, as a cold run does."""
        config = session.config
        pending = [item for item in session.items if id(item) not in self._records]
        position = 0

        def slice_of_work():
            nonlocal position
            for item in pending[position:position + 200]:
                self._records[id(item)] = item_record(config, item)
                _ = item.location  # cached; the first read walks the item's source
            position += 200
            if position < len(pending):
                return False
            self.fixture_order.work_out(items)
            return True

        return slice_of_work

    def _refresh(self, session, items, msg):
        """The daemon saw ``files`` change: re-collect what they affect in
        place (``recollect``), or say why a new session is needed."""
        started_ns = time.time_ns()
        gc.unfreeze()  # what the refresh drops must be collectable (frozen again by _settle)
        refresh = Refresh(session, items, self.graph)
        try:
            work = refresh.plan(msg["files"], msg["dirs"], self.listings)
            self.recorder.recording = True
            self.graph.start()
            try:
                refresh.apply(work)
            finally:
                self.graph.stop()
        except Stale as why:
            return protocol.stale(str(why))
        except BaseException as exc:  # noqa: BLE001  half refreshed: the daemon must drop this session
            return protocol.stale(f"re-collecting failed: {exc!r}")
        files = sorted(work.recollect | set(work.added) | work.removed)
        self.checkpoint.idle_work = self._prepare(session, items)
        return protocol.refreshed(self._settle(session), started_ns, files)

    def _adopt(self, session, handover):
        # Connected before the client's streams are touched: a stale handover,
        # whose client has gone with its engine socket, writes nothing there.
        try:
            conn = protocol.Connection(handover.socket)
        except OSError:
            pristine.exit_now(0)
        if self.restore_terminal:
            self.restore_terminal()
        adopt_client_streams(session.config, *handover.fds, edits=header_edits(session.config, handover.plan))
        self.cache_writes.commit()
        identity.ENV.socket = handover.socket  # for the workers this zygote forks
        conn.send(protocol.hello("zygote"))
        self.conn = conn

    def item_records(self, session):
        """Made while the checkpoint waited, for the items this run keeps."""
        if self._items is None:
            config = session.config
            self._items = [self._records.get(id(item)) or item_record(config, item) for item in session.items]
        return self._items


def header_edits(config, run_plan):
    """pytest's header names ``testpaths`` when it collected them; a run of
    explicit paths from a checkpoint that collected them does not. pytest 9
    gives it a line of its own, older ones append it to the rootdir's."""
    if run_plan.narrowed is None or config.args_source != type(config.args_source).TESTPATHS:
        return ()
    testpaths = ", ".join(config.getini("testpaths")).encode()
    return ((b"\ntestpaths: " + testpaths + b"\n", b"\n"), (b", testpaths: " + testpaths, b""))


def warm_zygote_plugin(env, daemon, started_ns):
    """The zygote plugin of a process ``rpytest serve`` started (``bootstrap``
    runs pytest with it). Before pytest starts, so that every read is seen.
    ``started_ns``: when the interpreter started."""
    graph = ImportGraph(watch_lookups=True)
    graph.start()
    recorder = ReadRecorder(on_read=graph.read)
    cache_writes = DeferredCacheWrites()
    restore = pretend_terminal(int(env.warm_tty)) if env.warm_tty else None
    # Set up per run, after the handover: this zygote is the run's controller.
    shared = shared_fixtures.SharedFixtures(env.shared_fixture_names())
    plugin = WarmZygotePlugin(daemon, restore, recorder, shared, cache_writes, graph)
    if started_ns is not None:
        plugin.started_ns = started_ns
    return plugin
