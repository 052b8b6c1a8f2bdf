"""Is a pid still the process we recorded: its start time guards against pid reuse.
Below every layer, so the snapshotter can judge a layer's owner (kade.engine.procs
builds the engine's owners on it)."""

from __future__ import annotations


def pid_alive(pid: int, start: int | None = None) -> bool:
    """True if pid runs and (when given) started at `start` jiffies: no pid reuse."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] == b"Z":
        return False
    return start is None or int(fields[19]) == start


def pid_start(pid: int) -> int | None:
    """The pid's start time in jiffies; None if it is gone already (a container under
    another runtime can exit and be reaped before we look)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rfind(b")") + 2:].split()[19])


def owner_text(pid: int) -> str | None:
    """pid as an owner "pid:start", as rows of unfinished work name theirs."""
    start = pid_start(pid)
    return None if start is None else f"{pid}:{start}"


def owner_text_alive(owner: str) -> bool:
    """Whether an owner "pid:start" still runs; a malformed one is dead."""
    pid, _, start = owner.partition(":")
    try:
        return pid_alive(int(pid), int(start))
    except ValueError:
        return False
