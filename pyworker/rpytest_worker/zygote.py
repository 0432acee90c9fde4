"""The zygote: the fork server of a run.

Its plugin (``ZygotePlugin``) rides pytest's own session, started by
``bootstrap`` with the user's arguments, so configuration, plugins,
conftests, collection and usage errors are pytest's own. It takes over
``pytest_runtestloop``: it reports the inventory to the engine
(``collection``), then serves the engine's requests (fork a worker, tear
shared fixtures down) and reaps the workers it forked, until the engine
sends the run's reports with ``finish``. Those are replayed into this
session's plugins (``sink``), and the loop returns to pytest, which ends the
session here as it ends any other: ``pytest_sessionfinish`` and
``pytest_unconfigure`` run in the process where the user's
``pytest_configure`` ran (its threads alive), and the exit status they leave
is the run's. The zygote itself runs no test.

When pytest would not run tests at all (collection errors, ``--co``, nothing
collected) the plugin steps aside and pytest finishes the session itself,
printing its own output and choosing its own exit code.
"""
import atexit
import gc
import signal
import sys
import uuid

import pytest

from . import fork_safety, identity, prctl, pristine, protocol, pytest_internals, sink, spawned, spread
from .collection import collect_report_record, collected_message, item_records
from .reports import encode_warning
from .worker import ChildWatch, become_worker
from .xdist_compat import configure_node, workerinput


def end_orphans():
    """Every process still under the zygote when the run ends: what a lost
    worker's tests left behind (the workers themselves are done)."""
    ChildWatch().end_leaks()


def shard_selection(conn, config, items):
    """Ask the engine which items this shard keeps; deselect the rest, as
    pytest-split does, so pytest's header and counts say "N deselected".
    Returns the line to show under pytest's "collected" line."""
    sys.stdout.flush()
    conn.send(protocol.shard_request([item.nodeid for item in items]))
    msg = conn.recv()
    if msg is None or msg["type"] != "shard_plan":
        pristine.exit_now(3)
    keep = set(msg["keep"])
    dropped = [item for i, item in enumerate(items) if i not in keep]
    items[:] = [item for i, item in enumerate(items) if i in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    return msg["line"]


class ZygotePlugin:
    """Collects like pytest, then hands the run to the engine."""

    def __init__(self, conn, shared, graph=None, recorder=None):
        self.conn = conn
        self.shared = shared
        # What collection imported and read (``recollect.ImportGraph``,
        # ``warm.ReadRecorder``): the dependency record (``affected``).
        self.graph = graph
        self.recorder = recorder
        self.deselected = 0
        self.collect_reports = []
        self.warnings = []
        self.children = {}  # pid -> worker number
        self.workerinputs = {}  # worker number -> its config.workerinput
        self.nodes_down = []  # the engine's node_down messages
        self.shard_line = None
        self.replayed = []
        self._items = None  # the collected items as the engine reads them
        self.spread_warnings = []  # encoded by the collectors (spread.py)
        self.collectors = None  # after a spread collection: the idle collectors
        self.layout = None  # ... and where each file's items sit
        self.holders = None  # ... and which collector holds each item
        self.notice = None  # where the collection ran and why (spread.say), for -v
        self._warnings_announced = None  # how many went with ``collected``

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config):
        self.config = config

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector):
        """What a test file's collection imports and reads is that file's."""
        entered = self.graph is not None and self.graph.enter(collector)
        yield
        if entered:
            self.graph.leave()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session):
        if identity.ENV.collect_shares:
            # pytest's own pytest_collection calls it, after every other
            # plugin's (the assertion rewriter's among them).
            session.perform_collect = lambda args=None, genitems=True: self._perform_collect(session, args, genitems)

    def _perform_collect(self, session, args, genitems):
        """Collection spread over the workers when it pays and nothing
        needs the whole list (spread.py), else pytest's own."""
        if args is not None or not genitems:
            return type(session).perform_collect(session, args, genitems)
        return spread.collect(self, session, identity.ENV.collect_shares)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if self.graph is not None:
            self.graph.stop()
            self.recorder.recording = False
        if identity.ENV.sharding:
            self.shard_line = shard_selection(self.conn, config, items)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        if self.notice and getattr(session.config.option, "verbose", 0) > 0:
            sys.stdout.flush()
            sys.stderr.write(f"{self.notice}\n")
            sys.stderr.flush()

    def pytest_report_collectionfinish(self, config, start_path, items):
        return [self.shard_line] if self.shard_line else []

    def pytest_deselected(self, items):
        self.deselected += len(items)

    def pytest_collectreport(self, report):
        if report.failed or report.skipped:
            self.collect_reports.append(collect_report_record(report))

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        # Config-time warnings (e.g. pytest 7.4's deprecated --strict) come
        # before pytest_configure, so they are encoded later, in _announce.
        self.warnings.append((warning_message, when, nodeid))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        config = session.config
        if session.testsfailed and not config.option.continue_on_collection_errors:
            return None
        if config.option.collectonly or not session.items:
            return None
        threads = fork_safety.threads_in_the_way()
        if not threads or identity.ENV.fork_past_threads:
            # With threads alive the engine spawns workers (unless told to
            # fork all the same): nothing to inherit.
            self.shared.setup(session)
        self._announce(session, threads)
        replayed, exitstatus = self._serve(session)
        self.replayed = replayed  # each test's phases (the dependency record reads them)
        return sink.finish_session(session, replayed, exitstatus, self.nodes_down, self.conn.send)

    def _announce(self, session, threads):
        config = session.config
        # `-p no:tmpdir` leaves no factory, hence no basetemp to share.
        factory = pytest_internals.tmp_path_factory(config)
        with pristine.untouched():  # pytest makes it with os.write & co. (create_cleanup_lock)
            self.basetemp = str(factory.getbasetemp()) if factory is not None else ""
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        writer = pytest_internals.terminal_writer_of(terminal) if terminal else None
        config._rpytest_markup = bool(writer and writer.hasmarkup)
        config._rpytest_code_highlight = bool(writer and writer.code_highlight)
        # xdist's --testrunuid fixes the testrun_uid fixture's value, else a new one per run.
        self.testrunuid = getattr(config.option, "testrunuid", None) or uuid.uuid4().hex
        # No gc.freeze() here: frozen objects are never collected and
        # gc.get_referrers cannot see them, so code under test behaved
        # otherwise than under pytest (an asyncio loop outliving its test,
        # Hypothesis warning on register_random, exit codes flipped).
        sys.stdout.flush()
        sys.stderr.flush()
        self._warnings_announced = len(self.warnings)
        self.conn.send(collected_message(
            session, self.item_records(session), self.deselected, self.basetemp, self.testrunuid,
            self.collect_reports, self.warnings, self.shared.set_up, threads, self.spread_warnings, self.holders))

    def late_warnings(self):
        """The warnings recorded after ``collected`` (pytest's cache plugin
        warns at the session's end when it cannot write), encoded for
        ``session_ended``; none when pytest ran the session (and printed
        them) itself."""
        if self._warnings_announced is None:
            return []
        late = self.warnings[self._warnings_announced:]
        return [encode_warning(message, when, nodeid, self.config) for message, when, nodeid in late]

    def item_records(self, session):
        """``collection.item_records``, computed once: a warm zygote computes
        them while it waits for its run."""
        if self._items is None:
            self._items = item_records(session)
        return self._items

    def _serve(self, session):
        """Answer the engine until it says finish, then return the run's
        reports and exit status (``shutdown`` exits here)."""
        wake_r, wake_w = pristine.pipe()
        pristine.set_blocking(wake_w, False)
        pristine.set_wakeup_fd(wake_w)
        pristine.set_signal_handler(signal.SIGCHLD, lambda *_: None)
        replayed = []
        while True:
            ready, _, _ = pristine.select_readable([self.conn.sock, wake_r], [], [])
            if wake_r in ready:
                pristine.read(wake_r, 4096)
                self._reap()
            while self.conn.sock in ready:
                msg = self.conn.recv()  # decoded and checked (protocol.decode)
                if msg is None or msg["type"] == "shutdown":
                    self._exit()
                elif msg["type"] == "replay":
                    replayed.extend(msg["entries"])
                elif msg["type"] == "node_down":
                    self.nodes_down.append({**msg, "workerinput": self.workerinputs.get(msg["worker"])})
                elif msg["type"] == "finish":
                    if self.collectors is not None:
                        self.collectors.dismiss_idle()
                    pristine.set_wakeup_fd(-1)
                    pristine.set_signal_handler(signal.SIGCHLD, signal.SIG_DFL)
                    pristine.close(wake_r)
                    pristine.close(wake_w)
                    return replayed + msg["entries"], msg["exitstatus"]
                else:
                    self._handle(session, msg, (wake_r, wake_w))
                if not self.conn.has_frame():
                    break

    def _handle(self, session, msg, wake_fds):
        kind = msg["type"]
        if kind in ("fork", "configure_node"):
            index = msg["worker"]
            node_input = workerinput(index, msg["count"], self.testrunuid)
            self.workerinputs[index] = configure_node(session.config, index, node_input)
            if kind == "fork" and not self._hand_to_collector(session, index, node_input):
                self._fork(wake_fds, lambda: self._run_worker(session, index, node_input), index)
            else:  # the engine spawns it, with this input
                path = spawned.write_input(identity.ENV.socket, index, node_input, session.items)
                self.conn.send(protocol.node_configured(index, path))
        elif kind == "teardown_shared":
            phases = self.shared.teardown(session, msg["index"])
            self.conn.send(protocol.shared_teardown_done(phases))
        else:
            self.conn.send(protocol.internal_error(f"zygote got unexpected {kind!r}"))

    def _fork(self, wake_fds, child_main, worker):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = pristine.fork()
        if pid == 0:
            gc.unfreeze()  # a warm session's objects: collectable again where tests run
            pristine.set_wakeup_fd(-1)
            pristine.set_signal_handler(signal.SIGCHLD, signal.SIG_DFL)
            for fd in wake_fds:
                pristine.close(fd)
            self.conn.close()
            prctl.die_with_parent()
            fork_safety.run_forked_child(child_main)
        if worker is not None:
            self.children[pid] = worker
            self.conn.send(protocol.worker_forked(worker, pid))
        return pid

    def _hand_to_collector(self, session, index, node_input):
        """After a spread collection, worker ``index`` is collector
        ``index``, which holds its items already; False when there is none."""
        if self.collectors is None:
            return False
        config = session.config
        go = {"worker": index, "node_input": node_input, "basetemp": self.basetemp, "layout": self.layout,
              "markup": config._rpytest_markup, "highlight": config._rpytest_code_highlight}
        pid = self.collectors.hand(index, go)
        if pid is None:
            return False
        self.children[pid] = index
        self.conn.send(protocol.worker_forked(index, pid))
        return True

    def _run_worker(self, session, index, node_input):
        if self.layout is not None:
            # A worker no collector became: it collects what it is given.
            session.items = spread.SpreadItems(session, self.collectors.files, self.layout, {})
        become_worker(session, index, identity.ENV.socket, self.basetemp, node_input, forked=True)

    def _reap(self):
        for pid, code in pristine.exited_children():
            worker = self.children.pop(pid, None)
            if worker is not None:
                self.conn.send(protocol.worker_exited(worker, pid, code))

    def _exit(self):
        # The zygote is the run's main process: its exit handlers run once,
        # as in a plain pytest process. Among them pytest's removal of the
        # basetemp's .lock; without it /tmp/pytest-of-<user>/pytest-N would
        # stay locked (undeletable) for three days after every run.
        atexit._run_exitfuncs()
        end_orphans()
        sys.stdout.flush()
        sys.stderr.flush()
        pristine.exit_now(0)

