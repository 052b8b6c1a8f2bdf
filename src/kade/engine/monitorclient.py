"""The client side of the root's supervisor (see kade.engine.monitor): finding or
starting it, asking it to start or run a container, and reading its answers.

This module is on the path of every `kade run`, so it imports no more than the
interpreter has loaded already: `_socket` rather than `socket` (which pulls in
enum, selectors and array, ~5 ms) and `marshal` rather than json (re, ~8 ms).

The wire format, both ways, is a frame per message: a 4-byte little-endian length,
then `marshal.dumps(msg, 4)` of a dict of plain values (str, int, bool, None, lists
and dicts of them). Only root can reach the socket (its mode is 0600), so marshal's
lack of hardening against hostile input gives nobody anything they did not have.
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys
import time

from kade.errors import KadeError

SOCKET = "monitor.sock"
LOCK = "monitor.lock"
LOG = "monitor.log"  # the supervisor's stderr: its own failures, never container output
# The supervisor is a program this client starts (in a forked child, see _spawn), named
# as one would name a binary to exec: importing it here would close a loop through the
# whole engine (the supervisor runs lifecycle and the Engine, which ask this client),
# and the run client would load the supervisor's code for nothing.
SUPERVISOR = "kade.engine.monitor"
_HEADER = 4


# --- the wire format -------------------------------------------------------------
def encode(msg: dict) -> bytes:
    body = marshal.dumps(msg, 4)
    return len(body).to_bytes(_HEADER, "little") + body


class Reader:
    """Frames from one fd, in order; bytes of the next frame are kept for later."""

    def __init__(self, fd: int, buf: bytes = b""):
        self.fd = fd
        self.buf = buf

    def read(self) -> dict | None:
        """The next message, or None at end of stream (also mid-frame)."""
        while True:
            if len(self.buf) >= _HEADER:
                size = int.from_bytes(self.buf[:_HEADER], "little") + _HEADER
                if len(self.buf) >= size:
                    body, self.buf = self.buf[_HEADER:size], self.buf[size:]
                    msg = marshal.loads(body)
                    if not isinstance(msg, dict):
                        raise ValueError("a supervisor message is not a dict")
                    return msg
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self.buf += chunk


def send(sock, msg: dict, fds: list[int] | tuple = ()) -> None:
    """One frame, with fds attached (SCM_RIGHTS) to its first byte when given."""
    data = encode(msg)
    if fds:
        rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        data = data[sent:]
    if data:
        sock.sendall(data)


# --- finding or starting the supervisor ----------------------------------------------
def sock_path(root: str) -> str:
    path = os.path.join(root, SOCKET)
    if len(path) < 100:
        return path
    # sun_path holds 108 bytes: reach a deep root through a short /proc path
    fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{SOCKET}"


def connect(engine):
    """A connection to the root's supervisor, starting one if none runs."""
    path = sock_path(engine.root)
    sock = _try_connect(path)
    if sock is not None:
        return sock
    root, driver = engine.root, engine.driver
    engine.close_handles()  # see kade.engine.monitor's invariant
    deadline = time.monotonic() + 10
    next_spawn = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_spawn:  # again, in case an exiting one held the lock
            _spawn(root, driver)
            next_spawn = time.monotonic() + 1.0
        sock = _try_connect(path)
        if sock is not None:
            return sock
        time.sleep(0.002)
    raise KadeError(f'the container monitor did not answer on "{path}"; '
                    f'see {os.path.join(root, LOG)}')


def _try_connect(path: str):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None


def _spawn(root: str, driver: str) -> None:
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            os.setsid()
            if os.fork() == 0:
                import importlib
                spawn = importlib.import_module(SUPERVISOR).spawn
                code = spawn(root, driver)  # returns in the worker only (see its doc)
        except BaseException:  # noqa: BLE001 - nothing to report to but the log
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.waitpid(child, 0)


# --- requests --------------------------------------------------------------------
def request_start(engine, cid: str, attach: dict | None, fds: tuple[int, ...] = (0, 1, 2)):
    """Ask the supervisor to start a created container; attached, it copies the
    container's stdin, stdout and stderr from and to fds (default: this process's
    stdio; never handed to the container itself). Read the answer with
    `answer(sock, attach)`."""
    sock = connect(engine)
    send(sock, {"op": "start", "cid": cid, "attach": attach}, tuple(fds) if attach else ())
    return sock


def request_run(engine, opts, attach: dict | None):
    """Ask the supervisor to create and start a container from CreateOptions."""
    sock = connect(engine)
    send(sock, {"op": "run", "opts": opts.__dict__, "attach": attach},
         (0, 1, 2) if attach else ())
    return sock


def shutdown(root: str, wait: float = 5.0) -> bool:
    """Ask an idle supervisor to exit and wait until it has (its lock is free), so
    that the next command starts a new one; False when none runs or it is busy."""
    sock = _try_connect(sock_path(root))
    if sock is None:
        return False
    try:
        send(sock, {"op": "shutdown"})
        reply = Reader(sock.fileno()).read()
    finally:
        sock.close()
    if not (reply and reply.get("ok")):
        return False
    # it leaves at its next accept timeout (1 s), unless a client came in meanwhile
    import fcntl
    fd = os.open(os.path.join(root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True  # closing fd releases it at once
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
    finally:
        os.close(fd)


# --- answers ---------------------------------------------------------------------
class NeedPull(KadeError):
    """The supervisor does not pull: the client shows pull progress itself."""


class Started:
    """A started container as the caller sees it; `wait_exit` for attached runs."""

    def __init__(self, reader: Reader | None, info: dict, sock=None):
        self.reader = reader
        self.sock = sock  # keeps the connection (and so the reader's fd) open
        self.pid = info.get("pid", 0)
        self.cid = info.get("cid", "")
        self.pty = info.get("pty")

    @property
    def report_fd(self) -> int:
        return self.reader.fd if self.reader else -1

    def wait_exit(self) -> int:
        try:
            msg = self.reader.read() if self.reader else None
        except OSError:
            msg = None
        self.close()
        if msg is None and self.reader is not None:
            from kade.errors import Unavailable
            short = self.cid[:12]
            raise Unavailable(f"the container supervisor died while attached; container "
                              f"{short} keeps running detached (kade logs {short})")
        return int(msg.get("exit", 125)) if msg else 125

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def answer(sock, attach: dict | None) -> Started:
    """The supervisor's first answer to a start or run: the started container, or
    its error raised as the same KadeError class (exit codes depend on it)."""
    reader = Reader(sock.fileno())
    try:
        msg = reader.read()
    except BaseException:
        sock.close()
        raise
    msg = msg or {"error": "container monitor died", "kind": "KadeError"}
    if "error" in msg:
        sock.close()
        raise error_class(msg["kind"])(msg["error"])
    started = Started(reader, msg["started"], sock)
    if not attach:
        started.close()
    return started


def error_class(kind: str) -> type:
    """The error class the supervisor named; KadeError for anything unknown."""
    from kade import errors
    if kind == "NeedPull":
        return NeedPull
    cls = getattr(errors, kind, KadeError)
    return cls if isinstance(cls, type) and issubclass(cls, KadeError) else KadeError


def poll_readable(fds: list[int], timeout: float | None) -> list[int]:
    import select
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in p.poll(None if timeout is None else int(timeout * 1000))]
