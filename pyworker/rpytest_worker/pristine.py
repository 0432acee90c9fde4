"""The standard library as rpytest found it, before any user code ran.

Test code patches the standard library and does not always put it back. A
module-level ``socket.socket = Broken`` or ``select.select = broken`` runs in
the zygote while it collects, before the workers are forked from it; the
same line in a test body runs in a worker, between two of rpytest's own
messages. Under pytest such a patch breaks only the tests that use it; here
it would break rpytest's plumbing (the engine's socket, the zygote's wait
loop, the reaping of children) and with it the whole run, or leave the
engine waiting for a message that a no-op ``sendall`` swallowed.

So every function rpytest's own code needs from ``os``, ``socket``,
``select``, ``struct``, ``signal`` and ``resource`` (and ``open``) is bound
here when the package is imported (``bootstrap`` imports it before pytest
loads any plugin, conftest or test module) and never looked up again: the
modules of this package call these names, not the modules' attributes.
Sockets are ``_socket.socket`` objects driven through methods taken from
that type now, so a later ``socket.socket.sendall = ...`` (even on
``_socket.socket``) does not reach them.

pytest's own code that rpytest calls after collection (the shared basetemp,
the workers' capture files) looks its functions up as it runs; ``untouched``
puts the original functions of those modules back for such a call and the
user's patches again afterwards, as pytest would have run that code before
any test module was imported.
"""
import _socket
import contextlib
import functools
import io
import os
import resource
import select
import signal
import socket
import struct

# os
fork = os.fork
exit_now = os._exit
pipe = os.pipe
read = os.read
write = os.write
close = os.close
set_blocking = os.set_blocking
set_inheritable = os.set_inheritable
waitpid = os.waitpid
waitid = os.waitid
replace = os.replace


def _exit_code_of(status):
    """``os.waitstatus_to_exitcode`` (Python 3.9+), for 3.8 as well."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


waitstatus_to_exitcode = getattr(os, "waitstatus_to_exitcode", _exit_code_of)


def exited_children():
    """(pid, exit code) of each child that has ended, without waiting; the
    code is ``waitstatus_to_exitcode``'s (negative for a signal)."""
    while True:
        try:
            pid, status = waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, waitstatus_to_exitcode(status)

kill = os.kill
getpid = os.getpid
getppid = os.getppid
setpgid = os.setpgid
listdir = os.listdir
fstat = os.fstat
lseek = os.lseek
dup2 = os.dup2
register_at_fork = os.register_at_fork
P_ALL, WEXITED, WNOHANG, WNOWAIT = os.P_ALL, os.WEXITED, os.WNOHANG, os.WNOWAIT
open_file = io.open

# select, signal, resource
select_readable = select.select
set_wakeup_fd = signal.set_wakeup_fd
set_signal_handler = signal.signal
getrusage = resource.getrusage
RUSAGE_SELF = resource.RUSAGE_SELF

# socket: the C type and its methods
_Socket = _socket.socket
_connect = _Socket.connect
_sendall = _Socket.sendall
_recv = _Socket.recv
_recvmsg = _Socket.recvmsg
_close = _Socket.close
_fileno = _Socket.fileno
AF_UNIX, SOCK_STREAM = _socket.AF_UNIX, _socket.SOCK_STREAM
SOL_SOCKET, SCM_RIGHTS = _socket.SOL_SOCKET, _socket.SCM_RIGHTS
CMSG_SPACE = _socket.CMSG_SPACE

# struct
Struct = struct.Struct


class Socket:
    """A stream socket whose every call goes to the methods bound above."""

    __slots__ = ("_sock", "close")

    def __init__(self, path=None, fileno=None):
        self._sock = _Socket(fileno=fileno) if fileno is not None else _Socket(AF_UNIX, SOCK_STREAM)
        # Bound now: ``os.register_at_fork`` takes it for a forked child.
        self.close = functools.partial(_close, self._sock)
        if path is not None:
            _connect(self._sock, path)

    def fileno(self):
        return _fileno(self._sock)

    def sendall(self, data):
        _sendall(self._sock, data)

    def recv(self, size):
        return _recv(self._sock, size)

    def recvmsg(self, size, ancsize):
        return _recvmsg(self._sock, size, ancsize)


# The modules whose attributes ``untouched`` restores, as they are now.
_ORIGINALS = {module: dict(vars(module)) for module in (os, select, socket, struct, signal)}
_MISSING = object()


@contextlib.contextmanager
def untouched():
    """Runs the block with the modules above as they were at import, then
    puts back whatever user code had set on them."""
    changed = []
    for module, original in _ORIGINALS.items():
        current = vars(module)
        for name, value in original.items():
            now = current.get(name, _MISSING)
            if now is not value:
                changed.append((module, name, now))
                setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in changed:
            if value is _MISSING:
                delattr(module, name)
            else:
                setattr(module, name, value)
