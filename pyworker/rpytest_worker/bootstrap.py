"""Where every Python process of a run starts: which role it plays, and pytest's start.

The engine (and ``rpytest serve``) starts each process as ``python -c
<bootstrap> ARGS`` (``src/python/embed.rs``; it exits 97 before importing this
package when pytest is missing), and the program calls ``main``. The role
comes from the engine's variables, read and removed by ``identity``:

- a spawned worker (``RPYTEST_ROLE=worker``): ``spawned``;
- a warm zygote, held by ``rpytest serve`` (``RPYTEST_WARM_FD``): ``warm``;
  a spare one (``RPYTEST_WARM_SPARE``) has started Python and imported
  pytest, and waits for the daemon to say which arguments to collect with;
- else the run's zygote, connected to the engine at once: ``zygote``.

Each runs ``pytest.main`` with the user's arguments and rpytest's plugins
(``run_session``), looking like ``python -m pytest ARGS`` to the code it runs.
"""
import signal
import sys

import pytest

from . import fixtures, identity, prctl, protocol, pytest_internals, quick_exit, shared_fixtures, spare, warm
from .affected import AffectedPlugin
from .plugin_compat import PluginCompat
from .recollect import ImportGraph
from .spawned import SpawnedWorkerPlugin
from .xdist_compat import XdistWorkerCount
from .zygote import ZygotePlugin, end_orphans


def main():
    # When the interpreter started, before it read anything of pytest's
    # (the ``-c`` program sets it): a warm session's files must not have
    # changed after it.
    started_ns = sys.__dict__.pop("rpytest_started_ns", None)
    prctl.die_with_parent()
    # The engine's variables are ours: read, then gone before any conftest
    # (or a subprocess a test starts) can see them.
    env = identity.take_engine_env()
    args = sys.argv[1:]
    daemon = protocol.DaemonLink(int(env.warm_fd)) if env.warm_fd else None
    identity.masquerade(args)
    # The engine forwards an interrupt during collection as SIGINT, for
    # pytest to report; a SIGINT ignored by inheritance (rpytest started as
    # a background job) must not swallow it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if env.role == "worker":
        return run_session(args, SpawnedWorkerPlugin(int(env.worker), int(env.worker_count)), zygote=False)
    prctl.become_subreaper()
    pause = ()
    if daemon is not None:
        plugin = warm.warm_zygote_plugin(env, daemon, started_ns)
        if env.warm_spare:  # waits for the daemon in pytest's configuration (spare.py)
            wake = lambda woken_ns: setattr(plugin, "started_ns", woken_ns)  # noqa: E731
            pause = (spare.SparePause(daemon, args, started_ns, plugin, wake),)
    else:
        conn = connect_to_engine(env.socket)
        conn.send(protocol.hello("zygote"))
        # Who imports whom and what is read while pytest configures and
        # collects, for the dependency record (``affected``), as a warm zygote records it.
        graph = ImportGraph()
        graph.start()
        recorder = warm.ReadRecorder(on_read=graph.read)
        plugin = ZygotePlugin(conn, shared_fixtures.SharedFixtures(env.shared_fixture_names()), graph, recorder)
    code = run_session(args, plugin, zygote=True, extra=pause)
    sys.stdout.flush()
    sys.stderr.flush()
    if plugin.conn is not None:  # None: a warm zygote whose session ended before a run took it
        plugin.conn.send(protocol.session_ended(code, plugin.late_warnings()))
    end_orphans()
    quick_exit.exit_now(code)
    return code


EXIT_NO_ENGINE = 96  # src/supervise/lifecycle/zygote_exit.rs: the engine's socket could not be reached


def connect_to_engine(path):
    """The zygote's connection, or exit 96 saying why: the engine then names
    a lost socket, not the interpreter, as the cause."""
    try:
        return protocol.Connection(path)
    except OSError as exc:
        sys.stderr.write(f"rpytest zygote: cannot connect to the engine's socket {path}: {exc}\n")
        sys.stderr.flush()
        sys.exit(EXIT_NO_ENGINE)


def run_session(args, plugin, zygote, extra=()):
    """``pytest.main`` with rpytest's plugins, its usage errors naming
    rpytest: pytest>=9 calls itself "pytest.main()" there (unless told the
    program's name), older versions take the name from their parser's
    ``prog``, else ``sys.argv[0]`` (pytest's own ``__main__.py`` here)."""
    plugins = [*extra, plugin, XdistWorkerCount(), fixtures.RegisterUnlessXdist(), PluginCompat(zygote),
               AffectedPlugin(plugin if zygote else None)]
    main_taking_prog = pytest_internals.main_taking_prog()
    if main_taking_prog is not None:
        return int(main_taking_prog(args=args, plugins=plugins, prog="rpytest"))
    return int(pytest.main(args, plugins=[*plugins, NamedRpytest()]))


class NamedRpytest:
    """pytest<9: usage errors and ``--help`` say "rpytest" (the parser's
    ``prog``, read when it parses, after every plugin's ``pytest_addoption``)."""

    def pytest_addoption(self, parser):
        parser.prog = "rpytest"
