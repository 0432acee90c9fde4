"""A worker: runs the tests the engine sends through pytest's own protocol.

A worker is forked from the zygote after collection (or spawned and
collecting for itself). Before its first test it makes the inherited session
its own: xdist's worker identity, no terminal output, fresh capture files, a
basetemp of its own, clean failure counters. Then it pulls batches of test
indices, always holding the next test when one exists, because pytest
decides fixture teardown from ``nextitem``.

So that the engine can supervise it from outside, a worker writes
faulthandler's dumps (fatal signals, and the engine's SIGUSR1 before a
timeout kill) to a fault log the engine attaches to the failing test, and is
a child subreaper: processes its tests leave behind, detached ones too,
stay its children, so it can report them (``leaked``) and end them, and the
engine finds a worker's whole tree under it (a timeout kill reaches all of
it). It does not lead a process group of its own: a test may call
``os.setsid()``, which a group leader cannot (EPERM), as under pytest-xdist.

Everything it calls from the standard library between tests comes from
``pristine``, bound before any user code ran: a test that patches
``socket``, ``select`` or ``os`` and leaves the patch in place breaks
itself, not the worker.
"""
import faulthandler
import os
import signal
import sys
import threading
from collections import deque
from pathlib import Path

import pytest

from . import deps_record, identity, prctl, pristine, protocol, pytest_internals
from .collection import inventory_hash
from .plugin_compat import save_coverage
from .protocol import MAX_FRAME, Connection, hello
from .reports import encode_phase, encode_warning, fit_to_frame, item_base
from .terminal_summary import hide_terminal
from .xdist_compat import become_xdist_worker, finish_worker_session

# Ask for more work while this many tests are still queued, so the answer
# arrives before the queue runs dry.
PREFETCH_AT = 2
# A test's report stays well under a frame: the engine sends it back to the
# zygote at the end with a little more around it.
MAX_REPORT = MAX_FRAME // 2


def silence_reporters(config):
    """The engine renders the terminal and the zygote writes junit: not us."""
    pm = config.pluginmanager
    hide_terminal(config)
    for plugin in list(pm.get_plugins()):
        if type(plugin).__name__ == "LogXML":
            pm.unregister(plugin)


def _forget_collection_junit(config):
    """junitxml's records of collectors (a skipped module, a collection
    error) belong to the session that collected: the zygote writes them.
    Left here, they would leak into this worker's first test's extras."""
    xml = pytest_internals.junit_xml(config)
    if xml is not None:
        xml.node_reporters.clear()
        xml.node_reporters_ordered.clear()
        xml.global_properties = []


def _reopen_capture(config):
    """Capture temp files are shared with the zygote after fork: make new ones."""
    if pytest_internals.global_capturing(config) is not None:
        capman = config.pluginmanager.get_plugin("capturemanager")
        capman.stop_global_capturing()
        capman.start_global_capturing()
        capman.suspend_global_capture()


def _own_basetemp(config, basetemp, index):
    factory = pytest_internals.tmp_path_factory(config)
    if factory is None or not basetemp:
        return  # -p no:tmpdir
    path = Path(basetemp) / f"popen-gw{index}"
    path.mkdir(parents=True, exist_ok=True)
    pytest_internals.set_basetemp(factory, path.resolve())


def _be_supervisable(socket_path, index):
    """What the engine needs to supervise this worker from outside."""
    prctl.become_subreaper()  # without prctl, leaks are still found among direct children
    path = os.path.join(os.path.dirname(socket_path), f"gw{index}-{pristine.getpid()}.stderr")
    log = pristine.open_file(path, "w")  # faulthandler writes to it until the process ends
    faulthandler.enable(file=log, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=log, all_threads=True, chain=False)
    return log


def become_worker(session, index, socket_path, basetemp, workerinput, forked):
    """``workerinput``: see ``xdist_compat.workerinput`` (the zygote's
    ``pytest_configure_node`` hooks may have added to it)."""
    config = session.config
    config._rpytest_fault_log = _be_supervisable(socket_path, index)
    become_xdist_worker(config, workerinput)
    if forked:
        silence_reporters(config)
    # pytest's own code, run by pytest before any test module is imported.
    with pristine.untouched():
        if forked:
            _reopen_capture(config)
        _own_basetemp(config, basetemp, index)
    _forget_collection_junit(config)
    # The engine forwards Ctrl-C as SIGINT, even where rpytest was started
    # with SIGINT ignored (a background job of a non-interactive shell).
    pristine.set_signal_handler(signal.SIGINT, signal.default_int_handler)
    session.testsfailed = 0
    session.shouldfail = False
    if identity.ENV.retrying == "1":
        # --retries: a failed try may yet pass, so -x/--maxfail count last
        # tries only, and only the engine can tell which try is the last.
        config.option.maxfail = 0
    session.shouldstop = False
    if config.getoption("capture", "fd") == "no":
        # -s: output must reach the terminal as it is printed, even when
        # our stdout is a pipe (CI logs), not when a buffer fills.
        sys.stdout.reconfigure(line_buffering=True)
    conn = Connection(socket_path)
    # A process a test forks (multiprocessing's fork start method) must not
    # hold the engine's socket: the engine would not see this worker end.
    pristine.register_at_fork(after_in_child=conn.sock.close)
    conn.send(hello("worker", worker=index, inventory=inventory_hash(session.items)))
    WorkerLoop(session, conn).run()


class WorkerLoop:
    """Pulls test indices from the engine and runs them in order."""

    def __init__(self, session, conn):
        self.session = session
        self.items = session.items
        self.conn = conn
        self.queue = deque()
        self.no_more = False
        self.asked = False
        self.phases = []
        self.sections_sent = []  # the full sections of the last phase recorded
        self.warnings = []
        self.item_base = None  # of the test running (reports.item_base)
        self.children = ChildWatch()
        self.deps = deps_record.worker_recorder()  # what each test module imports and reads (--affected)
        session.config.pluginmanager.register(self, "rpytest-worker-loop")

    # pytest hooks: collect what the running test reports.
    def pytest_runtest_logreport(self, report):
        self.item_base = item_base(report)  # the last report's: keywords a test added count
        record = encode_phase(report, self.session.config)
        sections = record.get("sections")
        if sections:
            # pytest repeats earlier phases' captured output: send it once.
            earlier = self.sections_sent
            self.sections_sent = sections
            if len(earlier) <= len(sections) and all(a is b or a == b for a, b in zip(earlier, sections)):
                record["sections"] = sections[len(earlier):]
                record["sections_from_previous"] = len(earlier)
        else:
            self.sections_sent = []
        self.phases.append(record)

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        self.warnings.append(encode_warning(warning_message, when, nodeid, self.session.config))

    def run(self):
        try:
            self._ask()
        except KeyboardInterrupt:
            return self._finish()
        while True:
            try:
                self._receive()
            except KeyboardInterrupt:
                # Ctrl-C between tests: nothing was running; end as stopped.
                self.queue.clear()
            if not self.queue:
                break
            if len(self.queue) <= PREFETCH_AT:
                self._ask()
            index = self.queue.popleft()
            nextitem = self.items[self.queue[0]] if self.queue else None
            going_on = self._run_one(index, nextitem)
            self.children.after_test(index)
            if not going_on:
                break
        self._finish()

    def _ask(self):
        if not self.asked and not self.no_more:
            self.conn.send(protocol.ready())
            self.asked = True

    def _must_wait(self):
        # One queued test is not enough: its nextitem is still unknown.
        return not self.no_more and len(self.queue) < 2

    def _receive(self):
        while self._must_wait() or self.conn.poll():
            self._ask()
            msg = self.conn.recv()  # decoded and checked (protocol.decode)
            if msg is None or msg["type"] == "shutdown":
                self._abandon()
            elif msg["type"] == "run":
                self.queue.extend(msg["indices"])
                self.asked = False
            elif msg["type"] == "no_more":
                self.no_more = True
                self.asked = False
            elif msg["type"] == "stop":
                # Another worker hit -x/--maxfail or an interrupt: start nothing more.
                self.queue.clear()
                self.no_more = True

    def _run_one(self, index, nextitem):
        """Runs one test; False when the session must stop after it."""
        item = self.items[index]
        self.phases = []
        self.sections_sent = []
        self.warnings = []
        self.item_base = None
        # Due at once after test_done (or the engine's answer): the engine
        # times its silence until then, never a test (``supervise::silence``).
        self.conn.send(protocol.started(index))
        if self.deps is not None:
            self.deps.enter(item)
        try:
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except (KeyboardInterrupt, pytest.exit.Exception):
            # pytest lets these escape the runtest protocol to end the session.
            self.conn.send(interruption(index, self.phases, self.warnings, item.config))
            return False
        done = protocol.test_done(index, self.phases, self.warnings, pristine.getrusage(pristine.RUSAGE_SELF).ru_maxrss,
                                  self.item_base, junit_extras(item.config))
        self.conn.send_packed(fit_to_frame(done, MAX_REPORT))
        # -x/--maxfail counted here (shouldfail), or a plugin such as
        # stepwise asked to stop (shouldstop: pytest calls that "Interrupted").
        if self.session.shouldfail:
            self.conn.send(protocol.stop_requested(self.session.shouldfail, interrupted=False))
            return False
        if self.session.shouldstop:
            self.conn.send(protocol.stop_requested(self.session.shouldstop, interrupted=True))
            return False
        return True

    def _finish(self):
        """Tears down what the last test left set up (a stop skips the
        nextitem=None teardown), then tells the engine."""
        self._teardown_all()
        if self.deps is not None:
            self.deps.flush()
        workeroutput = finish_worker_session(self.session)
        save_coverage(self.session.config)
        leaks = self.children.end_leaks()
        if leaks:
            self.conn.send(protocol.leaked(leaks))
        self.conn.send(protocol.finished(workeroutput))
        sys.stdout.flush()
        sys.stderr.flush()

    def _teardown_all(self):
        try:
            pytest_internals.teardown_everything(self.session)
        except Exception as e:  # noqa: BLE001  pytest, too, reports nothing for these at session end
            sys.stderr.write(f"rpytest: teardown at the end failed: {e!r}\n")

    def _abandon(self):
        """The engine is gone or wants us gone: tear down what is set up, leave."""
        try:
            self._teardown_all()
            self.children.end_leaks()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            pristine.exit_now(0)


# Python's own helper processes, which end when their parent does.
_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _has_children():
    """Checked after every test, so one syscall: waitid fails with ECHILD
    when this process has no child at all, and WNOWAIT reaps none."""
    try:
        pristine.waitid(pristine.P_ALL, 0, pristine.WEXITED | pristine.WNOHANG | pristine.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def live_children():
    """{pid: command line} of this process's live children (zombies left out)."""
    if not _has_children():
        return {}
    pids = set()
    # With one thread, one small read (the main thread's task id is the
    # pid) instead of listing every task.
    tids = [pristine.getpid()] if threading.active_count() == 1 else pristine.listdir("/proc/self/task")
    try:
        for tid in tids:
            with pristine.open_file(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        return {}
    children = {}
    for pid in pids:
        try:
            with pristine.open_file(f"/proc/{pid}/stat") as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2] in "ZX":
                continue
            with pristine.open_file(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        if not any(helper in cmdline for helper in _HELPERS):
            children[pid] = cmdline
    return children


class ChildWatch:
    """Which test each child process appeared under. A child still alive
    once every fixture is torn down is a leak of that test. The worker is a
    subreaper, so a test's detached (setsid, double-forked) processes are
    its children too."""

    def __init__(self):
        self.origin = {}  # pid -> (test index, command line)

    def after_test(self, index):
        alive = live_children()
        self.origin = {pid: self.origin.get(pid, (index, cmdline)) for pid, cmdline in alive.items()}

    def end_leaks(self):
        """Kills what is left; returns the leaks, each with its test."""
        leaks = []
        for _ in range(10):  # a killed child's own children become ours
            children = live_children()
            if not children:
                break
            for pid, cmdline in children.items():
                index, _ = self.origin.get(pid, (None, cmdline))
                if index is not None:
                    shown = " ".join(cmdline.split())
                    leaks.append({"index": index, "pid": pid, "cmdline": shown[:160]})
                _kill_and_reap(pid)
        return leaks


def _kill_and_reap(pid):
    try:
        pristine.kill(pid, signal.SIGKILL)
        pristine.waitpid(pid, 0)
    except OSError:
        pass


def junit_extras(config):
    """What the test gave junitxml outside its reports: attributes from
    ``record_xml_attribute`` and properties from ``record_testsuite_property``.
    They land in this worker's (silent) LogXML; the zygote, which writes the
    file, gets them from here. pytest-xdist drops both."""
    xml = pytest_internals.junit_xml(config)
    if xml is None:
        return None
    attrs = {}
    for reporter in xml.node_reporters.values():
        attrs.update(reporter.attrs)
    xml.node_reporters.clear()
    xml.node_reporters_ordered.clear()
    properties, xml.global_properties = xml.global_properties, []
    if not attrs and not properties:
        return None
    return {"attrs": attrs, "properties": [list(p) for p in properties]}


def interruption(index, phases, warnings, config):
    """The message for a test that raised KeyboardInterrupt or pytest.exit():
    what pytest's terminal would print about it, and the exit code."""
    excinfo = pytest.ExceptionInfo.from_current()
    excrepr = excinfo.getrepr(funcargs=True)
    message = excrepr.reprcrash.message
    detail = []
    if "KeyboardInterrupt" in message:
        if config.option.fulltrace:
            detail = str(excrepr).splitlines()
        else:
            crash = excrepr.reprcrash
            detail = [f"{crash.path}:{crash.lineno}: {crash.message}",
                      "(to show a full traceback on KeyboardInterrupt use --full-trace)"]
    is_exit = isinstance(excinfo.value, pytest.exit.Exception)
    returncode = getattr(excinfo.value, "returncode", None) if is_exit else None
    return protocol.interrupted(index, phases, warnings, message, detail, returncode)
