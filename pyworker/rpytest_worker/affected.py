"""``rpytest --affected``: run only the tests a change can have affected.

Every run that forks its workers records, per test module, the project
files its outcome can depend on, each with a content hash, and which of
its tests passed (``<rootdir>/.rpytest/affected.json``, beside the
duration history; see ``deps_record`` for how the files are found). It is a
file of its own because it is made and read here, in the run's controller
(the zygote, or a warm session's fork), where imports are observed and the
selection is applied; the engine's ``history.json`` holds what the engine
sees. A module's files are:

- the test file and the conftests above it;
- every project module imported, directly or not, while it was imported
  (the ``ImportGraph``), and the files that import read;
- every project module imported and every file under the rootdir read
  while its tests ran (in the workers), and what the conftests above it
  imported or read while their fixtures ran.

With ``--rpytest-affected`` (the engine's translation of ``--affected``)
the controller deselects, through ``pytest_deselected`` so pytest's own
counts agree, each test whose module's record holds and whose files all
still have their recorded hash, and which passed last time. A test is
affected, and runs, when it has no record (never ran, no worker recorded
it), failed or errored last time, or any file of its record changed, was
removed, or changed while the run that recorded it read it. A change to the
environment stamp (the interpreter, pytest, rpytest's worker, the ini
file, any module outside the rootdir the run loaded) selects every test.
"""
import fcntl
import json
import os
import sys
import tempfile
import time

import pytest

from . import deps_record, identity
from .deps_record import closure, content_hash, environment_stamp, outside_files, project_modules, settled_hash
from .warm import stat_record

OPTION = "--rpytest-affected"
RECORD_VERSION = 1


def record_path(config):
    return os.path.join(str(config.rootpath), ".rpytest", "affected.json")


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == RECORD_VERSION else None


def _stamp_extra(config):
    """What, besides the environment's files, makes every record stale."""
    worker_dir = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ini = str(config.inipath) if config.inipath else None
    return {"python": sys.version, "executable": sys.executable, "pytest": pytest.__version__,
            "rpytest": worker_dir, "ini": ini, "ini_hash": content_hash(ini) if ini else None}


class AffectedPlugin:
    """Records each run's dependencies; with ``--rpytest-affected``, selects."""

    def __init__(self, zygote=None):
        self.zygote = zygote  # the ZygotePlugin (None in a spawned worker: it only parses the option)
        self.started_ns = time.time_ns()
        self.outcomes = {}  # nodeid -> passed (every phase passed or skipped)
        self.lines = []  # what -v prints under pytest's "collected" line
        self.run = None
        # Only the run's controller records: the workers forked from it
        # carry this plugin too, and finish sessions of their own.
        self.controller = False
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self):
        self.controller = False

    def pytest_addoption(self, parser):
        parser.addoption(OPTION, action="store_true", dest="rpytest_affected", default=False,
                         help="(rpytest's --affected) run only the tests affected by changes since they passed")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if self.zygote is None:
            return
        graph = getattr(self.zygote, "graph", None)
        if graph is not None:
            graph.stop()
        # In a warm session's fork the run starts now; its files were
        # checked by the daemon just before (what changed earlier was
        # collected again).
        if getattr(self.zygote, "daemon", None) is not None:
            self.started_ns = time.time_ns()
        if config.getoption("rpytest_affected", False):
            self._select(config, items)
        # The workers write into the engine's private directory of this run
        # (beside its socket), which the engine removes however the run ends.
        directory = os.path.dirname(identity.ENV.socket or "")
        if os.path.isdir(directory):
            self.controller = True
            rootdir = os.path.join(str(config.rootpath), "")
            self.run = deps_record.RUN = deps_record.RunRecord(directory, rootdir, graph)

    def _select(self, config, items):
        record = _load(record_path(config))
        verbose = (config.getoption("verbose", 0) or 0) > 0
        if record is None:
            self.lines.append(f"rpytest --affected: no dependency record yet ({record_path(config)}): "
                              "running every test")
            return
        rootdir = str(config.rootpath)
        stamp = environment_stamp(record.get("env", []), _stamp_extra(config))
        if stamp != record.get("stamp"):
            self.lines.append("rpytest --affected: the environment changed (interpreter, packages, pytest, "
                              "rpytest or the ini file): running every test")
            return
        hashes = {}

        def current(rel):
            if rel not in hashes:
                hashes[rel] = content_hash(os.path.join(rootdir, rel))
            return hashes[rel]

        verdicts = {}  # module -> None (unaffected) or why it is affected
        for rel, entry in record.get("modules", {}).items():
            changed = next((dep for dep, then in entry["deps"].items() if current(dep) != then), None)
            verdicts[rel] = None if changed is None else f"{changed} changed"
        kept, dropped, why = [], [], {}
        for item in items:
            rel = module_key(item.nodeid)
            entry = record["modules"].get(rel)
            reason = "never ran" if entry is None else verdicts[rel]
            if reason is None and item.nodeid not in set(entry["passed"]):
                reason = "did not pass last time"
            if reason is None:
                dropped.append(item)
            else:
                kept.append(item)
                why.setdefault(rel, reason)
        changed_files = sorted(rel for rel, h in hashes.items()
                               if any(entry["deps"].get(rel, h) != h for entry in record["modules"].values()))
        self.lines.append(f"rpytest --affected: {len(kept)} of {len(items)} tests affected ({len(why)} files); "
                          f"changed: {', '.join(changed_files) or 'nothing'}")
        if verbose:
            self.lines.extend(f"  {rel}: {reason}" for rel, reason in sorted(why.items()))
        if dropped:
            items[:] = kept
            config._rpytest_unaffected = len(dropped)
            config.hook.pytest_deselected(items=dropped)

    def pytest_report_collectionfinish(self, config, start_path, items):
        return self.lines

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not self.controller:
            return
        config = session.config
        unaffected = getattr(config, "_rpytest_unaffected", 0)
        if unaffected and not session.items:
            # Nothing was affected, so pytest ran the session itself: nothing
            # failed, and its count line says why nothing ran, as ours does.
            if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
                session.exitstatus = pytest.ExitCode.OK
            terminal = config.pluginmanager.get_plugin("terminalreporter")
            stats = getattr(terminal, "stats", {})
            if len(stats.get("deselected", ())) == unaffected:
                stats["deselected (unaffected)"] = stats.pop("deselected")
        # Each test's result, from what the engine sent back (every phase
        # passed or skipped; a crash is none); no report hook: one per phase
        # costs more than the whole record.
        items = session.items
        for entry in getattr(self.zygote, "replayed", ()):
            nodeid = items[entry["index"]].nodeid
            self.outcomes[nodeid] = self.outcomes.get(nodeid, True) and _passed(entry)
        try:
            if self.outcomes:
                self._write(config)
        except OSError as exc:
            sys.stderr.write(f"rpytest: cannot write the dependency record {record_path(config)}: {exc}\n")

    def _write(self, config):
        path = record_path(config)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # The directory's own descriptor carries the lock, as the history's
        # (src/history/dir_lock.rs): a lock file would be left in the project.
        directory = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            fcntl.flock(directory, fcntl.LOCK_EX)
            old = _load(path) or {}
            new = self._merge(config, old)
            if new == old:
                return  # the same run again: nothing to say
            # One string (json.dumps, C-encoded) rather than json.dump's chunks,
            # which Python encodes: a 5,000-test record in a tenth of the time.
            text = json.dumps(new, sort_keys=True)
            fd, staging = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".affected-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(staging, path)
        finally:
            os.close(directory)

    def _merge(self, config, old):
        """The old record with this run's modules recorded again."""
        rootdir = os.path.join(str(config.rootpath), "")
        recorded = _worker_records(self.run)
        extra = _stamp_extra(config)
        old_env = old.get("env", [])
        keep = old.get("stamp") == environment_stamp(old_env, extra)
        env = outside_files(rootdir) | set(old_env) | recorded["env"]
        modules = dict(old.get("modules", {})) if keep else {}
        deps = _collection_deps(self.zygote.graph, rootdir, recorded)
        # Files a warm session read and the daemon vouched for just before
        # this run (their stat unchanged since): what was read is what is hashed.
        vouched = getattr(self.zygote, "settled", {})
        by_module = {}
        for nodeid, ok in self.outcomes.items():
            by_module.setdefault(module_key(nodeid), {})[nodeid] = ok
        hashes = {}

        def recorded_hash(path):
            if path not in hashes:
                then = vouched.get(path)
                fresh = then is not None and list(stat_record(path) or ()) == list(then)
                hashes[path] = content_hash(path) if fresh else settled_hash(path, self.started_ns)
            return hashes[path]

        current = {}  # modules share their conftests and helpers: hash each once

        def current_hash(path):
            if path not in current:
                current[path] = content_hash(path)
            return current[path]

        for rel, tests in by_module.items():
            module = os.path.normpath(os.path.join(rootdir, rel))
            files = deps(module) | recorded["files"].get(module, set())
            new_deps = {os.path.relpath(f, rootdir): recorded_hash(f) for f in files}
            passed = {t for t, ok in tests.items() if ok and t in recorded["tests"]}
            entry = modules.get(rel)
            if entry and all(current_hash(os.path.join(rootdir, d)) == h for d, h in entry["deps"].items()):
                new_deps = {**entry["deps"], **new_deps}
                passed |= set(entry["passed"]) - set(tests)
            modules[rel] = {"deps": new_deps, "passed": sorted(passed)}
        return {"version": RECORD_VERSION, "stamp": environment_stamp(env, extra), "env": sorted(env),
                "modules": modules}


def _passed(entry):
    """A test ran to its end (teardown included: an interrupted one did
    not), and no phase failed; a crash fails it. (One loop, no generator:
    it runs for every test of every run.)"""
    if entry.get("crash") is not None:
        return False
    ended = False
    for phase in entry.get("phases") or ():
        if phase["outcome"] != "passed" and phase["outcome"] != "skipped":
            return False
        ended = ended or phase["when"] == "teardown"
    return ended


def module_key(nodeid):
    """A test's module as the record keys it: its id's file part, relative
    to the rootdir."""
    return nodeid.split("::")[0]


def _worker_records(run):
    """What the workers recorded, merged: per module file its files, the
    tests recorded, the environment's files, what conftests did."""
    merged = {"files": {}, "tests": set(), "env": set(), "conftest_edges": {}, "conftest_reads": {}}
    for line in run.lines():
        merged["files"].setdefault(line["module"], set()).update(line["files"])
        merged["tests"].update(line["tests"])
        merged["env"].update(line["env"])
        for name, names in line["conftest_edges"].items():
            merged["conftest_edges"].setdefault(name, set()).update(names)
        for path, reads in line["conftest_reads"].items():
            merged["conftest_reads"].setdefault(path, set()).update(reads)
    return merged


def _collection_deps(graph, rootdir, recorded):
    """A function: test file -> the files its import and the conftests above
    it depend on (the conftests' fixtures included)."""
    project = project_modules(rootdir)
    by_file = {path: name for name, path in project.items()}
    edges = {name: set(names) for name, names in (graph.edges if graph is not None else {}).items()}
    for name, names in recorded["conftest_edges"].items():
        edges.setdefault(name, set()).update(names)
    conftests = [path for path in project.values() if os.path.basename(path) == "conftest.py"]
    owned = {}
    for name, owner in (graph.owner if graph is not None else {}).items():
        owned.setdefault(owner, set()).add(name)
    reads_by = {}
    for path, readers in (graph.reads if graph is not None else {}).items():
        for reader in readers:
            reads_by.setdefault(reader, set()).add(path)

    def deps(module):
        above = [c for c in conftests if module.startswith(os.path.join(os.path.dirname(c), ""))]
        roots = {by_file.get(module)} | {by_file[c] for c in above} | owned.get(module, set())
        names = closure({r for r in roots if r}, edges, project)
        files = {module, *above, *(project[n] for n in names if n in project), *reads_by.get(module, ())}
        for conftest in above:
            files |= recorded["conftest_reads"].get(conftest, set())
        return {f for f in files if deps_record.in_project(f, rootdir)}

    return deps
