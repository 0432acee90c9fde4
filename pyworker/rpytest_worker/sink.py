"""The end of the run: the zygote's own session fed the run's reports.

junitxml, the last-failed cache and third-party plugins that consume reports
(pytest-html, json-report, ...) expect to see every report in one pytest
session, as they do in xdist's controller. When every worker is done, the
zygote replays each report through ``pytest_runtest_logreport`` in
collection order, then returns from ``pytest_runtestloop`` so that pytest
ends the session itself: its ``pytest_sessionfinish`` and
``pytest_unconfigure`` run in the process where ``pytest_configure`` ran,
with the user's threads and plugin state real, and the exit status the
session leaves (a conftest may change it) is the run's. The terminal is the
engine's, so pytest's terminal reporter leaves first. When no plugin besides
the session reads reports, the replay is skipped and only the session's
failure count is brought up to date.
"""
import xml.etree.ElementTree as ET

import pytest

from . import pytest_internals, terminal_summary, xdist_compat
from .reports import crashed_report, decode_phase


def finish_session(session, entries, exitstatus, nodes, send):
    """Replays the reports and the workers' ends (``nodes``: the engine's
    ``node_down`` messages), then hands the session back to pytest ending as
    the engine decided: passed (0), failed (1), or cut short with
    ``exitstatus`` (pytest's Exit, which ``wrap_session`` turns into it).
    ``send`` takes the plugins' terminal summary to the engine."""
    config = session.config
    summary = terminal_summary.take_over(config, send)
    stats = summary.terminal.stats if summary is not None else None
    consumers = report_consumers(config)
    if consumers or stats is not None:
        # Only the plugins' summaries want the reports (in ``stats``): the
        # hook, a tenth of a 60,000-test run's end, would reach nobody else.
        replay(session, entries, stats, call_hook=bool(consumers))
    if not consumers:
        # Nobody but the session counts reports: count for it.
        session.testsfailed += sum(_failures(entry) for entry in entries)
    xdist_compat.nodes_down(config, nodes)
    if exitstatus == 0:
        session.testsfailed = 0
    elif exitstatus == 1:
        session.testsfailed = max(session.testsfailed, 1)
    else:
        raise pytest.exit.Exception("the run ended early", returncode=exitstatus)
    return True


# The logging plugin's hook only labels live-log records ("logreport").
_NOT_CONSUMERS = frozenset({"logging-plugin", "terminalreporter"})


def report_consumers(config):
    """The plugins that would see a replayed report, besides the session's
    own failure count. Rebuilding 10k reports costs tens of milliseconds, so a
    run without junitxml, the cache or a report-reading plugin skips it."""
    return [impl.plugin_name for impl in config.hook.pytest_runtest_logreport.get_hookimpls()
            if not isinstance(impl.plugin, pytest.Session) and impl.plugin_name not in _NOT_CONSUMERS]


def _failures(entry):
    """What ``Session.pytest_runtest_logreport`` would add to ``testsfailed``."""
    failed = sum(1 for record in entry.get("phases") or ()
                 if record["outcome"] == "failed" and "wasxfail" not in record)
    return failed + (entry.get("crash") is not None)


def replay(session, entries, stats=None, call_hook=True):
    """Each report through ``pytest_runtest_logreport`` (unless not
    ``call_hook``); ``stats``: the terminal reporter's, filled as its own
    hook would (for plugins' summaries)."""
    config = session.config
    items = session.items
    for entry in entries:
        item = items[entry["index"]]
        if entry.get("junit"):
            _restore_junit_extras(config, item, entry["junit"])
        if entry.get("failed_tries"):
            _record_failed_tries(config, item, entry)
        if entry.get("leaks"):
            # Before the reports: junitxml closes the testcase at teardown.
            _record_leaks(config, item, entry["leaks"])
        keywords = None  # built once per test, for its compact records
        base = entry.get("item")  # the worker's location and keywords (reports.item_base)
        for record in entry.get("phases") or ():
            if keywords is None and record.get("full") is None:
                keywords = dict.fromkeys(base["keywords"], 1) if base else {name: 1 for name in item.keywords}
            report = decode_phase(record, item, config, keywords, base)
            if stats is not None:
                stats.setdefault(record["category"], []).append(report)
            if call_hook:
                config.hook.pytest_runtest_logreport(report=report)
        if entry.get("crash") is not None:
            report = crashed_report(item, entry["crash"], entry.get("crash_text"))
            if stats is not None:
                stats.setdefault("failed", []).append(report)
            if call_hook:
                config.hook.pytest_runtest_logreport(report=report)


def _record_leaks(config, item, leaks):
    """Processes the test left running: a junit property per process."""
    xml = pytest_internals.junit_xml(config)
    if xml is None:
        return
    reporter = xml.node_reporter(item.nodeid)
    for line in leaks:
        reporter.add_property("rpytest_leak", line)


def _record_failed_tries(config, item, entry):
    """``--retries``: each failed try as the element junit consumers
    (Jenkins, Surefire's schema) read: ``flakyFailure`` when the test then
    passed, ``rerunFailure`` when it failed every try. The test keeps the
    outcome of its last try."""
    xml = pytest_internals.junit_xml(config)
    if xml is None:
        return
    phases = entry.get("phases") or ()
    failed = entry.get("crash") is not None or any(p["outcome"] == "failed" for p in phases)
    tag = "rerunFailure" if failed else "flakyFailure"
    reporter = xml.node_reporter(item.nodeid)
    for attempt in entry["failed_tries"]:
        node = ET.Element(tag, message=pytest_internals.xml_escape(attempt["message"]), type="")
        for child, text in (("stackTrace", attempt["text"]), ("system-out", attempt["stdout"]),
                            ("system-err", attempt["stderr"])):
            if text:
                ET.SubElement(node, child).text = pytest_internals.xml_escape(text)
        reporter.nodes.append(node)


def _restore_junit_extras(config, item, junit):
    """Gives junitxml what the worker's test recorded outside its reports."""
    xml = pytest_internals.junit_xml(config)
    if xml is None:
        return
    if junit.get("attrs"):
        # record_testcase_requirements keeps attributes already present.
        xml.node_reporter(item.nodeid).attrs.update(junit["attrs"])
    for name, value in junit.get("properties") or ():
        # A session fixture records once per worker; pytest records once.
        if (name, value) not in xml.global_properties:
            xml.global_properties.append((name, value))
