"""Processes as owners: is a pid still the process we recorded (its start time guards
against pid reuse), and does the root's supervisor hold its lock. A leaf module: the
container store, lifecycle, endpoints, networks and the supervisor all ask it, and
none of them need to import another for it."""

from __future__ import annotations

import os

from kade.util.procs import pid_alive, pid_start  # noqa: F401  (the engine asks here)


def me() -> list:
    """This process as an owner of unfinished work: [pid, start time]. Whoever finds
    the owner dead finishes or undoes the work (thaws, removes)."""
    pid = os.getpid()
    return [pid, pid_start(pid)]


def owner_alive(owner) -> bool:
    return bool(owner) and pid_alive(owner[0], owner[1])


def supervisor_alive(root: str) -> bool:
    """Whether the root's supervisor (its keeper, kade.engine.keeper) holds its lock."""
    import fcntl
    try:
        fd = os.open(os.path.join(root, "monitor.lock"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
