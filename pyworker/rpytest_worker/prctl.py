"""Linux process controls that keep every process of a run tied to the run.

Nothing a run starts may outlive rpytest: each Python process dies with its
parent, and the zygote and the workers reap the orphans of what runs under
them (so a worker can tell which test left a process behind). Where prctl is
missing (not Linux) each call does nothing, and the engine's own subreaper
and process-group kills catch what they can.
"""
import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(*args):
    with contextlib.suppress(OSError, AttributeError):  # no prctl
        ctypes.CDLL(None, use_errno=True).prctl(*args)


def die_with_parent():
    """Linux kills this process when its parent dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def outlive_parent():
    """Undoes ``die_with_parent``: a warm zygote taken over by a run belongs
    to its client, and stopping the daemon must not kill it."""
    _prctl(_PR_SET_PDEATHSIG, 0)


def become_subreaper():
    """Orphans of the processes under this one (a crashed worker's children,
    a test's detached helper) become its children, not init's."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
