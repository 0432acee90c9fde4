"""The zygote's exit: everything an interpreter's exit does that anyone can
observe, without freeing the collected session object by object.

A zygote holds a whole collected pytest session: for 500 trivial tests about
40,000 objects, for a large suite millions. Python's own exit frees them one
at a time, after the workers it forked wrote to the pages they shared, so
each page faults again: 12 of the 18 ms between the end of a 500-test
session and the end of the process, and the run (the pipe its output goes
to) waits for that process. So the zygote ends the way the interpreter
would, in the interpreter's order (``Py_FinalizeEx``):

1. wait for the non-daemon threads (``threading._shutdown``);
2. run the ``atexit`` functions: logging's shutdown, ``weakref.finalize``,
   coverage, pytest's basetemp lock;
3. flush ``sys.stdout`` and ``sys.stderr``;

and then leaves with ``os._exit``. Freeing an object can be observed in two
ways: a file object nobody closed flushes what it buffered, and a
``__del__`` runs. The second is skipped: Python does not promise to call
``__del__`` for objects alive at exit either. So while a file
is open for writing (besides stdin, stdout and stderr) the zygote takes the
interpreter's own exit, and no written data can be lost. It does the same
without ``threading._shutdown`` or ``/proc``, and when a flush fails (the
interpreter reports that and exits 120). C's stdio buffers (an extension's
``printf`` to a piped stdout) are what ``os._exit`` would still drop; the
zygote runs no tests, so only a plugin's C code at session end could fill
them.
"""
import atexit
import fcntl
import os
import stat
import sys
import threading

from . import pristine


def exit_now(code):
    """Ends the process with ``code`` as described above; returns only when
    the interpreter's own exit must run instead."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:
        return
    shutdown()
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # the interpreter reports it, and its exit code is 120
    if files_open_for_writing():
        return
    pristine.exit_now(code)


def files_open_for_writing():
    """Whether a file besides fds 0-2 is open for writing: a Python file
    object on it may hold data only freeing it would flush. (Pipes do not
    count: the zygote's children, which could read them, are ended before
    this, and the pipes it inherits are not Python's files.) True where
    ``/proc`` cannot tell."""
    try:
        fds = [int(name) for name in pristine.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        return True
    for fd in fds:
        if fd <= 2:
            continue
        try:
            writable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
            mode = pristine.fstat(fd).st_mode
        except OSError:
            continue  # the listing's own descriptor, closed by now
        if writable and stat.S_ISREG(mode):
            return True
    return False
