"""Plugins whose design needs one process per session, handled as
pytest-xdist handles them, or refused with a reason, never run silently wrong.

- pytest-cov: measures as under plain pytest (central mode, started in the
  zygote); each forked worker saves its own data file before it ends
  (``save_coverage``), which pytest-cov combines in the zygote.
- pytest-benchmark: benchmarks cannot be timed reliably beside other
  workers. As under xdist, they are disabled (each benchmarked function runs
  once, as a test) and a warning says so; ``--benchmark-only`` is refused.
- syrupy: snapshots are asserted in the workers, but syrupy writes and
  prunes them from the session that ends in the zygote, which saw none: it
  would call every snapshot unused, and ``--snapshot-update`` would delete
  them. Until workers hand their snapshot reports back, a run that selects
  a test using the ``snapshot`` fixture is refused, with a reason.
"""
import sys
import warnings

import pytest

BENCHMARK_WARNING = (
    "Benchmarks are automatically disabled because rpytest runs tests in parallel workers. "
    "Benchmarks cannot be performed reliably in a parallelized environment; run them with `python -m pytest`."
)


class PluginCompat:
    def __init__(self, zygote):
        self.zygote = zygote  # the process that reports collection warnings
        self.benchmarks_disabled = False

    def pytest_sessionstart(self, session):
        # pytest-benchmark makes its session in a trylast pytest_configure.
        config = session.config
        session = getattr(config, "_benchmarksession", None)
        if session is None or getattr(session, "skip", False) or getattr(session, "disabled", True):
            return
        session.disabled = True
        self.benchmarks_disabled = True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if config.pluginmanager.hasplugin("syrupy") and _uses(items, "snapshot"):
            # pytest still ends the session after a usage error: syrupy must
            # not be there to prune the snapshots it saw none of.
            config.pluginmanager.unregister(config.pluginmanager.get_plugin("syrupy"))
            raise pytest.UsageError(
                "rpytest cannot run syrupy snapshot tests yet: it would report the workers' snapshots as "
                "unused, and --snapshot-update would delete them. Run them with `python -m pytest` "
                "(or deselect them, e.g. -k 'not snapshot').")
        if self.benchmarks_disabled and getattr(config.option, "benchmark_only", False):
            raise pytest.UsageError(
                "--benchmark-only: rpytest disables benchmarks in its parallel workers, as pytest-xdist does; "
                "run benchmarks with `python -m pytest --benchmark-only`.")
        if self.zygote and self.benchmarks_disabled and _uses(items, "benchmark"):
            from pytest_benchmark.logger import PytestBenchmarkWarning

            warnings.warn(PytestBenchmarkWarning(BENCHMARK_WARNING), stacklevel=1)


def _uses(items, fixture):
    return any(fixture in getattr(item, "fixturenames", ()) for item in items)


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
    if getattr(cov, "_data_suffix_specified", True) is not True:
        sys.stderr.write("rpytest: warning: this pytest-cov names one data file per run, so coverage measured "
                         "in workers is lost; upgrade pytest-cov (>= 6) for complete coverage\n")
        return
    cov.stop()
    cov.save()
