"""The report sink: pytest's own report consumers, fed the run's reports.

junitxml, the last-failed cache and third-party plugins that consume reports
(pytest-html, json-report, ...) expect to see every report in one pytest
session, as they do in xdist's controller. The zygote forks this sink after
the workers are done; it replays each report through
``pytest_runtest_logreport`` in collection order and ends the session with
``pytest_sessionfinish``, so pytest's own code writes the junit file and the
cache. The zygote never runs these hooks, so it stays reusable.
"""
from .wire_reports import crashed_report, decode_phase

# The hooks the sink fires, and the built-in plugins whose implementations
# of them do nothing the engine has not already done (counting, terminal
# output, closing log handlers, resetting state). A run where only these
# listen needs no sink (DESIGN.md: "skip the sink when nothing needs it").
_SINK_HOOKS = ("pytest_runtest_logreport", "pytest_sessionfinish", "pytest_unconfigure")
_INERT_PLUGINS = frozenset({
    "session", "terminalreporter", "logging-plugin", "runner", "tmpdir", "assertion",
    "warnings", "mark", "junitxml", "doctest", "unraisableexception", "threadexception",
    "faulthandler", "capturemanager", "python", "fixtures", "skipping", "main", "pastebin",
    "python_path",
})


def needed(config):
    """True unless every listener of the sink's hooks is inert: any other
    plugin or conftest (junitxml's writer, the cache, pytest-html, a
    pytest_sessionfinish of the user's) gets its sink."""
    pm = config.pluginmanager
    factory = getattr(config, "_tmp_path_factory", None)
    if getattr(factory, "_retention_policy", "all") != "all":
        return True  # tmpdir's sessionfinish deletes per the policy
    for hook in _SINK_HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if pm.get_name(impl.plugin) not in _INERT_PLUGINS:
                return True
    return False


def replay(session, entries, exitstatus):
    config = session.config
    pm = config.pluginmanager
    terminal = pm.get_plugin("terminalreporter")
    if terminal is not None:
        pm.unregister(terminal)
    items = session.items
    for entry in entries:
        item = items[entry["index"]]
        if entry.get("junit"):
            _restore_junit_extras(config, item, entry["junit"])
        if entry.get("failed_tries"):
            _record_failed_tries(config, item, entry)
        for record in entry.get("phases") or ():
            config.hook.pytest_runtest_logreport(report=decode_phase(record, item, config))
        if entry.get("crash") is not None:
            config.hook.pytest_runtest_logreport(report=crashed_report(item, entry["crash"]))
    session.exitstatus = exitstatus
    config.hook.pytest_sessionfinish(session=session, exitstatus=exitstatus)
    config._ensure_unconfigure()


def _record_failed_tries(config, item, entry):
    """``--retries``: each failed try as the element junit consumers
    (Jenkins, Surefire's schema) read: ``flakyFailure`` when the test then
    passed, ``rerunFailure`` when it failed every try. The test keeps the
    outcome of its last try."""
    import xml.etree.ElementTree as ET

    from _pytest.junitxml import bin_xml_escape, xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    phases = entry.get("phases") or ()
    failed = entry.get("crash") is not None or any(p["outcome"] == "failed" for p in phases)
    tag = "rerunFailure" if failed else "flakyFailure"
    reporter = xml.node_reporter(item.nodeid)
    for attempt in entry["failed_tries"]:
        node = ET.Element(tag, message=bin_xml_escape(attempt["message"]), type="")
        for child, text in (("stackTrace", attempt["text"]), ("system-out", attempt["stdout"]),
                            ("system-err", attempt["stderr"])):
            if text:
                ET.SubElement(node, child).text = bin_xml_escape(text)
        reporter.nodes.append(node)


def _restore_junit_extras(config, item, junit):
    """Gives junitxml what the worker's test recorded outside its reports."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    if junit.get("attrs"):
        # record_testcase_requirements keeps attributes already present.
        xml.node_reporter(item.nodeid).attrs.update(junit["attrs"])
    for name, value in junit.get("properties") or ():
        # A session fixture records once per worker; pytest records once.
        if (name, value) not in xml.global_properties:
            xml.global_properties.append((name, value))
