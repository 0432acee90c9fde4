"""Which threads alive in the zygote keep it from forking its workers.

A fork copies every lock of the process but only the thread that forks: a
lock another thread held at that instant (logging's, a stdio buffer's, the
import lock, a C library's) stays held in the child for good, and the worker
hangs the first time it needs it. So a thread alive after collection makes
the engine spawn its workers instead (``docs/compatibility.md``, "Threads
and worker start").

Some threads are known to hold nothing a child needs while they wait.
``SAFE`` names them by the function the thread runs and the call it waits
in, each with why it is safe; such a thread is passed over only while its
Python stack shows it waiting there, so one caught doing anything else
still counts.
"""
import sys
import threading
import time
import traceback

from . import pristine

# (module, qualified name of the thread's target, the function it waits in,
# the function of the target's frame that calls it).
SAFE = (
    # pytest-rerunfailures (with pytest-xdist installed) serves its rerun
    # database over TCP to xdist's workers from a daemon thread started at
    # configure time. Idle, the thread is blocked in socket.accept(), which
    # releases the GIL and holds none of Python's locks; the database lock
    # is taken only by the per-connection threads a client's connect starts,
    # and a forked worker never connects (it inherits the database object
    # itself). The child keeps a copy of the listening socket, unread.
    ("pytest_rerunfailures", "ServerStatusDB.run_server", "accept", "run_server"),
)

# A known thread just started may not have reached its wait yet.
SETTLE_SECONDS = 0.5


def _known(thread):
    """The ``SAFE`` entry of this thread's target, or None."""
    target = getattr(thread, "_target", None)  # threading.Thread keeps it while running
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    for entry in SAFE:
        if (module, qualname) == entry[:2]:
            return entry
    return None


def _waiting(thread, entry, frames):
    frame = frames.get(thread.ident)
    return (frame is not None and frame.f_code.co_name == entry[2]
            and frame.f_back is not None and frame.f_back.f_code.co_name == entry[3])


def threads_in_the_way():
    """Names of the threads alive besides this one that a fork is not safe
    past. Waits up to ``SETTLE_SECONDS`` for known threads to reach their wait."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        others = [t for t in threading.enumerate() if t is not threading.current_thread()]
        frames = sys._current_frames()
        unsettled = [t for t in others if (entry := _known(t)) is not None and not _waiting(t, entry, frames)]
        blocking = [t.name for t in others if _known(t) is None]
        if blocking or not unsettled or time.monotonic() >= deadline:
            return blocking + [t.name for t in unsettled]
        time.sleep(0.005)


def run_forked_child(main, quiet_interrupt=False):
    """A forked child (a worker, a collector) runs ``main`` and exits
    here: it must never return into the zygote's code. Exit 0 when
    ``main`` returned, else 3 with the traceback (none for an interrupt
    with ``quiet_interrupt``: a collector's, which the zygote reports)."""
    code = 3
    try:
        main()
        code = 0
    except KeyboardInterrupt:
        if not quiet_interrupt:
            traceback.print_exc()
    except BaseException:  # noqa: BLE001  whatever it was, the child ends here
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        pristine.exit_now(code)
