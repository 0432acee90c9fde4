"""A checkpoint: a collected session that serves many runs, each in a fork.

A warm zygote (``warm.py``) configures pytest and collects, then stops where
pytest would call ``pytest_collection_modifyitems``: everything before is
the same for every run of its key, everything after depends on the run's
selection (``selection.py``). There it becomes a ``Checkpoint`` and waits
for ``rpytest serve``:

- ``serve {args}``: can this session give a run of ``args`` what a cold run
  would? The answer (``verdict``) changes nothing here.
- ``handover {socket, args}`` with the client's stdout and stderr: fork.
  The child is the run's zygote: it adopts the client's streams, applies
  the selection and returns into pytest, which runs every plugin's
  ``pytest_collection_modifyitems`` and the rest of the session as usual.
  The checkpoint says ``taken {pid}`` and waits for the next run.
- ``refresh {files, listing_changed}``: files the session depended on
  changed. The checkpoint re-collects what they affect in place
  (``recollect.py``) and answers ``refreshed`` with its new dependencies,
  or ``stale`` with the reason the daemon must build a new session.
- ``retire``: serve no more; exit once the runs still going have ended.

The checkpoint reaps its runs and reports each exit (``ended``): the daemon
keeps them for the clients, which watch their run through a pidfd. Nothing
a run does reaches the checkpoint, so no run can leave state for the next.
"""
import signal
import sys
import threading

from . import prctl, pristine, protocol
from .selection import Unservable, plan


def _other_threads():
    """Names of the threads alive besides this one (a conftest's server, a
    plugin's helper started while configuring)."""
    return [thread.name for thread in threading.enumerate() if thread is not threading.current_thread()]


class Handover:
    """What the run's fork needs: the engine's socket, the client's
    streams and the run's selection."""

    def __init__(self, socket, fds, run_plan):
        self.socket = socket
        self.fds = fds
        self.plan = run_plan


class Checkpoint:
    """Owns the daemon link and the runs forked from this session."""

    def __init__(self, daemon, built_args, refresh, idle_work=None):
        self.daemon = daemon
        # Done a slice at a time while nothing is asked and no run goes on
        # (it never competes with one): returns True when there is no more.
        self.idle_work = idle_work
        self.built_args = list(built_args)
        self.refresh = refresh  # a ``refresh`` message -> the answer
        self.stale = None  # why this session may serve no more (a refresh failed)
        self.runs = set()  # pids of the runs going on
        self.retiring = False

    def serve(self, session):
        """Answers the daemon until a run is handed over; returns, in that
        run's fork only, what it needs. The checkpoint itself never returns."""
        wake_r, wake_w = pristine.pipe()
        pristine.set_blocking(wake_w, False)
        pristine.set_wakeup_fd(wake_w)
        pristine.set_signal_handler(signal.SIGCHLD, lambda *_: None)
        while True:
            watched = [wake_r] if self.daemon is None else [self.daemon.sock, wake_r]
            idle = self.idle_work is not None and not self.runs
            ready, _, _ = pristine.select_readable(watched, [], [], *((0.02,) if idle else ()))
            if not ready and idle and self.idle_work():
                self.idle_work = None
            if wake_r in ready:
                pristine.read(wake_r, 4096)
                self._reap()
            while self.daemon is not None and self.daemon.sock in ready:
                msg, fds = self.daemon.recv_with_fds()  # decoded and checked (protocol.FROM_DAEMON)
                if msg is None:
                    self.daemon = None  # the daemon has gone: finish what runs, then leave
                    self.retiring = True
                elif msg["type"] == "retire":
                    self.retiring = True
                elif msg["type"] == "refresh":
                    self.daemon.send(self._refresh(msg))
                elif msg["type"] == "serve":
                    self.daemon.send(protocol.verdict(self._verdict(session, msg["args"])))
                elif msg["type"] == "handover":
                    handover = self._fork(session, msg, fds, (wake_r, wake_w))
                    if handover is not None:
                        return handover
                if self.daemon is None or not self.daemon.has_frame():
                    break
            if self.retiring and not self.runs:
                pristine.exit_now(0)

    def _refresh(self, msg):
        """A refresh that failed may have changed part of the session: it
        serves no run after that, whatever the daemon asks."""
        if self.stale is not None:
            return protocol.stale(self.stale)
        answer = self.refresh(msg)
        if answer["type"] == "stale":
            self.stale = answer["reason"]
        return answer

    def _blocked(self):
        """Why this session can serve no run at all, or None."""
        if self.stale is not None:
            return self.stale
        threads = _other_threads()
        if threads:
            # The run's fork is its controller: it ends the session, and a
            # fork has only the thread that forked. A cold run keeps them.
            return f"the warm session has threads a fork would lose ({', '.join(threads)})"
        return None

    def _verdict(self, session, args):
        blocked = self._blocked()
        if blocked is not None:
            return blocked
        try:
            plan(session, args, self.built_args)
        except Unservable as why:
            return str(why)
        return None

    def _fork(self, session, msg, fds, wake_fds):
        try:
            run_plan = plan(session, msg["args"], self.built_args) if self._blocked() is None else None
        except Unservable:
            run_plan = None
        if run_plan is None or len(fds) != 2:
            for fd in fds:
                pristine.close(fd)
            self.daemon.send(protocol.taken(0))
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = pristine.fork()
        if pid == 0:
            self._become_run(wake_fds)
            return Handover(msg["socket"], fds, run_plan)
        for fd in fds:
            pristine.close(fd)
        self.runs.add(pid)
        self.daemon.send(protocol.taken(pid))
        return None

    def _become_run(self, wake_fds):
        """In the fork: nothing of the checkpoint's conversation is ours."""
        pristine.set_wakeup_fd(-1)
        pristine.set_signal_handler(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wake_fds:
            pristine.close(fd)
        self.daemon.close()
        # The client stops the run and its workers with one killpg.
        pristine.setpgid(0, 0)
        # Test processes left behind come to the run, which ends them.
        prctl.become_subreaper()

    def _reap(self):
        for pid, code in pristine.exited_children():
            if pid in self.runs:
                self.runs.discard(pid)
                if self.daemon is not None:
                    self.daemon.send(protocol.ended(pid, code))
