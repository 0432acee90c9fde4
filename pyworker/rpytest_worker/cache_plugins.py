"""pytest's cache-backed plugins, renewed in each run a checkpoint serves.

pytest reads ``.pytest_cache`` once, while configuring: ``lfplugin`` its
last failures, ``nfplugin`` the node ids it has seen, ``stepwiseplugin``
where ``--sw`` stopped. A checkpoint configures once and serves many runs,
and every run writes the cache as it ends. A run forked with the plugins as
the checkpoint built them would write back what the cache held then and
lose what the runs since recorded: a cold ``-k b`` after a failing ``-k a``
keeps ``a`` in ``lastfailed``, such a fork would drop it.

So each run's fork makes them read the cache again, as a cold run's
``pytest_configure`` would, with this run's ``--ff``, ``--nf`` and ``--sw``.
The fork is already inside pytest's ``pytest_collection_modifyitems`` call
(the checkpoint waits there), whose list of implementations was fixed when
the call began: so ``lfplugin`` and ``nfplugin`` are initialised again in
place, not replaced, and ``--sw``'s plugin, which pytest registers only
when asked, is reached through a slot the session reserved where pytest
would have registered it (``StepwiseSlot``). What the checkpoint's
collection told ``lfplugin`` is told to it again: a file that fails to
collect is a failure, and one that failed last time and collects now hands
its failure to its tests (``CollectionLog``).
"""
import os

import pytest

# --lf changes what is collected (it skips files without failures): such a
# run never reaches a checkpoint (``src/daemon/client.rs`` keeps it cold).
LAST_FAILED_PLUGINS = ("lfplugin", "nfplugin")


def renew(session):
    """In the run's fork, after its options are set: fresh cache plugins."""
    config = session.config
    if getattr(config, "cache", None) is None:  # -p no:cacheprovider
        return
    manager = config.pluginmanager
    for name in LAST_FAILED_PLUGINS:
        plugin = manager.get_plugin(name)
        if plugin is not None:
            type(plugin).__init__(plugin, config)
    last_failed = manager.get_plugin("lfplugin")
    if last_failed is not None:
        _collected_again(last_failed, session)
    _renew_stepwise(session)


def _collected_again(last_failed, session):
    """pytest's ``LFPlugin.pytest_collectreport`` for the checkpoint's own
    collection, replayed: only when a recorded failure names a collector
    (a file or class that failed to collect), which a test id never is."""
    log = session.config.pluginmanager.get_plugin("rpytest-collection-log")
    for report in log.failed.values() if log is not None else ():
        if os.path.exists(session.config.rootpath / report.fspath):  # one removed since is not collected
            last_failed.pytest_collectreport(report)
    item_ids = {item.nodeid for item in session.items}
    if all(str(key) in item_ids for key in last_failed.lastfailed):
        return
    for collector, children in _collectors(session).items():
        report = pytest.CollectReport(collector.nodeid, "passed", None, list(children))
        last_failed.pytest_collectreport(report)


def _collectors(session):
    """Each collector above the session's items and its children, parents
    first, as pytest reported them while collecting."""
    children = {}
    for item in session.items:
        chain = item.listchain()
        for parent, child in zip(chain, chain[1:]):
            children.setdefault(parent, {})[child] = None
    return children


class StepwiseSlot:
    """Where pytest would have registered ``--sw``'s plugin, had the session
    been configured with it: its ``pytest_collection_modifyitems`` runs
    there in a run that asks for ``--sw``."""

    @staticmethod
    def pytest_collection_modifyitems(config, items):
        plugin = config.pluginmanager.get_plugin("stepwiseplugin")
        if plugin is not None:
            plugin.pytest_collection_modifyitems(config=config, items=items)


class CollectionLog:
    """The collectors that failed, as the session last collected them (a
    file collected again in place replaces its report)."""

    def __init__(self):
        self.failed = {}  # node id -> its failed CollectReport

    def pytest_collectreport(self, report):
        if report.failed:
            self.failed[report.nodeid] = report
        else:
            self.failed.pop(report.nodeid, None)


def prepare(config):
    """In a warm session, before it collects. pytest registers ``--sw``'s
    plugin while configuring, after the plugins and the first conftests,
    before the conftests found while collecting: so does the slot."""
    config.pluginmanager.register(CollectionLog(), "rpytest-collection-log")
    if config.pluginmanager.get_plugin("stepwise") is not None:
        config.pluginmanager.register(StepwiseSlot(), "rpytest-stepwise-slot")


def _renew_stepwise(session):
    """``--sw``: its plugin, registered now if this run asks for it (its
    ``pytest_collection_modifyitems`` through the slot, its later hooks
    directly); the session was configured without it."""
    config = session.config
    option, manager = config.option, config.pluginmanager
    if getattr(option, "stepwise_skip", False) or getattr(option, "stepwise_reset", False):
        option.stepwise = True  # what stepwise's pytest_configure does
    old = manager.get_plugin("stepwiseplugin")
    if old is not None:
        manager.unregister(old, "stepwiseplugin")
    module = manager.get_plugin("stepwise")
    if getattr(option, "stepwise", False) and module is not None:
        plugin = module.StepwisePlugin(config)
        plugin.session = session  # its pytest_sessionstart ran before the fork
        manager.register(plugin, "stepwiseplugin")
