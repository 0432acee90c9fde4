"""Plugins whose design needs one process per session, handled as
pytest-xdist handles them, or refused with a reason, never run silently wrong.

- pytest-cov: measures as under plain pytest (central mode, started in the
  zygote); each forked worker saves its own data file before it ends
  (``save_coverage``), which pytest-cov combines in the zygote; a spawned
  worker measures centrally too (``keep_coverage_central``).
- pytest-benchmark: benchmarks cannot be timed reliably beside other
  workers. As under xdist, they are disabled (each benchmarked function runs
  once, as a test) and a warning says so; ``--benchmark-only`` is refused.
- syrupy: works as under pytest-xdist. Workers assert and write snapshots
  and leave their reports in ``config.workeroutput``; the zygote merges them
  (``pytest_testnodedown``, see ``xdist_compat``) and decides what is unused.
  syrupy wires that up only when pytest-xdist is installed: without it,
  rpytest registers syrupy's own xdist hooks, removes the lock files the
  workers leave (xdist's controller would), and when a worker crashed,
  keeps unused snapshots (syrupy would under xdist: its reports are
  incomplete).
- pytest-instafail: the engine prints each failure as it happens (the
  ``collected`` message carries ``--instafail``).
- A plugin that replaces pytest's terminal reporter (pytest-sugar): the
  engine draws the terminal, so such a plugin cannot show what it draws,
  and its reporting hooks skew the counts. It is refused, by name, with the
  ``-p no:NAME`` that turns it off.
"""
import sys
import warnings

import pytest

from . import pytest_internals, xdist_compat

BENCHMARK_WARNING = (
    "Benchmarks are automatically disabled because rpytest runs tests in parallel workers. "
    "Benchmarks cannot be performed reliably in a parallelized environment; run them with `python -m pytest`."
)


class PluginCompat:
    def __init__(self, zygote):
        self.zygote = zygote  # the process that reports collection warnings
        self.benchmarks_disabled = False

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        xdist_compat.add_specs_unless_xdist(config)
        syrupy = config.pluginmanager.get_plugin("syrupy")
        defer = getattr(syrupy, "DeferXDist", None)
        if defer is not None and not any(isinstance(p, defer) for p in config.pluginmanager.get_plugins()):
            config.pluginmanager.register(defer(), "rpytest-syrupy-nodes")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        if error is not None and not _xdist(node.config):
            # syrupy counts worker reports only when xdist is installed.
            option = node.config.option
            if hasattr(option, "disable_unused_snapshots") and not option.disable_unused_snapshots:
                option.disable_unused_snapshots = True
                sys.stderr.write(f"rpytest: worker {node.gateway.id} crashed, so syrupy's unused-snapshot "
                                 "check is off for this run (its snapshot report is incomplete)\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        syrupy_session = pytest_internals.syrupy_session(session.config)
        controller = not hasattr(session.config, "workerinput")
        if controller and syrupy_session is not None and not _xdist(session.config):
            pytest_internals.remove_syrupy_lock_files(syrupy_session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        # After every pytest_configure (sugar and pytest-benchmark act in
        # trylast ones, which pluggy calls after ours), before the terminal
        # prints the session header: a usage error here leaves no header
        # and no junit file, as one at configure time would.
        refuse_replaced_terminal(session.config)
        self.disable_benchmarks(session.config)

    def disable_benchmarks(self, config):
        """pytest-benchmark's session is disabled, as pytest-xdist does;
        ``--benchmark-only`` is refused."""
        session = pytest_internals.benchmark_session(config)
        if session is None or getattr(session, "skip", False) or getattr(session, "disabled", True):
            return
        if getattr(config.option, "benchmark_only", False):
            raise pytest.UsageError(
                "--benchmark-only: rpytest disables benchmarks in its parallel workers, as pytest-xdist does; "
                "run benchmarks with `python -m pytest --benchmark-only`.")
        session.disabled = True
        self.benchmarks_disabled = True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if self.zygote and self.benchmarks_disabled and _uses(items, "benchmark"):
            # Optional: imported only where pytest-benchmark is installed and active.
            from pytest_benchmark.logger import PytestBenchmarkWarning

            warnings.warn(PytestBenchmarkWarning(BENCHMARK_WARNING), stacklevel=1)


# Reporters that replace pytest's and whose output the engine reproduces.
_SUPPORTED_REPORTERS = frozenset({"pytest_instafail.InstafailingTerminalReporter"})


def refuse_replaced_terminal(config):
    """A usage error naming the plugin that replaced pytest's terminal
    reporter with one rpytest cannot reproduce (pytest-sugar)."""
    pm = config.pluginmanager
    terminal = pm.get_plugin("terminalreporter")
    terminal = getattr(terminal, "_reporter", terminal)  # behind the zygote's HooklessTerminal
    cls = type(terminal)
    if terminal is None or pytest_internals.is_plain_terminal_reporter(terminal):
        return
    if _qualified(cls) in _SUPPORTED_REPORTERS:
        return
    module = sys.modules.get(cls.__module__)
    name = next((n for n, p in pm.list_name_plugin() if p is module and n), None) or cls.__module__
    raise pytest.UsageError(
        f"the plugin '{name}' ({_qualified(cls)}) replaces pytest's terminal reporter. rpytest "
        f"draws the terminal itself, so what that plugin draws cannot be shown and its counts would be wrong. "
        f"Turn it off for rpytest with -p no:{name} (for example in PYTEST_ADDOPTS), or run python -m pytest.")


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _xdist(config):
    return config.pluginmanager.hasplugin("xdist") or config.pluginmanager.hasplugin("xdist.plugin")


def _uses(items, fixture):
    return any(fixture in getattr(item, "fixturenames", ()) for item in items)


def keep_coverage_central(config):
    """A spawned worker is xdist's worker from its start, and pytest-cov
    then starts its xdist worker mode, which needs the address its xdist
    controller mode adds in ``pytest_configure_node``. The zygote measures
    in central mode, so the worker does too (as it was configured before it
    became a worker), and saves its data like a forked one."""
    pytest_internals.make_cov_plugin_central(config.pluginmanager.get_plugin("_cov"))


def append_coverage(options):
    """A spawned worker, before pytest-cov starts measuring (its
    ``pytest_load_initial_conftests``; ``options``: the known arguments):
    append, as ``--cov-append`` does. Central mode starts by erasing every
    data file of the run, the ones other workers are writing included;
    the zygote erased them already."""
    if getattr(options, "cov_source", None) and hasattr(options, "cov_append"):
        options.cov_append = True


def save_coverage(config):
    """pytest-cov measures as under plain pytest (its "central" mode, started
    in the zygote), and a forked worker inherits the tracer, but what it
    measured would die with it. Saved here to a data file of its own, it is
    combined by pytest-cov at the end of the session, as subprocesses' data
    is. pytest-cov before 6 names its data file once per run (every fork
    would write the same file): say so rather than report partial coverage."""
    plugin = config.pluginmanager.get_plugin("_cov")
    cov = getattr(getattr(plugin, "cov_controller", None), "cov", None)
    if cov is None or not hasattr(cov, "save"):
        return
    if not pytest_internals.coverage_names_data_file_per_process(cov):
        sys.stderr.write("rpytest: warning: this pytest-cov names one data file per run, so coverage measured "
                         "in workers is lost; upgrade pytest-cov (>= 6) for complete coverage\n")
        return
    cov.stop()
    cov.save()
