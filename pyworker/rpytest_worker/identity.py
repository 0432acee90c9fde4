"""How an rpytest process looks to the code it runs: like ``python -m pytest ARGS``.

The engine starts every Python process of a run (zygote, spawned worker,
the daemon's warm zygote) as ``python -c <bootstrap> ARGS``, with variables
of its own in the environment. Tests inspect their process: ``__main__``,
``sys.argv``, the environment they hand to subprocesses (an inner
``python -m pytest`` or ``rpytest``, a multiprocessing child). So before
pytest loads any plugin or conftest, ``take_engine_env`` reads the engine's
variables once into ``ENV`` and removes them from ``os.environ``, and
``masquerade`` installs pytest's own ``__main__`` module and
argv. Forked workers inherit both from the zygote.

Only the variables the engine sets are removed. An ``RPYTEST_*`` variable
the user set (rpytest's settings, ``RPYTEST_TRACE``, ...) is part of the
user's environment, which the tests would see under pytest too.
"""
import importlib.util
import os
import sys

# Every variable the engine or the daemon sets for a Python process of a run.
PRIVATE = {
    "RPYTEST_ROLE": "role",  # zygote | worker (a spawned one)
    "RPYTEST_SOCKET": "socket",  # the engine's socket (the warm zygote learns it at handover)
    "RPYTEST_WARM_FD": "warm_fd",  # the daemon's end of a warm zygote's socket pair
    "RPYTEST_WARM_TTY": "warm_tty",  # the client's terminal width, for the warm zygote's header
    "RPYTEST_WARM_SPARE": "warm_spare",  # "1": a spare warm zygote, told its arguments later
    "RPYTEST_WORKER": "worker",  # a spawned worker's number
    "RPYTEST_WORKER_COUNT": "worker_count",
    "RPYTEST_BASETEMP": "basetemp",  # the zygote's basetemp, for a spawned worker
    "RPYTEST_TESTRUNUID": "testrunuid",
    "RPYTEST_SHARDING": "sharding",  # the zygote asks the engine which items its shard keeps
    "RPYTEST_SHARD_KEEP": "shard_keep",  # a spawned worker's copy of that answer (a JSON file)
    "RPYTEST_SPAWN_INPUT": "spawn_input",  # a spawned worker's workerinput and the zygote's items (spawned.py)
    "RPYTEST_FORK_PAST_THREADS": "fork_past_threads",  # "1": --worker-start fork given, threads or not
    "RPYTEST_SHARED_FIXTURES": "shared_fixtures",  # names of the session fixtures set up before the fork
    "RPYTEST_RETRYING": "retrying",  # "1" under --retries: the engine counts -x/--maxfail
    "RPYTEST_COLLECT_SHARES": "collect_shares",  # "N" or "N:always": workers to spread the collection over (spread.py)
}


class EngineEnv:
    """The engine's variables of this process (None when unset)."""

    def __init__(self, values=None):
        self.set(values or {})

    def set(self, values):
        for name, attr in PRIVATE.items():
            setattr(self, attr, values.get(name))

    def shared_fixture_names(self):
        return [name for name in (self.shared_fixtures or "").split(",") if name]


# Read once by take_engine_env(); forked workers inherit it.
ENV = EngineEnv()


def take_engine_env(environ=os.environ):
    """Reads the engine's variables into ``ENV`` and removes them from the environment."""
    ENV.set({name: environ.pop(name) for name in PRIVATE if name in environ})
    return ENV


def masquerade(args):
    """Looks like ``python -m pytest ARGS``: ``__main__`` becomes pytest's
    ``__main__`` module as ``python -m pytest`` runs it (``__file__``, ``__spec__.name == "pytest.__main__"``; its code
    defines, runs nothing under that name), ``sys.argv`` is ``[its file,
    *args]``, ``sys.orig_argv`` that command line, and ``sys.path`` starts
    with the working directory, without the bootstrap's entry for this
    package (already imported: its modules load from the package itself)."""
    # rpytest's --affected reaches pytest as this option (``affected``): not the user's.
    args = [arg for arg in args if arg != "--rpytest-affected"]
    spec = importlib.util.find_spec("pytest.__main__")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__name__ = "__main__"
    sys.modules["__main__"] = module
    sys.argv[:] = [spec.origin, *args]
    if hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = [*sys.orig_argv[:1], "-m", "pytest", *args]
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [entry for entry in sys.path if not entry or os.path.abspath(entry) != ours]
    if sys.path and sys.path[0] == "":
        # `python -c` puts "" (the working directory, whatever it becomes)
        # first; `python -m` puts the directory it started in.
        sys.path[0] = os.getcwd()
