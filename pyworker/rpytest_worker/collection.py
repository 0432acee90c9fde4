"""What the engine learns from a collection: the ``collected`` message.

The engine schedules, renders and reports from this one message, so it
carries each item's ids and dispatch marks, and the settings of the user's
pytest that decide what the terminal shows (-r, -v, --tb, --durations, the
junit path, the running pytest's version, ...). They are read here from
pytest's config as pytest's own plugins resolve them, so the Rust reporter
follows the same rules. ``inventory_hash`` names a collection: a spawned
worker proves by it that it collected what the zygote did.
"""
import hashlib
import os

from . import protocol, pytest_internals
from .reports import encode_warning
from .xdist_compat import XdistWorkerCount


def inventory_hash(items):
    """A node id may hold a lone surrogate (an id kept unescaped, a file
    name that is not UTF-8): hashed as it is (``surrogatepass``)."""
    known = getattr(items, "inventory", None)  # spread.SpreadItems: collected in part, hashed by the zygote
    if known is not None:
        return known
    return hashlib.sha1("\n".join(item.nodeid for item in items).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def collect_report_record(report):
    """A collector that failed or skipped, as the engine lists it."""
    record = {"id": report.nodeid, "outcome": report.outcome, "longrepr": report.longreprtext}
    if report.skipped and isinstance(report.longrepr, tuple):
        path, lineno, reason = report.longrepr
        record["skip"] = [str(path), lineno, str(reason)]
    return record


def item_records(session):
    """What the engine reads of each collected item: its id, the id as
    shown, its xdist_group and its timeout mark."""
    return [item_record(session.config, item) for item in session.items]


def item_record(config, item):
    return {"id": item.nodeid, "shown": shown_nodeid(config, item.nodeid), "group": xdist_group(item),
            "timeout": timeout_mark(item)}


def collected_message(session, items, deselected, basetemp, testrunuid, collect_reports, warnings, shared_fixtures,
                      threads, spread_warnings=(), holders=None):
    """The ``collected`` message: ``items`` from ``item_records``;
    ``warnings``: (warning_message, when, nodeid) as pytest recorded them
    (encoded here: config-time ones came before the terminal existed);
    ``shared_fixtures``: the shared session fixtures set up before the fork
    (torn down once at the end); ``threads``: names of the threads alive
    besides the main one (the engine then spawns workers, not forks);
    ``spread_warnings``: warnings the collectors recorded, encoded there;
    ``holders``: after a spread collection, the collector (the worker to
    be) holding each item (``spread.py``), else None."""
    config = session.config
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    return protocol.collected(
        items=items,
        deselected=deselected,
        unaffected=getattr(config, "_rpytest_unaffected", 0),
        inventory=inventory_hash(session.items),
        basetemp=basetemp,
        testrunuid=testrunuid,
        collect_reports=collect_reports,
        warnings=[encode_warning(*warning, config) for warning in warnings] + list(spread_warnings),
        rootdir=str(config.rootpath),
        # With -p no:terminal pytest prints nothing, and the terminal's
        # options (-r, -v, --tb, ...) are not even defined.
        terminal=terminal is not None,
        reportchars=pytest_internals.report_chars(config) if terminal is not None else "",
        junitxml=junit_path(config),
        verbosity=getattr(config.option, "verbose", 0),
        tbstyle=getattr(config.option, "tbstyle", "auto"),
        summary_untrimmed=summary_untrimmed(config),
        no_summary=bool(getattr(config.option, "no_summary", False)),
        # --no-fold-skipped and --xfail-tb exist from pytest 8 on.
        fold_skipped=bool(getattr(config.option, "fold_skipped", True)),
        xfail_tb=bool(getattr(config.option, "xfail_tb", False)),
        # pytest-instafail's --instafail: each failure's text as it happens.
        instafail=terminal is not None and bool(getattr(config.option, "instafail", False)),
        max_warnings=pytest_internals.max_warnings(terminal),
        show_capture=getattr(config.option, "showcapture", "all"),
        # -s: tests write to the terminal themselves, between the progress.
        capture=getattr(config.option, "capture", "fd"),
        collect_failed=session.testsfailed,
        maxfail=config.option.maxfail or 0,
        # xdist's -n and --dist from pytest's own configuration (addopts), or None.
        numprocesses=XdistWorkerCount.found(config),
        dist=XdistWorkerCount.dist(config),
        shared_fixtures=shared_fixtures,
        threads=threads,
        holders=holders,
        pytest_version=pytest_internals.version(),
        **durations_settings(config),
        **timeout_plugin_settings(config),
    )


def shown_nodeid(config, nodeid):
    """A node id as pytest's terminal shows it: relative to the invocation dir."""
    if config.invocation_params.dir == config.rootpath:
        return nodeid
    path, *rest = nodeid.split("::")
    return "::".join([pytest_internals.relative_path(config.invocation_params.dir, config.rootpath / path), *rest])


def xdist_group(item):
    """The item's ``xdist_group`` name as xdist computes it (several marks:
    sorted, joined by "_"), or None."""
    names = set()
    for mark in item.iter_markers("xdist_group"):
        names.add(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")))
    return "_".join(sorted(names)) or None


def timeout_mark(item):
    """Seconds from the item's ``@pytest.mark.timeout(N)`` (pytest-timeout's
    signature: ``timeout(timeout=0, method=..., func_only=...)``), or None."""
    mark = item.get_closest_marker("timeout")
    if mark is None:
        return None
    value = mark.args[0] if mark.args else mark.kwargs.get("timeout")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def timeout_plugin_settings(config):
    """pytest-timeout's own global limit as it resolved it (its --timeout,
    else PYTEST_TIMEOUT, else ini ``timeout``) and whether it is active."""
    if not config.pluginmanager.hasplugin("timeout"):
        return {"timeout_plugin": None, "timeout_plugin_active": False}
    value = pytest_internals.timeout_plugin_env_timeout(config)
    if value is None:
        value = config.getoption("timeout", None) or os.environ.get("PYTEST_TIMEOUT") or config.getini("timeout")
    try:
        value = float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        value = None
    return {"timeout_plugin": value or None, "timeout_plugin_active": True}


def running_on_ci():
    return any(os.environ.get(name) for name in ("CI", "BUILD_NUMBER"))


def summary_untrimmed(config):
    """Whether the short summary shows whole crash messages, as this pytest decides."""
    if pytest_internals.untrims_summary_only_on_ci():
        return running_on_ci()
    forced_short = getattr(config.option, "force_short_summary", False)
    return (running_on_ci() or getattr(config.option, "verbose", 0) >= 2) and not forced_short


def junit_path(config):
    path = getattr(config.option, "xmlpath", None)
    return os.path.normpath(os.path.abspath(path)) if path else None


def durations_settings(config):
    """--durations as pytest's runner plugin resolves it for its summary."""
    durations_min = config.option.durations_min
    if hasattr(config, "get_verbosity"):
        # pytest 8+: no --durations-min means 0.005, or 0 at -vv, with a hint.
        hint = durations_min is None
        if hint:
            durations_min = 0.005 if config.get_verbosity() < 2 else 0.0
    else:
        # pytest 7.4: the option defaults to 0.005, -vv shows all, the hint
        # is always there ("verbose" is absent under -p no:terminal).
        hint = True
        if config.getoption("verbose", 0) >= 2:
            durations_min = 0.0
    return {"durations": config.option.durations, "durations_min": durations_min, "durations_hint": hint}
