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
move the rootdir or the ini file, the names in a directory it listed or
imports from (by name, so an editor's save by rename does not count).
"""
import os
import sys
import time

import pytest

from . import pristine, protocol
from .warm import SETTLE_NS, discovery_candidates, listing_digest, path_dirs_and_pth_files, stat_record

CHANGED = object()  # a directory's listing that changed while the spare imported


class SparePause:
    """Holds the spare in pytest's configuration until the daemon asks."""

    def __init__(self, daemon, args, started_ns, recorder, on_wake):
        self.daemon = daemon
        self.args = list(args)
        self.started_ns = started_ns  # when the interpreter started
        self.recorder = recorder  # what it has read so far (warm.ReadRecorder)
        self.on_wake = on_wake  # told the time it woke: the session's start

    # Outermost, so it waits before pytest's own wrappers (capturing) start.
    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_load_initial_conftests(self, early_config):
        self._wait(early_config, self._listings())
        yield

    def _listings(self):
        """The directories imported from or listed, by their names now (None:
        not a directory); ``CHANGED`` for one changed since the spare started
        (while it imported)."""
        dirs, _ = path_dirs_and_pth_files()
        listings = {}
        for path in dirs | self.recorder.dirs:
            stamp = stat_record(path)
            late = self.started_ns is not None and stamp is not None and stamp[0] >= self.started_ns - SETTLE_NS
            listings[path] = CHANGED if late else listing_digest(path)
        return listings

    def _wait(self, config, listings):
        msg, _ = self.daemon.recv_with_fds()  # decoded and checked (protocol.FROM_DAEMON)
        if msg is None or msg["type"] != "build":
            pristine.exit_now(0)
        woken_ns = time.time_ns()
        why = None
        if list(msg["args"]) != self.args:
            why = "the spare was configured for other arguments"
        else:
            changed = self._changed(config) or next(
                (path for path, names in listings.items() if names is CHANGED or listing_digest(path) != names), None)
            if changed is not None:
                why = f"{changed} changed after the spare read it"
        if why is not None:
            self.daemon.send(protocol.stale(why))
            pristine.exit_now(0)
        self.on_wake(woken_ns)

    def _changed(self, config):
        """A file the spare depends on stamped after it started (less the
        clock's granularity), or None."""
        if self.started_ns is None:
            return None
        late = self.started_ns - SETTLE_NS
        for path in self._files(config):
            stamp = stat_record(path)
            if stamp is not None and max(stamp[0], stamp[1]) >= late:
                return path
        return None

    def _files(self, config):
        files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
        files = {os.path.abspath(path) for path in files if isinstance(path, str)}
        files |= set(self.recorder.files)
        files |= discovery_candidates(config, config.known_args_namespace.file_or_dir or [])
        files.add(sys.executable)
        if config.inipath:
            files.add(str(config.inipath))
        return files
