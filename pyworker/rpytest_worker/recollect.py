"""An edit costs what it changed: edited files re-collected in a checkpoint.

A checkpoint (``checkpoint.py``) holds a collected session. When the daemon
sees that files it depended on changed, it asks the checkpoint to
``refresh`` them. If the changes are confined to test files and to project
modules that only test files imported, the checkpoint re-collects those
test files alone, in place, and the next run forks from the refreshed
session. Anything else (a conftest, an ini file, a module imported while
pytest configured, a file added or removed) raises ``Stale`` and the daemon
builds a new session: a slower run is acceptable, a stale one never.

What must be re-imported is decided from the ``ImportGraph`` recorded while
collecting: who imported whom (``import`` statements and
``importlib.import_module``) and which test file's collection first loaded
each module. An edited module is evicted with every module that imports it,
directly or not, and with every project module it imports: re-running a
module's top level may change the modules it imports (a class registered
in a registry), so those are rebuilt too. Test files are leaves: their own
top level is re-run as pytest would run it. If the set reaches a module
that was loaded while pytest configured (by a conftest, a plugin or the
ini file), the checkpoint cannot rebuild it and the refresh is ``Stale``.
"""
import builtins
import importlib
import linecache
import os
import sys
import sysconfig
from pathlib import Path

import pytest

from . import pytest_internals

# Where the standard library and installed packages live: their modules'
# own imports are not the project's.
LIBRARY_DIRS = tuple(os.path.join(path, "") for path in {
    sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})
SITE_PACKAGES = f"{os.sep}site-packages{os.sep}"
# Hooks whose implementations see each collection report or item as it is
# made: a plugin keeping state from them would keep the old file's too.
COLLECTION_WATCHERS = ("pytest_collectreport", "pytest_itemcollected", "pytest_collectstart")


class Stale(Exception):
    """The checkpoint cannot refresh itself; the daemon rebuilds it."""


class LookedUp:
    """First on ``sys.meta_path`` while it is installed: finds nothing, and
    remembers every module name looked for on the path, found or not (an
    optional import that failed, ``importlib.util.find_spec``): a file
    added under such a name would change what a cold run imports."""

    def __init__(self):
        self.names = set()

    def find_spec(self, fullname, path=None, target=None):
        self.names.add(fullname)

    def install(self):
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def remove(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def knows(self, stem):
        """Whether a module named ``stem`` (at top level or in a package)
        was looked for."""
        return any(name == stem or name.endswith("." + stem) for name in self.names)


class ImportGraph:
    """Who imported whom while the checkpoint collected, and which test
    file's collection first loaded each module (none: pytest's configuration)."""

    def __init__(self, watch_lookups=False):
        self.edges = {}  # importer -> names it imported
        self.owner = {}  # module name -> the test file whose collection loaded it
        self.reads = {}  # file read while collecting -> the test files that read it
        self.warned = {}  # test file -> the warnings its collection recorded
        self.current = None  # the test file being collected
        self.touched = None  # a set: every module imported, by anyone (a worker's record)
        self._libraries = {}  # importer -> whether it is a library's (``_library``)
        self._before = None
        self._log_start = 0
        self._import = builtins.__import__
        self._import_module = importlib.import_module
        # A warm session's: the names looked for while it collects (a cold
        # run's collection and its workers need not know).
        self.looked_up = LookedUp() if watch_lookups else None

    def start(self):
        graph = self
        if self.looked_up is not None:
            self.looked_up.install()

        # Hidden from the tracebacks pytest prints (a module that fails to
        # import while collecting): a cold run has no such frames.
        def tracking_import(name, globals=None, locals=None, fromlist=(), level=0):
            __tracebackhide__ = True
            module = graph._import(name, globals, locals, fromlist, level)
            if isinstance(globals, dict):
                importer = globals.get("__name__")
                if graph.touched is not None or not graph._library(importer, globals):
                    graph._note(importer, globals.get("__package__"), name, fromlist, level)
            elif graph.touched is not None and not level:
                graph.touched.add(name)
            return module

        def tracking_import_module(name, package=None):
            __tracebackhide__ = True
            module = graph._import_module(name, package)
            caller = sys._getframe(1).f_globals.get("__name__")
            graph._add(caller, module.__name__)
            if graph.touched is not None:
                graph.touched.add(module.__name__)
            return module

        builtins.__import__ = tracking_import
        importlib.import_module = tracking_import_module

    def stop(self):
        if self.looked_up is not None:
            self.looked_up.remove()
        builtins.__import__ = self._import
        importlib.import_module = self._import_module

    def _library(self, importer, globals):
        """Whether ``importer`` is the standard library's or an installed
        package's: its imports say nothing about the project's graph, and
        some run in pytest's hot paths (its ``compat`` module imports in a
        function called for every collected test)."""
        known = self._libraries.get(importer)
        if known is None:
            path = globals.get("__file__")
            known = not isinstance(path, str) or path.startswith(LIBRARY_DIRS) or SITE_PACKAGES in path
            self._libraries[importer] = known
        return known

    def _note(self, importer, package, name, fromlist, level):
        if not importer and self.touched is None:
            return
        if level:
            base = (package or importer or "").rsplit(".", level - 1)[0] if level > 1 else (package or "")
            name = f"{base}.{name}" if name else base
        names = [name] + [f"{name}.{sub}" for sub in fromlist or ()
                          if isinstance(sub, str) and f"{name}.{sub}" in sys.modules]
        for imported in names:
            self._add(importer, imported)
        if self.touched is not None:
            self.touched.update(names)

    def _add(self, importer, name):
        if importer and name and importer != name:
            self.edges.setdefault(importer, set()).add(name)
            parent = name.rpartition(".")[0]
            if parent:
                self.edges[importer].add(parent)

    def enter(self, collector):
        """Around each collector of a file: what it loads is that file's."""
        if self.current is None and isinstance(collector, pytest.File):
            self.begin(str(collector.path))
            return True
        return False

    def begin(self, path):
        self.current = path
        self._before = set(sys.modules)
        self._log_start = len(warning_log())

    def leave(self):
        for name in set(sys.modules) - self._before:
            self.owner.setdefault(name, self.current)
        warned = warning_log()[self._log_start:]
        if warned:
            self.warned.setdefault(self.current, []).extend(warned)
        self.current = None

    def forget_warnings(self, path):
        """The old file's collection warnings, gone from the list pytest
        reports when collection ends (in each run's fork)."""
        log, gone = warning_log(), {id(w) for w in self.warned.pop(path, ())}
        log[:] = [w for w in log if id(w) not in gone]

    def read(self, path):
        if self.current is not None:
            self.reads.setdefault(path, set()).add(self.current)

    def importers(self, name):
        return {importer for importer, names in self.edges.items() if name in names}


class Refresh:
    """What a set of changed files makes the checkpoint re-collect."""

    def __init__(self, session, items, graph):
        self.session = session
        self.items = items
        self.graph = graph
        rootdir = os.path.join(str(session.config.rootpath), "")
        self.project = {name: os.path.abspath(path) for name, path in _module_files().items()
                        if path.startswith(rootdir) and "site-packages" not in path}
        self.by_file = {path: name for name, path in self.project.items()}
        self.test_files = {str(item.getparent(pytest.File).path) for item in items if item.getparent(pytest.File)}

    def plan(self, changed, dirs, listings):
        """What to do about ``changed`` files and the ``dirs`` whose listing
        changed (``listings``: their visible names when last collected)."""
        _check_watchers(self.session.config)
        work = Work()
        names = set()
        for path in changed:
            if path in self.test_files:
                work.recollect.add(path)
                names.add(self.by_file.get(path))
            elif path in self.by_file:
                names.add(self.by_file[path])
            elif path in self.graph.reads:
                work.recollect |= self.graph.reads[path]
            elif not os.path.exists(path) and any(os.path.dirname(path) == d for d in dirs):
                continue  # removed: its directory's listing says so
            else:
                raise Stale(f"{path} changed, which the session read while pytest configured")
        for directory in dirs:
            names |= self._listing(directory, listings.get(directory), work)
        # A test file collected again is imported again: its module goes too.
        names |= {self.by_file.get(path) for path in work.recollect}
        names.discard(None)
        work.evict = self._closure(names)
        work.recollect |= {self.project[name] for name in work.evict if self.project.get(name) in self.test_files}
        work.recollect -= work.removed
        return work

    def _listing(self, directory, before, work):
        """A file added to or removed from ``directory``: the modules to
        evict, and in ``work`` the test files to drop or collect."""
        if before is None or not within(directory, str(self.session.config.rootpath)):
            raise Stale(f"a file was added to or removed from {directory}")
        now = set(visible_names(directory) or ())
        names = set()
        if directory in self.graph.reads:  # a test file's collection listed it
            work.recollect |= self.graph.reads[directory]
        for name in before - now:
            path = os.path.join(directory, name)
            if path in self.test_files:
                work.removed.add(path)
                names.add(self.by_file.get(path))
            elif path in self.by_file:
                names.add(self.by_file[path])
            elif any(within(test_file, path) for test_file in self.test_files):
                raise Stale(f"the directory {path} was removed")
        for name in sorted(now - before):
            path = os.path.join(directory, name)
            if os.path.isdir(path) or name in ("conftest.py", "__init__.py"):
                raise Stale(f"{path} was added")
            stem = name.rpartition(".")[0]
            imported = any(m == stem or m.endswith("." + stem) for m in sys.modules)
            looked_for = self.graph.looked_up is not None and self.graph.looked_up.knows(stem)
            if name.endswith(".py") and (imported or looked_for):
                raise Stale(f"{path} was added, and a module of that name is imported or was looked for")
            if name.endswith(".py"):
                work.added.append(path)
        return names

    def _closure(self, names):
        evicted, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in evicted:
                continue
            if name not in self.graph.owner:
                raise Stale(f"module {name} was imported while pytest configured (by a conftest or plugin)")
            evicted.add(name)
            todo.extend(n for n in self.graph.importers(name) if n in self.project)
            if self.project.get(name) not in self.test_files:
                todo.extend(n for n in self.graph.edges.get(name, ()) if n in self.project)
        return evicted

    def apply(self, work):
        for name in work.evict:
            module = sys.modules.pop(name, None)
            # Its package keeps it as an attribute, which ``from pkg import
            # name`` would return instead of importing the edited file.
            parent, _, child = name.rpartition(".")
            package = sys.modules.get(parent)
            if module is not None and package is not None and getattr(package, child, None) is module:
                delattr(package, child)
        importlib.invalidate_caches()
        linecache.checkcache()
        for path in sorted(work.removed):
            self._drop(path)
        for path in sorted(work.recollect):
            self._recollect(path)
        for path in work.added:
            self._add(path)

    def _block(self, path):
        """Where ``path``'s items lie in the collected list (one run of them)."""
        positions = [i for i, item in enumerate(self.items) if str(item.path) == path]
        if not positions or positions != list(range(positions[0], positions[-1] + 1)):
            raise Stale(f"{path}'s tests are not collected in one run")
        return positions[0], positions[-1] + 1

    def _drop(self, path):
        start, end = self._block(path)
        for node in _file_nodes(self.items[start:end]):
            pytest_internals.forget_fixtures_under(self.session, node.nodeid)
        self.graph.forget_warnings(path)
        self._count(-(end - start))
        del self.items[start:end]

    def _add(self, path):
        """A new file beside collected ones: collected where pytest (8 and
        later: each directory's entries sorted by name) would put it."""
        if not pytest_internals.collects_through_directory_nodes():
            raise Stale(f"{path} was added (pytest {pytest.__version__} orders new files otherwise)")
        directory, name = os.path.split(path)
        siblings = [i for i, item in enumerate(self.items) if within(str(item.path), directory)]
        if not siblings:
            raise Stale(f"{path} was added where no test was collected")
        parent = _file_nodes([self.items[siblings[0]]])[0].parent
        if str(parent.path) != directory:
            raise Stale(f"{path} was added beside tests collected under another directory node")
        if parent.ihook.pytest_ignore_collect(collection_path=Path(path), config=self.session.config):
            return
        key = (name,)
        later = [i for i in siblings if Path(str(self.items[i].path)).relative_to(directory).parts > key]
        at = later[0] if later else siblings[-1] + 1
        self.items[at:at] = self._collect(parent, Path(path))

    def _count(self, delta):
        terminal = self.session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            pytest_internals.adjust_collected_count(terminal, delta)

    def _collect(self, parent, file_path):
        new_items = []
        self.graph.begin(str(file_path))
        try:
            for node in _flat(parent.ihook.pytest_collect_file(file_path=file_path, parent=parent)):
                new_items.extend(self.session.genitems(node))
        finally:
            self.graph.leave()
        return new_items

    def _recollect(self, path):
        start, end = self._block(path)
        file_nodes = _file_nodes(self.items[start:end])
        parents = {id(node.parent): node.parent for node in file_nodes}
        if len(parents) != 1:
            raise Stale(f"{path} was collected under more than one directory node")
        (parent,) = parents.values()
        for node in file_nodes:
            pytest_internals.forget_fixtures_under(self.session, node.nodeid)
        self.graph.forget_warnings(path)
        new_items = self._collect(parent, file_nodes[0].path)
        self._count(-(end - start))
        self.items[start:end] = new_items


class Work:
    """What a refresh does: modules to evict, test files to drop, to
    collect again and to collect for the first time."""

    def __init__(self):
        self.evict = set()
        self.removed = set()
        self.recollect = set()
        self.added = []


def _file_nodes(items):
    """The file-level nodes (``pytest.File``) the items were collected under."""
    nodes = {}
    for item in items:
        for node in item.listchain():
            if isinstance(node, pytest.File):
                nodes.setdefault(id(node), node)
    return list(nodes.values())


def visible_names(directory):
    """The entries that can matter to imports and collection (hidden files,
    caches and ``__pycache__`` cannot); None when it cannot be listed."""
    try:
        return [name for name in os.listdir(directory) if not name.startswith(".") and name != "__pycache__"]
    except OSError:
        return None


def within(path, ancestor):
    return path == ancestor or path.startswith(os.path.join(ancestor, ""))


def warning_log():
    """The list pytest's warnings plugin records collection warnings in
    (``catch_warnings(record=True)`` appends them through
    ``warnings._showwarnmsg_impl``); a new list when none is recording."""
    import warnings

    impl = getattr(warnings, "_showwarnmsg_impl", None)
    log = getattr(impl, "__self__", None)
    return log if isinstance(log, list) else []


def _module_files():
    files = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            files[name] = path
    return files


def _flat(nodes):
    for node in nodes or ():
        if isinstance(node, (list, tuple)):
            yield from _flat(node)
        else:
            yield node


def _check_watchers(config):
    """Only pytest's own plugins and rpytest's may watch collection: their
    state is corrected here; another plugin's would keep the old file."""
    for plugin in config.pluginmanager.get_plugins():
        module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", "")
        if pytest_internals.pytest_owns_module(module) or str(module).startswith("rpytest_worker"):
            continue
        watching = [hook for hook in COLLECTION_WATCHERS if callable(getattr(plugin, hook, None))]
        if watching:
            name = config.pluginmanager.get_name(plugin) or repr(plugin)
            raise Stale(f"plugin {name} implements {watching[0]}, so it sees every collection")

