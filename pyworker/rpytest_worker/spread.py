"""Collection spread over the workers (docs/collection.md).

Collecting once, in the zygote, is what makes a cold run cheaper than
pytest-xdist (which collects in every worker), but it runs on one core and
for a large suite it is most of a cold run. So the zygote collects only as
far as the test *files*: pytest's own ``perform_collect`` walks the
directories (``testpaths``, ``norecursedirs``, ``collect_ignore``,
``pytest_ignore_collect``, ``python_files``, conftests imported) and stops
at each ``pytest.File`` node without importing it (``discover``). Then it
forks one collector per worker; each imports and collects a share of the
files (dealt by size: ``split``) and reports its items. The zygote
merges them into pytest's order, tells pytest's plugins what they would
have seen (each file's collect report, the deselected items, the
``collected N items`` line from ``pytest_collection_finish``) with stand-in
items, and sends the inventory with each item's holder. When the engine
asks for worker N, collector N *becomes* it (``become_worker`` on its own
items), so no item crosses a process; the engine plans each worker's own
items first (``RunQueue::plan_by_holders``). A worker given a test of a
file it has not collected (work stealing, a replacement) collects that file
itself, the same way (``SpreadItems``).

Whatever needs every item decides the fallback: collecting in the zygote,
as before, with the reason shown under ``-v`` (``fallback_reason``,
``merge``). The rule is documented in docs/collection.md and tested in
tests/parallel_collection.rs.
"""
import bisect
import contextlib
import os
import pickle
import sys
import time
from collections.abc import Sequence

import pytest
from pytest import CollectReport

from . import fork_safety, identity, prctl, pristine, pytest_internals
from .collection import inventory_hash, item_record
from .reports import encode_warning
from .terminal_summary import hide_terminal
from .worker import _reopen_capture, become_worker

# Below this many bytes of test files, forking collectors costs more than
# it saves (about 300 trivial tests: pytest collects them in ~0.2 s).
MIN_BYTES = 16 * 1024
# One file holding more than this share of the bytes: its collector alone
# would take about as long as the zygote, so the zygote collects.
MAX_FILE_SHARE = 0.5
# The hooks through which a plugin sees the collection as a whole. A
# plugin implementing one of them that is not known to work per file
# (pytest's own, rpytest's) makes the zygote collect everything.
WATCHED_HOOKS = (
    "pytest_collection_modifyitems", "pytest_collection_finish", "pytest_report_collectionfinish",
    "pytest_deselected", "pytest_collectreport", "pytest_itemcollected", "pytest_collectstart",
    "pytest_make_collect_report", "pytest_collection", "pytest_runtestloop",
)
# pytest's options that order or select by the previous run (the cache),
# print the collection, or keep what the merge dedups.
WHOLE_LIST_OPTIONS = (
    ("collectonly", "--collect-only"), ("lf", "--last-failed"), ("failedfirst", "--failed-first"),
    ("newfirst", "--new-first"), ("stepwise", "--stepwise"), ("stepwise_skip", "--stepwise-skip"),
    ("keepduplicates", "--keep-duplicates"), ("pyargs", "--pyargs"),
    # --affected selects by the record that the zygote's import graph
    # completes while it imports the test modules (affected.py).
    ("rpytest_affected", "--affected"),
)


def _module_of(plugin):
    return plugin.__name__ if isinstance(plugin, type(sys)) else type(plugin).__module__


def unsafe_plugins(config):
    """Names of the plugins and conftests that watch the whole collection."""
    names = set()
    for hook in WATCHED_HOOKS:
        for impl in getattr(config.pluginmanager.hook, hook).get_hookimpls():  # pytest 8's config.hook wraps some
            module = _module_of(impl.plugin) or ""
            if not (pytest_internals.pytest_owns_module(module) or module.startswith("rpytest_worker.")):
                names.add(impl.plugin_name if "/" not in impl.plugin_name else os.path.relpath(impl.plugin_name))
    return sorted(names)


def collect(zygote, session, shares_spec):
    """The zygote's ``perform_collect``: spread over ``shares_spec``
    ("N" or "N:always") collectors when the rules allow, else in the
    zygote; returns the items (stand-ins when spread)."""
    config = session.config
    reason = fallback_reason(config, config.args)
    if reason:
        say(zygote, f"collecting in the zygote: {reason}")
        return type(session).perform_collect(session)
    started = time.perf_counter()
    files = discover(session)
    trace(f"found {len(files)} test files in {time.perf_counter() - started:.3f}s")
    shares, _, always = shares_spec.partition(":")
    threads = fork_safety.threads_in_the_way() and not identity.ENV.fork_past_threads
    reason = (fallback_reason(config, config.args)  # the conftests are in now
              or ("collection errors (pytest's own report)" if session.testsfailed else None)
              or size_reason(files, int(shares), always == "always")
              or ("threads are running" if threads else None))
    if reason is None:
        collectors = Collectors(zygote, session, files, int(shares))
        try:
            collectors.start()
            reports = collectors.gather()
            gathered = time.perf_counter()
            # Before merge, whose collection_finish shows it.
            say(zygote, f"collection spread over {len(collectors.shares)} workers")
            result, reason = merge(zygote, session, collectors, reports)
        except BaseException:  # an interrupt, a plugin's error: no collector outlives it
            collectors.dismiss()
            raise
        if result is not None:
            trace(f"collectors done at {gathered - started:.3f}s, merged in {time.perf_counter() - gathered:.3f}s")
            collectors.keep_idle()
            zygote.collectors = collectors
            zygote._items, zygote.holders, zygote.layout = result
            return session.items
        collectors.dismiss()
    say(zygote, f"collecting in the zygote: {reason}")
    return finish_here(session, files)


def trace(text):
    """With RPYTEST_TRACE (the user's variable), the zygote's own timings."""
    if os.environ.get("RPYTEST_TRACE", "0") not in ("", "0"):
        sys.stderr.write(f"rpytest trace (zygote): {text}\n")


def fallback_reason(config, args):
    """Why this session must collect in the zygote before anything is
    collected, or None."""
    if not pytest_internals.collects_through_directory_nodes():
        return "pytest < 8"
    for option, flag in WHOLE_LIST_OPTIONS:
        if getattr(config.option, option, False):
            return f"{flag} needs the whole collection"
    if any("::" in arg for arg in args):
        return "a node id among the arguments"
    if config.pluginmanager.hasplugin("benchmark"):
        return "pytest-benchmark warns once per collection"
    if _ini(config, "log_cli") or getattr(config.option, "log_cli_level", None):
        return "live logging (log_cli) shows the collection's logs"
    unsafe = unsafe_plugins(config)
    if unsafe:
        return f"{', '.join(unsafe)} see(s) the whole collection (pytest_collection_modifyitems and the like)"
    return None


def _ini(config, name):
    """An ini value, or None when no plugin declares it (``-p no:logging``
    takes ``log_cli`` away)."""
    try:
        return config.getini(name)
    except (ValueError, KeyError):
        return None


def size_reason(files, shares, always=False):
    """The measured choice: too little to collect for forks to pay
    (``always``: spread whenever there are two files to spread)."""
    if shares < 2:
        return "one worker"
    if len(files) < 2:
        return "one test file"
    if always:
        return None
    sizes = [_size(node) for node in files]
    total = sum(sizes)
    if total < MIN_BYTES:
        return f"a small suite ({total} bytes of test files, under {MIN_BYTES})"
    if max(sizes) > MAX_FILE_SHARE * total:
        return "one file holds most of the suite"
    return None


def _size(node):
    try:
        return node.path.stat().st_size
    except (OSError, AttributeError):
        return 0


def split(files, shares):
    """The files dealt to the collectors, each to the one with the fewest
    bytes so far: every share is spread over the whole suite (a region of
    slow files lands on every worker) and stays in collection order (a
    worker's sequence is a subsequence of pytest's)."""
    dealt = [[] for _ in range(shares)]
    load = [0] * shares
    for unit, node in enumerate(files):
        share = min(range(shares), key=lambda s: (load[s], s))
        dealt[share].append(unit)
        load[share] += max(_size(node), 1)
    return [share for share in dealt if share]


def discover(session):
    """pytest's ``perform_collect`` down to the File nodes, none imported:
    the directories' collect reports go to the plugins, the whole-list
    hooks (modifyitems, collection_finish) are held back for later."""
    files = []
    relay = session.config.hook
    held = {name: getattr(relay, name) for name in ("pytest_collection_modifyitems", "pytest_collection_finish")}
    genitems = session.genitems

    def up_to_files(node):
        if isinstance(node, pytest.File):
            files.append(node)
            return
        yield from genitems(node)

    session.genitems = up_to_files  # pytest's genitems recurses through self.genitems
    pm = session.config.pluginmanager
    for name in held:
        impls = getattr(pm.hook, name).get_hookimpls()
        setattr(relay, name, pm.subset_hook_caller(name, [impl.plugin for impl in impls]))
    try:
        type(session).perform_collect(session)
    finally:
        del session.genitems
        for name, caller in held.items():
            setattr(relay, name, caller)
    return files


def finish_here(session, files):
    """The rest of pytest's ``perform_collect``, in the zygote: each file
    collected, then modifyitems and collection_finish over every item."""
    config = session.config
    items = session.items
    try:
        for node in files:
            items.extend(session.genitems(node))
        config.pluginmanager.check_pending()
        config.hook.pytest_collection_modifyitems(session=session, config=config, items=items)
    finally:
        config.hook.pytest_collection_finish(session=session)
    session.testscollected = len(items)
    return items


def say(zygote, text):
    """What ``-v`` shows under pytest's ``collected`` line (``ZygotePlugin.pytest_collection_finish``)."""
    zygote.notice = f"rpytest: {text}"


class Collectors:
    """The forked collectors of one run, each holding a share of the files."""

    def __init__(self, zygote, session, files, shares):
        self.zygote = zygote
        self.session = session
        self.files = files
        self.shares = split(files, shares)
        self.procs = []  # (pid, result fd, control fd)
        self.idle = {}  # collector number -> (pid, control fd)

    def start(self):
        for share in self.shares:
            result_r, result_w = pristine.pipe()
            control_r, control_w = pristine.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = pristine.fork()
            if pid == 0:
                inherited = [fd for _, r, c in self.procs for fd in (r, c)] + [result_r, control_w]
                self._child(share, result_w, control_r, inherited)
            pristine.close(result_w)
            pristine.close(control_r)
            self.procs.append((pid, result_r, control_w))

    def gather(self):
        """Each collector's report, in share order (None: one died)."""
        return [_read_all(result_r) for _, result_r, _ in self.procs]

    def dismiss(self):
        for pid, _, control in self.procs:
            _close_quietly(control)
            try:
                pristine.kill(pid, 9)
                pristine.waitpid(pid, 0)
            except OSError:
                pass
        self.procs = []

    def dismiss_idle(self):
        """The collectors no worker became: their control pipe closes, they exit."""
        for _, control in self.idle.values():
            _close_quietly(control)
        self.idle = {}

    def keep_idle(self):
        self.idle = {number: (pid, control) for number, (pid, _, control) in enumerate(self.procs)}

    def hand(self, worker, go):
        """Collector ``worker`` becomes that worker: its pid, or None when
        there is none (a later or replacement worker: the caller forks)."""
        pid, control = self.idle.pop(worker, (None, None))
        if pid is None:
            return None
        try:
            data = pickle.dumps(go)
        except Exception:  # noqa: BLE001  a plugin's workerinput that cannot travel: a plain fork
            _close_quietly(control)
            return None
        try:
            _write_all(control, data)
        except OSError:
            return None
        finally:
            _close_quietly(control)
        return pid

    def _child(self, share, result_w, control_r, inherited):
        for fd in inherited:
            _close_quietly(fd)
        fork_safety.run_forked_child(lambda: self._collect_then_work(share, result_w, control_r),
                                    quiet_interrupt=True)

    def _collect_then_work(self, share, result_w, control_r):
        prctl.die_with_parent()
        self.zygote.conn.close()
        items, report = collect_share(self.zygote, self.session, self.files, share)
        _write_all(result_w, pickle.dumps(report))
        pristine.close(result_w)
        go = _read_all(control_r)
        if go is not None:
            become_from_collector(self.zygote, self.session, self.files, share, items, go)


def collect_share(zygote, session, files, share):
    """In a collector: its files collected and modifyitems run over them,
    as pytest would over the whole list (docs/collection.md says why that
    is the same here); returns the items and what the zygote needs."""
    config = session.config
    hide_terminal(config)
    with pristine.untouched():
        _reopen_capture(config)
    reports_before, warnings_before, deselected_before = (
        len(zygote.collect_reports), len(zygote.warnings), zygote.deselected)
    unit_of = {}
    items = []
    with pytest_internals.catching_collection_warnings(config):
        for unit in share:
            for item in session.genitems(files[unit]):
                unit_of[id(item)] = unit
                items.append(item)
        collected = {unit: 0 for unit in share}  # before deselection: pytest's "collected N items"
        for unit in unit_of.values():
            collected[unit] += 1
        config.hook.pytest_collection_modifyitems(session=session, config=config, items=items)
    units = [unit_of.get(id(item)) for item in items]
    unsafe = _order_problem(items, units)
    counts = {unit: 0 for unit in share}
    for unit in units:
        if unit is not None:
            counts[unit] += 1
    report = {
        "counts": [counts[unit] for unit in share],
        "collected": [collected[unit] for unit in share],
        "records": [item_record(config, item) for item in items],
        "stand_ins": [(item.nodeid, item.location, list(item.keywords)) for item in items],
        "collect_reports": [(_unit_of_report(files, share, r["id"]), r) for r in
                            zygote.collect_reports[reports_before:]],
        "warnings": [encode_warning(m, when, nodeid, config) for m, when, nodeid in zygote.warnings[warnings_before:]],
        "deselected": zygote.deselected - deselected_before,
        "unsafe": unsafe,
    }
    return items, report


def _order_problem(items, units):
    """Why these items cannot be merged by file, or None: an item of no
    file of the share, files out of order after modifyitems, or a
    parametrization that pytest's fixture ordering regroups across files."""
    if any(unit is None for unit in units):
        return "a plugin added items of its own"
    if any(a > b for a, b in zip(units, units[1:])):
        return "pytest_collection_modifyitems reordered tests across files"
    for item in items:
        if any(scope in ("session", "package") for scope in pytest_internals.parametrize_scopes(item)):
            return f"{item.nodeid} is parametrized at session or package scope (pytest groups those across files)"
    return None


def _unit_of_report(files, share, nodeid):
    for unit in share:
        file_id = files[unit].nodeid
        if nodeid == file_id or nodeid.startswith(file_id + "::"):
            return unit
    return share[0]


def merge(zygote, session, collectors, reports):
    """The zygote's side of pytest's end of collection, from the
    collectors' reports; the item records and holders, or a reason to
    collect here instead."""
    if any(report is None for report in reports):
        return None, "a collector died"
    for report in reports:
        if report["unsafe"]:
            return None, report["unsafe"]
        if any(record["outcome"] == "failed" for _, record in report["collect_reports"]):
            return None, "collection errors (pytest's own report)"
    config = session.config
    files = collectors.files
    per_unit = {}  # file index -> (records, stand-in entries, holder, collected before deselection)
    for number, (share, report) in enumerate(zip(collectors.shares, reports)):
        at = 0
        for unit, count, collected in zip(share, report["counts"], report["collected"]):
            per_unit[unit] = (report["records"][at:at + count], report["stand_ins"][at:at + count], number, collected)
            at += count
        zygote.spread_warnings.extend(report["warnings"])
    records, holders, stand_ins, starts, collected = [], [], [], [0], []
    for unit in range(len(files)):
        unit_records, entries, number, unit_collected = per_unit[unit]
        records.extend(unit_records)
        holders.extend([number] * len(unit_records))
        stand_ins.extend(stand_in(session, files, *entry) for entry in entries)
        starts.append(len(records))
        collected.append(unit_collected)
    by_unit = {}
    for report in reports:
        for unit, record in report["collect_reports"]:
            by_unit.setdefault(unit, []).append(record)
    for unit, node in enumerate(files):
        for record in by_unit.get(unit, ()):
            config.hook.pytest_collectreport(report=skipped_report(record))
        if not any(record["id"] == node.nodeid for record in by_unit.get(unit, ())):
            result = stand_ins[starts[unit]:starts[unit + 1]]
            deselected_here = collected[unit] - len(result)  # counted by pytest's terminal all the same
            result = result + [stand_in(session, files, node.nodeid, ("", None, ""), ())] * deselected_here
            config.hook.pytest_collectreport(report=CollectReport(node.nodeid, "passed", None, result))
    deselected = sum(report["deselected"] for report in reports)
    if deselected:
        config.hook.pytest_deselected(items=[None] * deselected)
    session.items[:] = stand_ins
    remember_node_ids(config, stand_ins)
    config.hook.pytest_collection_finish(session=session)
    session.testscollected = len(stand_ins)
    layout = Layout(starts, [record["id"] for record in records], inventory_hash(stand_ins))
    return (records, holders, layout), None


def remember_node_ids(config, items):
    """What pytest's cache plugin records in its modifyitems wrapper
    (``cache/nodeids``, which a later ``--nf`` reads), never called here."""
    nf = config.pluginmanager.get_plugin("nfplugin")
    if nf is not None and not getattr(nf, "active", True) and hasattr(nf, "cached_nodeids"):
        nf.cached_nodeids.update(item.id for item in items)


def skipped_report(record):
    skip = record.get("skip")
    longrepr = tuple(skip) if skip else record["longrepr"]
    return CollectReport(record["id"], record["outcome"], longrepr, [])


class StandIn(pytest.Item):
    """A collected test as the zygote's plugins see it after a spread
    collection: its id, location and keywords (the reports rebuilt at the
    end need no more); the test itself lives in a worker."""

    @property
    def nodeid(self):
        return self._stand_in_id

    @property
    def id(self):
        return pytest_internals.node_id_value(self._stand_in_id)

    def __hash__(self):
        return hash(self._stand_in_id)

    def runtest(self):
        raise RuntimeError("a stand-in item never runs")


def stand_in(session, files, nodeid, location, keywords):
    item = object.__new__(StandIn)
    item.name = nodeid.rsplit("::", 1)[-1]
    item.parent = None
    item.config = session.config
    item.session = session
    item._stand_in_id = nodeid
    item.keywords = dict.fromkeys(keywords, 1)
    item.own_markers = []
    item.extra_keyword_matches = set()
    item.__dict__["location"] = tuple(location)
    return item


class Layout:
    """Where each file's items sit in the run's order: file ``u`` holds
    indices ``starts[u]`` up to ``starts[u + 1]``."""

    def __init__(self, starts, nodeids, inventory):
        self.starts = starts
        self.nodeids = nodeids
        self.inventory = inventory


class SpreadItems(Sequence):
    """A worker's view of the run's items: those it collected, and any
    other file's collected on first use, checked against the inventory."""

    def __init__(self, session, files, layout, held):
        self.session = session
        self.files = files
        self.layout = layout
        self.held = held  # file index -> its items
        self.inventory = layout.inventory

    def __len__(self):
        return len(self.layout.nodeids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        unit = bisect.bisect_right(self.layout.starts, index) - 1
        items = self.held.get(unit)
        if items is None:
            items = self.held[unit] = self._collect(unit)
        return items[index - self.layout.starts[unit]]

    def _collect(self, unit):
        session, config = self.session, self.session.config
        items = list(session.genitems(self.files[unit]))
        config.hook.pytest_collection_modifyitems(session=session, config=config, items=items)
        starts = self.layout.starts
        expected = self.layout.nodeids[starts[unit]:starts[unit + 1]]
        if [item.nodeid for item in items] != expected:
            raise RuntimeError(
                f"rpytest: collecting {self.files[unit].nodeid} again in a worker gave other tests than the "
                f"first time; set parallel_collection = \"off\" (RPYTEST_PARALLEL_COLLECTION=off) for this suite")
        return items


def held_items(files, share, items, layout):
    held, at = {}, 0
    for unit in share:
        count = layout.starts[unit + 1] - layout.starts[unit]
        held[unit] = items[at:at + count]
        at += count
    return held


def become_from_collector(zygote, session, files, share, items, go):
    """A collector's second life: the worker the engine asked for."""
    layout = go["layout"]
    session.items = SpreadItems(session, files, layout, held_items(files, share, items, layout))
    config = session.config
    config._rpytest_markup = go["markup"]
    config._rpytest_code_highlight = go["highlight"]
    become_worker(session, go["worker"], identity.ENV.socket, go["basetemp"], go["node_input"], forked=True)


def _write_all(fd, data):
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[pristine.write(fd, view):]


def _read_all(fd):
    """One length-prefixed pickle from ``fd`` (closed after), or None at a
    short read (the writer died or said nothing)."""
    chunks = []
    try:
        while True:
            chunk = pristine.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        _close_quietly(fd)
    data = b"".join(chunks)
    if len(data) < 8 or len(data) - 8 != int.from_bytes(data[:8], "little"):
        return None
    return pickle.loads(data[8:])  # our own fork's bytes


def _close_quietly(fd):
    with contextlib.suppress(OSError):
        pristine.close(fd)
