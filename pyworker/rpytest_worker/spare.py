"""A spare: pytest configured up to its conftests, waiting to go on.

The daemon's lowest layer (``src/daemon/spare.rs``). A session rebuilt
after an edit it cannot take in place (a conftest, an ini option) would
start Python, import pytest and load every plugin again, with all that the
plugins import from site-packages: most of a small suite's start. A spare
has done that ahead of time, for the arguments of the session the daemon
built last, and waits in ``pytest_load_initial_conftests``: after pytest
found its rootdir and ini file and loaded the plugins, before the first
conftest, before capturing starts.

Told ``build {args}`` with the same arguments, it goes on, and from there it
is a zygote that started then. It refuses (``stale``) and exits, and the
daemon starts afresh, when it was configured for other arguments, or when
anything it read may have changed since it started: a module, a file it
opened (an ini file, a plugin's metadata), a file whose appearance would
move the rootdir or the ini file, the names in a directory it listed. In a
directory on ``sys.path`` (the rootdir often is) only a name it imported
or looked for counts, or a ``.pth`` file: a new ``conftest.py`` or test
file there does not stop it, a new ``yaml.py`` would.
"""
import os
import sys
import time

import pytest

from . import pristine, protocol
from .recollect import visible_names
from .warm import SETTLE_NS, discovery_candidates, listing_digest, path_dirs_and_pth_files, stat_record


class Held:
    """What the spare depends on, as it was at the pause."""

    def __init__(self, files, listed, path_names, early):
        self.files = files  # path -> stat (None: absent)
        self.listed = listed  # a directory a plugin listed -> its listing's digest
        self.path_names = path_names  # a sys.path directory -> its names
        self.early = early  # a path changed between the start and the pause


class SparePause:
    """Holds the spare in pytest's configuration until the daemon asks."""

    def __init__(self, daemon, args, started_ns, plugin, on_wake):
        self.daemon = daemon
        self.args = list(args)
        self.started_ns = started_ns  # when the interpreter started
        self.recorder = plugin.recorder  # what it has read so far (warm.ReadRecorder)
        self.looked_up = plugin.graph.looked_up  # the modules it looked for (recollect.LookedUp)
        self.on_wake = on_wake  # told the time it woke: the session's start

    # Outermost, so it waits before pytest's own wrappers (capturing) start.
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_load_initial_conftests(self, early_config):
        self._wait(early_config, self._hold(early_config))
        yield

    def _wait(self, config, held):
        msg, _ = self.daemon.recv_with_fds()  # decoded and checked (protocol.FROM_DAEMON)
        if msg is None or msg["type"] != "build":
            pristine.exit_now(0)
        woken_ns = time.time_ns()
        why = None
        if list(msg["args"]) != self.args:
            why = "the spare was configured for other arguments"
        else:
            changed = self._changed(held)
            if changed is not None:
                why = f"{changed} changed after the spare read it"
        if why is not None:
            self.daemon.send(protocol.stale(why))
            pristine.exit_now(0)
        self.on_wake(woken_ns)

    def _hold(self, config):
        files = {path: stat_record(path) for path in self._files(config)}
        path_dirs, _ = path_dirs_and_pth_files()
        listed = {path: listing_digest(path) for path in self.recorder.dirs - path_dirs}
        path_names = {path: set(visible_names(path) or ()) for path in path_dirs}
        early = None
        if self.started_ns is not None:
            late = self.started_ns - SETTLE_NS
            stamps = [*files.items(), *((path, stat_record(path)) for path in (*listed, *path_names))]
            early = next((path for path, stamp in stamps if stamp is not None and max(stamp[0], stamp[1]) >= late),
                         None)
        return Held(files, listed, path_names, early)

    def _changed(self, held):
        """What changed since the pause (or before it, since the start)."""
        if held.early is not None:
            return held.early
        changed = next((path for path, stamp in held.files.items() if stat_record(path) != stamp), None)
        changed = changed or next((path for path, digest in held.listed.items() if listing_digest(path) != digest),
                                  None)
        imported = {name.partition(".")[0] for name in list(sys.modules)}
        for path, names in held.path_names.items():
            differ = names ^ set(visible_names(path) or ())
            stems = {name.split(".")[0] for name in differ}
            pth = any(name.endswith(".pth") for name in differ)
            if changed is None and (pth or stems & imported or any(self.looked_up.knows(stem) for stem in stems)):
                changed = path
        return changed

    def _files(self, config):
        files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
        files = {os.path.abspath(path) for path in files if isinstance(path, str)}
        files |= set(self.recorder.files)
        files |= discovery_candidates(config, config.known_args_namespace.file_or_dir or [])
        files.add(sys.executable)
        if config.inipath:
            files.add(str(config.inipath))
        return files
