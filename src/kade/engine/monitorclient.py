"""The client side of the root's supervisor (see kade.engine.monitor): finding or
starting it, and asking it to start or run a container. Kept apart so that a
CLI command imports no threading and none of the supervisor's machinery.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time

from kade.errors import KadeError

SOCKET = "monitor.sock"
LOCK = "monitor.lock"
LOG = "monitor.log"  # the supervisor's stderr: its own failures, never container output


# --- client side -------------------------------------------------------------
def sock_path(root: str) -> str:
    path = os.path.join(root, SOCKET)
    if len(path) < 100:
        return path
    # sun_path holds 108 bytes: reach a deep root through a short /proc path
    fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{SOCKET}"


def connect(engine) -> socket.socket:
    """A connection to the root's supervisor, starting one if none runs."""
    path = sock_path(engine.root)
    sock = _try_connect(path)
    if sock is not None:
        return sock
    root, driver = engine.root, engine.driver
    engine.close_handles()  # see the module docstring's invariant
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


def _try_connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None


def request_start(engine, cid: str, attach: dict | None,
                  fds: list[int] | None = None) -> socket.socket:
    """fds: the container's stdin, stdout and stderr when attached (default: ours)."""
    sock = connect(engine)
    line = (json.dumps({"op": "start", "cid": cid, "attach": attach}) + "\n").encode()
    fds = (fds or [0, 1, 2]) if attach else []
    socket.send_fds(sock, [line], fds)
    return sock


def request_run(engine, opts, attach: dict | None) -> socket.socket:
    sock = connect(engine)
    line = (json.dumps({"op": "run", "opts": opts.__dict__, "attach": attach}) + "\n").encode()
    socket.send_fds(sock, [line], [0, 1, 2] if attach else [])
    return sock


def shutdown(root: str) -> bool:
    """Ask an idle supervisor to exit; False when none runs or it is busy."""
    sock = _try_connect(sock_path(root))
    if sock is None:
        return False
    with sock:
        sock.sendall(b'{"op": "shutdown"}\n')
        reply = sock.makefile("rb").readline()
    return bool(reply) and json.loads(reply).get("ok", False)


# --- the supervisor ------------------------------------------------------------
def _spawn(root: str, driver: str) -> None:
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            os.setsid()
            if os.fork() == 0:
                from kade.engine.monitor import Supervisor, log_to
                log_to(os.path.join(root, LOG))
                code = Supervisor(root, driver).serve()
        except BaseException:  # noqa: BLE001 - nothing to report to but the log
            import traceback
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.waitpid(child, 0)



def poll_readable(fds: list[int], timeout: float | None) -> list[int]:
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in p.poll(None if timeout is None else int(timeout * 1000))]
