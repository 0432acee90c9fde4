"""Turns pytest reports into protocol records, and records back into reports.

A worker sends one record per test phase. Passing phases with nothing
attached travel as a compact record (when, outcome, duration): that is most
phases of most suites, and it keeps a 10k-test run cheap. Anything else also
carries ``full``, pytest's own serialized report, so the zygote can rebuild the
exact report for junitxml and other plugins. The fields the Rust reporter
renders (category, word, longrepr text, ...) are computed here, with the
user's config, so ``--tb``, ``-vv`` and plugin ``pytest_report_teststatus``
hooks apply exactly as under pytest.
"""
from io import StringIO
from pathlib import Path

from pytest import TestReport

from . import pytest_internals
from .protocol import packb


def _encodable(value):
    """Values msgpack can carry as they are; anything else becomes its repr."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            return repr(value)
        return value
    if isinstance(value, (list, tuple)):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _encodable(v) for k, v in value.items()}
    return repr(value)


def _only_builtin_teststatus(config):
    """Whether only pytest's own plugins answer ``pytest_report_teststatus``;
    their answer for a pass depends on the phase and the report's type alone.
    Computed once per process."""
    known = getattr(config, "_rpytest_builtin_teststatus", None)
    if known is None:
        impls = config.hook.pytest_report_teststatus.get_hookimpls()
        known = all(pytest_internals.pytest_owns_module(getattr(impl.plugin, "__name__", "")) for impl in impls)
        config._rpytest_builtin_teststatus = known
        config._rpytest_pass_status = {}
    return known


def _teststatus(report, config):
    if report.passed and _only_builtin_teststatus(config) and not hasattr(report, "wasxfail"):
        # Asked once per phase and report type: spares a hook call per phase.
        key = (report.when, type(report))
        status = config._rpytest_pass_status.get(key)
        if status is None:
            status = config._rpytest_pass_status[key] = _hook_teststatus(report, config)
        return status
    return _hook_teststatus(report, config)


def _hook_teststatus(report, config):
    status = config.hook.pytest_report_teststatus(report=report, config=config)
    if status is None:
        # pytest<8 keeps the default implementation in the terminal plugin, so
        # with -p no:terminal nobody answers; nothing is displayed then anyway.
        outcome = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"
        return outcome, "", ""
    category, letter, word = status
    if isinstance(word, tuple):
        word = word[0]
    return category, letter, word


def _crash_message(report):
    # pytest>=9 shows a plain-string longrepr (a strict XPASS) as the short
    # summary's message; older versions show no message for it.
    if isinstance(report.longrepr, str):
        return report.longrepr if pytest_internals.shows_strict_xpass_message() else None
    try:
        return str(report.longrepr.reprcrash.message)
    except AttributeError:
        return None


def _longrepr_text(report, config):
    """What pytest's terminal prints for this report (not stripped, unlike longreprtext)."""
    out = StringIO()
    writer = pytest_internals.terminal_writer(out)
    writer.hasmarkup = getattr(config, "_rpytest_markup", False)
    writer.code_highlight = getattr(config, "_rpytest_code_highlight", True)  # --code-highlight
    report.toterminal(writer)
    return out.getvalue()


def _crash_line(report):
    """pytest's ``_getcrashline``: the one line ``--tb=line`` shows."""
    try:
        return str(report.longrepr.reprcrash)
    except AttributeError:
        return str(report.longrepr)[:50]


def encode_phase(report, config):
    """One phase's record for the wire."""
    category, letter, word = _teststatus(report, config)
    record = {
        "when": report.when,
        "outcome": report.outcome,
        "category": category,
        "letter": letter,
        "word": word,
        "duration": report.duration,
    }
    wasxfail = getattr(report, "wasxfail", None)
    if (report.passed and not report.sections and not report.user_properties
            and pytest_internals.has_only_test_report_fields(report)):
        return record
    full = config.hook.pytest_report_to_serializable(config=config, report=report)
    # The captured output travels once, in ``sections``: decode_phase puts it back.
    record["full"] = _encodable({key: value for key, value in full.items() if key != "sections"})
    # All of them: --show-capture is applied when rendering (pytest still
    # heads a PASSES entry that has sections it does not show).
    record["sections"] = [[name, content] for name, content in report.sections]
    record["head_line"] = report.head_line
    if wasxfail is not None:
        record["wasxfail"] = str(wasxfail)
    # An xfail's traceback is shown (XFAILURES) with --xfail-tb (pytest>=8).
    xfail_tb = wasxfail is not None and report.skipped and getattr(config.option, "xfail_tb", False)
    if report.failed or (xfail_tb and not isinstance(report.longrepr, tuple)):
        record["longrepr"] = _longrepr_text(report, config)
        record["crash"] = _crash_message(report)
        record["crash_line"] = _crash_line(report)
    elif report.skipped and isinstance(report.longrepr, tuple):
        record["skip"] = skip_key(report, config)
    return record


def skip_key(report, config):
    """(path, line, reason) as pytest's short summary folds skips (``_folded_skips``)."""
    path, lineno, reason = report.longrepr
    path = pytest_internals.relative_path(config.invocation_params.dir, Path(path))
    keywords = getattr(report, "keywords", {})
    if report.when == "setup" and "skip" in keywords and "pytestmark" not in keywords:
        lineno = None
    return [path, lineno, str(reason)]


def encode_warning(warning_message, when, nodeid, config):
    """A warning as the terminal's warnings summary shows it."""
    message = pytest_internals.warning_text(warning_message)
    fslocation = (warning_message.filename, warning_message.lineno)
    location = pytest_internals.warning_location(message, nodeid, fslocation, config)
    return {"message": message, "location": location, "when": when}


def _restore_tuples(report):
    """msgpack turns tuples into lists; pytest's plugins index them as tuples."""
    if isinstance(report.location, list):
        report.location = tuple(report.location)
    if isinstance(report.longrepr, list):
        report.longrepr = tuple(report.longrepr)
    report.user_properties = [tuple(p) if isinstance(p, list) else p for p in report.user_properties]
    report.sections = [tuple(s) if isinstance(s, list) else s for s in report.sections]
    return report


def item_base(report):
    """What every report of a test takes from its item, for ``test_done``:
    the zygote's replay rebuilds compact records with it instead of
    computing the item's location (its source lines) and keywords (every
    parent's marks) again, which cost a 60,000-test run seconds at its end."""
    return {"location": list(report.location), "keywords": list(report.keywords)}


def decode_phase(record, item, config, keywords=None, base=None):
    """Rebuild the TestReport a phase record stands for (``keywords``: the
    item's, when the caller has them already; ``base``: the worker's
    ``item_base``, or None)."""
    full = record.get("full")
    if full is not None:
        full = dict(full, sections=record.get("sections") or [])
        report = config.hook.pytest_report_from_serializable(config=config, data=full)
        return _restore_tuples(report)
    if keywords is None:
        keywords = dict.fromkeys(base["keywords"], 1) if base is not None else {name: 1 for name in item.keywords}
    report = TestReport(
        nodeid=item.nodeid,
        location=tuple(base["location"]) if base is not None else item.location,
        keywords=dict(keywords),
        outcome=record["outcome"],
        longrepr=None,
        when=record["when"],
    )
    report.duration = record["duration"]
    return report


class CrashText(str):
    """A crashed test's failure text (the cause, then the worker's fault
    log) that junitxml and other readers of ``longrepr.reprcrash`` see with
    the one-line cause as its message."""

    def __new__(cls, text, message, item):
        self = super().__new__(cls, text)
        path, lineno, _ = item.location
        self.reprcrash = pytest_internals.crash_location(path, (lineno or 0) + 1, message)
        return self


def crashed_report(item, message, text=None):
    """The failing report of a test whose worker died under it."""
    report = TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={name: 1 for name in item.keywords},
        outcome="failed",
        longrepr=CrashText(text or message, message, item),
        when="call",
    )
    return report


def fit_to_frame(done, limit):
    """A ``test_done`` message packed to at most ``limit`` bytes. A test that
    printed hundreds of megabytes keeps its outcome: its captured output and
    failure text are cut in the middle, with a note saying so."""
    data = packb(done)
    if len(data) <= limit:
        return data
    texts = sum(len(p.get("sections") or ()) + ("longrepr" in p) for p in done["phases"])
    keep = limit // (4 * max(1, texts))
    for phase in done["phases"]:
        phase["sections"] = [[name, _cut(text, keep, len(data))] for name, text in phase.get("sections") or ()]
        if "longrepr" in phase:
            phase["longrepr"] = _cut(phase["longrepr"], keep, len(data))
        if phase.get("full") is not None:
            phase["full"] = dict(phase["full"], longrepr=phase.get("longrepr"))
    return packb(done)


def _cut(text, keep, size):
    if not isinstance(text, str) or len(text) <= keep:
        return text
    note = (f"\n[rpytest: {len(text) - keep} characters cut here: this test's report was {size} bytes, "
            "more than one protocol frame holds]\n")
    return text[: keep // 2] + note + text[-(keep // 2):]
