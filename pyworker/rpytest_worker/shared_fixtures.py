"""Shared session fixtures: set up once in the zygote, inherited by every worker.

By default a session fixture is set up once per worker, as under
pytest-xdist. A fixture named in ``shared_session_fixtures`` (engine
setting, passed as ``RPYTEST_SHARED_FIXTURES``, read by ``identity``) is instead set up here, in
the zygote, after collection and before any worker is forked: every worker,
a replacement after a crash too, inherits pytest's cached value (or cached
error) and none sets it up again.

Its finalizers are taken off the session's setup stack, and its
``FixtureDef.finish`` does nothing outside the zygote's final teardown
(pytest 7.4 schedules a fresh ``finish`` for each test that requests it),
so no worker tears it down; the zygote does,
once, when the engine says every worker has finished, and a failure is reported as pytest reports
a session fixture's teardown error: an error at the teardown of the last
test.
"""
import builtins
import functools

import pytest

from . import pytest_internals
from .reports import encode_phase


class SharedFixtures:
    """The shared fixtures of one run: their setup and their one teardown."""

    def __init__(self, names):
        self.names = names
        self.set_up = []
        self.finalizers = []

    def setup(self, session):
        """Sets up each named fixture that a selected test uses; a name no
        selected test uses is not set up at all."""
        plan, definitions = setup_plan(session, self.names)
        if not plan:
            return

        def set_up():
            with _captured(session.config):
                for item, name in plan:
                    _setup_one(item, name)
                    self.set_up.append(name)

        self.finalizers = pytest_internals.finalizers_added_by(session, set_up)
        for fixturedef in definitions:
            fixturedef.finish = _FinishInZygoteOnly(fixturedef.finish)

    def teardown(self, session, index):
        """Runs the finalizers once. Returns the phase records to report as
        the teardown of test ``index`` (pytest's last test) when one failed."""
        finalizers, self.finalizers = self.finalizers, []
        if not finalizers:
            return []
        _FinishInZygoteOnly.armed = True
        with _captured(session.config):
            call = pytest.CallInfo.from_call(functools.partial(_run_finalizers, finalizers), when="teardown")
        if call.excinfo is None:
            return []
        if index is None:
            # No test ran (the run was stopped first): nowhere to attach it.
            print(f"rpytest: teardown of shared session fixtures failed:\n{call.excinfo.getrepr()}")
            return []
        item = session.items[index]
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        return [encode_phase(report, session.config)]


def setup_plan(session, names):
    """[(item, name)]: for each fixture definition a named fixture resolves
    to in the selected tests, one test to set it up through; and every
    definition that setting them up sets up. Raises a usage error for a
    fixture that cannot be shared."""
    plan = {}
    definitions = set()
    for item in session.items:
        info = pytest_internals.fixture_info(item)
        if info is None or not isinstance(item, pytest.Function):
            continue
        for name in names:
            if name in info.names_closure:
                fixturedef = info.name2fixturedefs[name][-1]
                if fixturedef not in plan:
                    _check_shareable(name, fixturedef, info, [name], definitions)
                    plan[fixturedef] = (item, name)
    return list(plan.values()), definitions


def _check_shareable(name, fixturedef, info, path, definitions):
    """Session scope all the way down, and one value (no params); collects
    the definitions met on the way."""
    definitions.add(fixturedef)
    via = "" if len(path) == 1 else f" (needed by {' -> '.join(path[:-1])})"
    where = f"shared_session_fixtures: '{path[0]}' cannot be shared: fixture '{name}'{via}"
    if fixturedef.scope != "session":
        raise pytest.UsageError(
            f"{where} is {fixturedef.scope}-scoped; a shared fixture and every fixture it "
            "uses must be session-scoped")
    if fixturedef.params is not None:
        raise pytest.UsageError(f"{where} is parametrized; only a fixture with one value can be shared")
    for argname in fixturedef.argnames:
        defs = info.name2fixturedefs.get(argname)
        if argname != "request" and defs:
            _check_shareable(argname, defs[-1], info, [*path, argname], definitions)


def _setup_one(item, name):
    """pytest's own fixture machinery, as the first test using it would run
    it: the value, or the error, stays cached on the fixture definition."""
    __tracebackhide__ = True
    try:
        pytest_internals.set_up_fixture(item, name)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001, S110
        # Cached by pytest: every test that uses the fixture reports it.
        pass


class _FinishInZygoteOnly:
    """Stands in for a shared fixture definition's ``finish``: a forked
    worker inherits it disarmed, so its calls leave the inherited
    value cached and the teardown code unrun."""

    armed = False

    def __init__(self, finish):
        self.finish = finish

    def __call__(self, request):
        __tracebackhide__ = True
        if _FinishInZygoteOnly.armed:
            self.finish(request)


def _run_finalizers(finalizers):
    """Last in, first out, every one run, as pytest's SetupState does."""
    __tracebackhide__ = True
    errors = []
    while finalizers:
        finalizer = finalizers.pop()
        try:
            finalizer()
        except Exception as e:  # noqa: BLE001 - reported below, as pytest does
            errors.append(e)
    group = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+
    if len(errors) > 1 and group is not None:
        raise group("errors while tearing down shared session fixtures", errors[::-1])
    if errors:
        raise errors[0]


class _captured:
    """Output of setup and teardown is captured as in a test's own phases
    (and dropped: pytest shows it only with a failing test's report)."""

    def __init__(self, config):
        self.capman = config.pluginmanager.get_plugin("capturemanager")

    def __enter__(self):
        if self.capman is not None:
            self.capman.resume_global_capture()

    def __exit__(self, *exc):
        if self.capman is not None:
            self.capman.suspend_global_capture()
            self.capman.read_global_capture()
        return False
