"""What a test module's outcome can depend on, recorded as its tests run.

``rpytest --affected`` (``affected.py``) runs only the tests whose
dependencies changed since they last passed. Those dependencies come from
two places:

- the zygote's collection: the ``ImportGraph`` (``recollect.py``) records
  who imported whom and which files each test file's import read;
- each worker, while it runs tests (``WorkerRecorder``): every module
  imported (an ``import`` statement or ``importlib.import_module``, even of
  a module already loaded) and every file under the rootdir opened for
  reading or directory listed, per test module. Imports are seen through
  the ``ImportGraph``'s ``__import__`` wrapper and a ``sys.modules`` diff,
  reads through an audit hook: no tracing, so a test costs a set lookup.

A worker keeps its record in memory and writes it, one JSON line per
test module, to a file of its own when it finishes (in the engine's
private directory of the run, which the engine removes): a worker that dies takes its record
with it, and the tests it ran then count as not recorded (affected next
time). What a conftest imports or reads while its
fixtures run is the conftest's: it counts for every test below it.

Modules outside the rootdir (the standard library, site-packages) are not
hashed one by one: they make the environment stamp (``environment_stamp``).
"""
import hashlib
import json
import os
import sys

# Paths under the rootdir that say nothing about a test's outcome.
IGNORED_PARTS = (f"{os.sep}__pycache__{os.sep}", f"{os.sep}.git{os.sep}", f"{os.sep}.pytest_cache{os.sep}",
                 f"{os.sep}.rpytest{os.sep}", f"{os.sep}site-packages{os.sep}", f"{os.sep}.tox{os.sep}")
# The parts of a dependency's "hash" that are not a content hash.
UNKNOWN = "?"  # changed while the run read it: never equal to anything
LISTING = "dir:"  # a directory: a digest of its visible names


def in_project(path, rootdir):
    """Under the rootdir, and not in a cache, a VCS directory or a virtualenv."""
    return path.startswith(rootdir) and not any(part in path for part in IGNORED_PARTS)


def project_modules(rootdir):
    """name -> file of every loaded module that is part of the project."""
    modules = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and in_project(os.path.abspath(path), rootdir):
            modules[name] = os.path.abspath(path)
    return modules


def outside_files(rootdir, names=None):
    """The files of loaded modules outside the project (the environment)."""
    files = set()
    for name in (sys.modules if names is None else names):
        path = getattr(sys.modules.get(name), "__file__", None)
        if isinstance(path, str) and not in_project(os.path.abspath(path), rootdir):
            files.add(os.path.abspath(path))
    return files


def closure(roots, edges, project):
    """Every module ``roots`` import, directly or not, through project
    modules (a library's own imports are the environment's), with the
    packages above each (importing ``a.b`` runs ``a/__init__.py``)."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if not name or name in seen:
            continue
        seen.add(name)
        todo.append(name.rpartition(".")[0])
        if name in project:
            todo.extend(edges.get(name, ()))
    return seen


def content_hash(path):
    """A file's content hash, a directory's listing digest, or None when it
    is gone."""
    try:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if not n.startswith(".") and n != "__pycache__")
            return LISTING + hashlib.sha1("\0".join(names).encode(errors="surrogateescape")).hexdigest()
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest()
    except FileNotFoundError:
        return None
    except OSError:
        return UNKNOWN


def settled_hash(path, since_ns):
    """``content_hash``, or ``UNKNOWN`` when the file changed after
    ``since_ns`` (less the clock's granularity): the run may have read an
    older content than the one hashed now."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return UNKNOWN
    if max(stat.st_mtime_ns, stat.st_ctime_ns) >= since_ns - 10_000_000:
        return UNKNOWN
    return content_hash(path)


def environment_stamp(files, extra):
    """One digest for everything outside the project: each environment
    file's path, size and mtime, and ``extra`` (interpreter, versions,
    ini file)."""
    digest = hashlib.sha1(json.dumps(extra, sort_keys=True).encode())
    for path in sorted(files):
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode(errors="surrogateescape"))
        except OSError:
            digest.update(f"{path}\0gone\n".encode(errors="surrogateescape"))
    return digest.hexdigest()


# A worker's file in the run's directory: deps-<pid>.jsonl.
PREFIX = "deps-"
# Set by the run's controller before it forks workers (``start_run``);
# a forked worker inherits it.
RUN = None


class RunRecord:
    """Where the workers of this run write, and what they need to know."""

    def __init__(self, directory, rootdir, graph):
        self.directory = directory
        self.rootdir = rootdir  # with a trailing separator
        self.graph = graph

    def lines(self):
        """Every line the workers wrote."""
        for name in sorted(os.listdir(self.directory)):
            if not (name.startswith(PREFIX) and name.endswith(".jsonl")):
                continue
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                    for line in f:
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue  # a worker killed while writing
            except OSError:
                continue


def worker_recorder():
    """The recorder of a worker forked from a controller that records."""
    if RUN is None or RUN.graph is None:
        return None
    return WorkerRecorder(RUN)


class WorkerRecorder:
    """Imports and reads per test module, in a forked worker. Kept in memory
    and written once, when the worker finishes: a worker that dies takes
    its record with it, and its tests count as not recorded (affected)."""

    def __init__(self, run):
        self.run = run
        self.rootdir = run.rootdir
        self.graph = run.graph
        self.modules = {}  # test module path -> {"tests", "names", "reads"}
        self.current = None  # the test module running (its path)
        self.record = None  # its entry in ``modules``
        self.before = set()  # sys.modules when it started
        self.conftest_reads = {}  # conftest file -> files its code read
        self.graph.touched = set()
        self.graph.start()
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if event == "open":
            path, mode = args[0], args[1]
            if not isinstance(path, (str, bytes)) or any(c in (mode or "r") for c in "wax+"):
                return
        elif event not in ("os.listdir", "os.scandir") or not isinstance(args[0], (str, bytes)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        if self.record is None or not in_project(path, self.rootdir):
            return
        self.record["reads"].add(path)
        conftest = _conftest_on_stack()
        if conftest is not None:
            self.conftest_reads.setdefault(conftest, set()).add(path)

    def enter(self, item):
        """Before each test: what ran since the last switch is the last module's."""
        path = item.path
        if path != self.current:
            self._settle()
            self.current = path
            self.record = self.modules.setdefault(str(path), {"tests": [], "names": set(), "reads": set()})
            self.before = set(sys.modules)
        self.record["tests"].append(item.nodeid)

    def _settle(self):
        """The imports since the module started, to its record."""
        if self.record is None:
            return
        names = self.record["names"]
        names |= self.graph.touched
        self.graph.touched = set()
        if len(sys.modules) != len(self.before):  # loaded other than by __import__ (or by it, seen twice)
            names.update(set(sys.modules) - self.before)

    def flush(self):
        """Every module's record, one JSON line each, to this worker's file."""
        self._settle()
        self.record = None
        graph = self.graph
        project = project_modules(self.rootdir)
        conftests = {name: sorted(n for n in graph.edges.get(name, ()) if n in project)
                     for name, path in project.items() if os.path.basename(path) == "conftest.py"}
        reads = {path: sorted(files) for path, files in self.conftest_reads.items()}
        with open(os.path.join(self.run.directory, f"{PREFIX}{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
            for module, record in self.modules.items():
                names = record["names"]
                imported = closure({n for n in names if n in project}, graph.edges, project)
                f.write(json.dumps({
                    "module": module,
                    "tests": record["tests"],
                    "files": sorted(record["reads"] | {project[n] for n in imported if n in project}),
                    "env": sorted(outside_files(self.rootdir, names)),
                    "conftest_edges": conftests,
                    "conftest_reads": reads,
                }) + "\n")
        self.modules = {}


def _conftest_on_stack():
    """The conftest whose code (a fixture) is reading, if any."""
    frame = sys._getframe(2)
    for _ in range(40):
        if frame is None:
            return None
        filename = frame.f_code.co_filename
        if filename.endswith(f"{os.sep}conftest.py"):
            return filename
        frame = frame.f_back
    return None
