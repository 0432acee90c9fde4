"""A run's selection, applied to a session a checkpoint already collected.

``rpytest serve`` keys its warm sessions by what changes configuration or
collection. What only selects is left out of the key (``src/daemon/key.rs``
strips it) and applied here, in the run's own fork of the checkpoint:

- ``-k``, ``-m``, ``--deselect``, ``-x``/``--maxfail``, ``--ff``, ``--nf``
  and ``--sw``: their values are set on ``config.option`` before pytest's
  ``pytest_collection_modifyitems`` runs, which the checkpoint deferred to
  the run (``checkpoint.py``), so every plugin's hook sees them as in a
  cold run; the plugins that read pytest's cache read it again now
  (``cache_plugins.py``);
- paths and node ids inside what the checkpoint collected: the collected
  items are narrowed to those a cold run of the paths would collect, in
  the order it would collect them.

``plan`` decides without changing anything; when it cannot be sure that
the result equals a cold run's it raises ``Unservable`` with the reason,
and the run goes cold (``-v`` prints the reason). ``Plan.apply`` runs in
the fork.
"""
import os
import shlex

import pytest

from . import cache_plugins, identity, pytest_internals
from .recollect import within

# config.option names a run may set without changing the session's key.
SELECTION_DESTS = frozenset({"keyword", "markexpr", "deselect", "maxfail", "file_or_dir", "failedfirst", "newfirst",
                             "stepwise", "stepwise_skip", "stepwise_reset", "rpytest_affected"})
# Files whose presence between a path and the rootdir could make a cold run
# of that path find another rootdir or inifile (pytest's discovery).
DISCOVERY_FILES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini",
                   "setup.cfg", "setup.py")


class Unservable(Exception):
    """The checkpoint cannot give this run what a cold run would."""


def parse(config, args):
    """``args`` parsed as pytest parses a command line: the ini file's
    ``addopts`` and ``$PYTEST_ADDOPTS`` first, then the arguments."""
    full = [*config.getini("addopts"), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *args]
    try:
        return pytest_internals.parse_command_line(config, full)
    except BaseException as exc:  # noqa: BLE001  pytest's usage error, or argparse's SystemExit
        raise Unservable(f"pytest does not accept these arguments ({exc}); the cold run says why") from None


_PARSED = {}  # a session's own arguments, parsed: the same for every run it serves


def _parsed_once(config, args):
    key = tuple(args)
    if key not in _PARSED:
        _PARSED[key] = vars(parse(config, args))
    return _PARSED[key]


def plan(session, run_args, built_args):
    """What the run of ``run_args`` needs done to this checkpoint, which was
    built with ``built_args``."""
    config = session.config
    run, built = vars(parse(config, run_args)), _parsed_once(config, built_args)
    changed = sorted(name for name in set(run) | set(built)
                     if name not in SELECTION_DESTS and run.get(name) != built.get(name))
    if changed:
        raise Unservable(f"option {changed[0]!r} differs from the warm session's")
    narrowed = None
    if list(run["file_or_dir"] or []) != list(built["file_or_dir"] or []):
        narrowed = _narrow(session, run["file_or_dir"] or [], built["file_or_dir"] or [])
    return Plan(run_args, {name: run[name] for name in SELECTION_DESTS if name in run}, narrowed)


class Plan:
    def __init__(self, run_args, options, narrowed):
        self.run_args = list(run_args)
        self.options = options
        self.narrowed = narrowed  # None, or the items the run's paths select

    def apply(self, session, items):
        """In the run's fork: the run's options, and its items in place."""
        config = session.config
        for name, value in self.options.items():
            setattr(config.option, name, value)
            if hasattr(config.known_args_namespace, name):
                setattr(config.known_args_namespace, name, value)
        cache_plugins.renew(session)
        identity.masquerade(self.run_args)
        _restart_clock(config)
        config.invocation_params = type(config.invocation_params)(
            args=tuple(self.run_args), plugins=config.invocation_params.plugins, dir=config.invocation_params.dir)
        if self.narrowed is not None:
            items[:] = self.narrowed
            config.args = list(self.options["file_or_dir"])
            config.args_source = type(config.args_source).ARGS
            terminal = config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                pytest_internals.set_collected_count(terminal, len(items))


def _restart_clock(config):
    """The session's duration, which pytest prints when no test ran, counts
    from this run's start, not from when the checkpoint was built."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:
        return
    pytest_internals.restart_session_clock(terminal)


def _narrow(session, paths, built_paths):
    """The items a cold run of ``paths`` collects, or ``Unservable``; the
    session collected ``built_paths`` (none: pytest's default)."""
    config = session.config
    if not paths:
        raise Unservable("the warm session collected only the paths it was given")
    if config.option.pyargs:
        raise Unservable("--pyargs paths are resolved while collecting")
    _check_quiet_collection(session)
    invocation = str(config.invocation_params.dir)
    targets = [_target(invocation, arg) for arg in paths]
    _check_inside(targets, paths, _collected_targets(config, built_paths))
    _check_same_setup(config, [path for path, _, _ in targets])
    _check_foreign_conftests(config, [path for path, _, _ in targets])
    chosen, seen = [], set()
    for arg, (path, parts, param) in zip(paths, targets):
        matched = [item for item in session.items if _matches(item, path, parts, param)]
        if not matched:
            raise Unservable(f"the warm session holds no test for {arg!r}")
        if any(id(item) in seen for item in matched):
            raise Unservable(f"{arg!r} overlaps another argument")
        seen.update(id(item) for item in matched)
        chosen.extend(matched)
    return chosen


def _collected_targets(config, built_paths):
    """What the session collected: its paths, or pytest's default ones
    (``testpaths``, relative to the rootdir, or the invocation directory)."""
    if built_paths:
        return [_target(str(config.invocation_params.dir), arg) for arg in built_paths]
    testpaths = config.args_source == type(config.args_source).TESTPATHS
    base = str(config.rootpath) if testpaths else str(config.invocation_params.dir)
    return [(os.path.normpath(os.path.join(base, str(arg))), [], "") for arg in config.args]


def _check_inside(targets, paths, collected):
    """Each of the run's paths lies within what the session collected:
    holding some of its tests is not enough (a directory, of which the
    session collected one file)."""
    for arg, target in zip(paths, targets):
        if not any(_contains(outer, target) for outer in collected):
            raise Unservable(f"{arg!r} reaches beyond what the warm session collected")


def _contains(outer, inner):
    (path, parts, param), (inner_path, inner_parts, inner_param) = outer, inner
    if not parts and not param:
        return within(inner_path, path)
    if inner_path != path or inner_parts[: len(parts)] != parts:
        return False
    if param:
        return inner_parts == parts and inner_param == param
    return True


def _target(invocation, arg):
    base, bracket, rest = str(arg).partition("[")
    path, *parts = base.split("::")
    path = os.path.normpath(os.path.join(invocation, path))
    if not os.path.exists(path):
        raise Unservable(f"{arg!r} does not exist; the cold run says so")
    return path, parts, (bracket + rest) if bracket else ""


def _matches(item, path, parts, param):
    item_path = str(item.path)
    if item_path != path and not within(item_path, path):
        return False
    if not parts:
        return True
    names = _names_below_file(item)
    if len(parts) > len(names) or names[: len(parts) - 1] != parts[:-1]:
        return False
    index, part = len(parts) - 1, parts[-1]
    if param:
        return index == len(names) - 1 and names[index] == part + param
    return names[index] == part or (index == len(names) - 1 and getattr(item, "originalname", None) == part)


def _names_below_file(item):
    """The names of the item's nodes below its file: ``Class``, ``test[1]``."""
    chain = item.listchain()
    files = [i for i, node in enumerate(chain) if isinstance(node, pytest.File)]
    return [node.name for node in chain[files[-1] + 1:]] if files else [item.name]


def _check_quiet_collection(session):
    """Module-level errors, skips and warnings outside the run's paths
    would show in its summary: such a session serves only whole runs."""
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(terminal, "stats", {}) if terminal is not None else {}
    if session.testsfailed or stats.get("error") or stats.get("skipped"):
        raise Unservable("the warm session had collection errors or module-level skips")
    if any(getattr(report, "when", None) == "collect" for report in stats.get("warnings", [])):
        raise Unservable("the warm session's collection warned")


def _check_same_setup(config, paths):
    """A cold run of ``paths`` finds the checkpoint's rootdir and inifile:
    no discovery file lies between any path and the rootdir."""
    rootdir = str(config.rootpath)
    if config.inipath is None and str(config.invocation_params.dir) != rootdir:
        raise Unservable("without an ini file the rootdir depends on the paths")
    for path in paths:
        if path != rootdir and not path.startswith(os.path.join(rootdir, "")):
            raise Unservable(f"{path} lies outside the rootdir {rootdir}")
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        while directory != rootdir and directory.startswith(rootdir):
            for name in DISCOVERY_FILES:
                if os.path.exists(os.path.join(directory, name)):
                    raise Unservable(f"{os.path.join(directory, name)} may change the rootdir for these paths")
            directory = os.path.dirname(directory)


def _check_foreign_conftests(config, paths):
    """A conftest a cold run of ``paths`` would not load may hold fixtures
    (scoped to its directory, so invisible here) but no hooks."""
    dirs = [path if os.path.isdir(path) else os.path.dirname(path) for path in paths]
    for plugin in config.pluginmanager.get_plugins():
        filename = getattr(plugin, "__file__", None)
        if not isinstance(filename, str) or os.path.basename(filename) != "conftest.py":
            continue
        where = os.path.dirname(os.path.abspath(filename))
        loaded = any(within(d, where) or within(where, d) for d in dirs)
        if not loaded and any(name.startswith("pytest_") for name in vars(plugin)):
            raise Unservable(f"{filename} has hooks a cold run of these paths would not load")


