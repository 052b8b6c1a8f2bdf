"""memory: OCI linux.resources.memory to control files, and usage back.

OCI's `swap` is memory+swap together (docker's --memory-swap); -1 means
unlimited and 0 or absent means unset. v1 takes it as is in memsw; v2's
memory.swap.max counts swap alone, so there it becomes swap - limit.
"""

from __future__ import annotations

from collections.abc import Callable

from kade.errors import InvalidArgument
from kade.runtime.cgroups.fs import Write

V1 = "memory"
V2 = "memory"

# v1 reports "unlimited" as the largest page-aligned value.
_V1_UNLIMITED = 1 << 62


def v1_writes(res: dict) -> list[Write]:
    mem = res.get("memory") or {}
    limit, swap = mem.get("limit"), mem.get("swap")
    writes = []
    if limit:
        writes.append(Write("memory.limit_in_bytes", str(limit)))
    if swap:
        writes.append(Write("memory.memsw.limit_in_bytes", str(swap), optional=True))
    elif limit == -1:
        # Lift memsw too, or it would keep capping the now unlimited memory.
        writes.append(Write("memory.memsw.limit_in_bytes", "-1", optional=True))
    if mem.get("reservation"):
        writes.append(Write("memory.soft_limit_in_bytes", str(mem["reservation"])))
    if mem.get("swappiness") is not None:
        writes.append(Write("memory.swappiness", str(mem["swappiness"]), optional=True))
    if mem.get("disableOOMKiller"):
        writes.append(Write("memory.oom_control", "1"))
    return writes


def v2_writes(res: dict) -> list[Write]:
    mem = res.get("memory") or {}
    limit = mem.get("limit")
    writes = []
    if limit:
        writes.append(Write("memory.max", _v2_value(limit)))
    swap = swap_v2(mem.get("swap") or 0, limit or 0)
    if swap:
        writes.append(Write("memory.swap.max", _v2_value(swap), optional=True))
    if mem.get("reservation"):
        writes.append(Write("memory.low", _v2_value(mem["reservation"])))
    return writes


def swap_v2(swap: int, limit: int) -> int:
    """OCI memory+swap to v2 swap alone; -1 is "max", 0 is "leave as is"."""
    if swap == 0 and limit == -1:
        return -1  # unlimited memory with swap unset: unlimited swap too, as v1 would be
    if swap in (0, -1):
        return swap
    if limit in (0, -1):
        raise InvalidArgument(f'memory swap "{swap}" needs a memory limit as well')
    if swap < limit:
        raise InvalidArgument(
            f'memory+swap limit "{swap}" must be at least the memory limit "{limit}"')
    return swap - limit


def stats(read: Callable[[str], str | None], version: int) -> dict:
    """Usage, limit (None: unlimited) and the inactive page cache docker's stats
    subtracts from usage (v1 total_inactive_file, v2 inactive_file)."""
    if version == 1:
        usage, limit = read("memory.usage_in_bytes"), read("memory.limit_in_bytes")
    else:
        usage, limit = read("memory.current"), read("memory.max")
    key = "total_inactive_file" if version == 1 else "inactive_file"
    inactive = None
    for line in (read("memory.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            inactive = _int(value)
    return {"memory_usage": _int(usage), "memory_limit": _limit(limit),
            "memory_inactive_file": inactive}


def oom_killed(read: Callable[[str], str | None], version: int) -> bool:
    """Whether the OOM killer killed a process of this cgroup since it was made:
    v1 memory.oom_control's oom_kill counter (kernel 4.13+; before it, under_oom,
    which holds while a process waits for memory under a disabled OOM killer), v2
    memory.events' oom_kill."""
    text = read("memory.oom_control" if version == 1 else "memory.events") or ""
    fields = dict(line.partition(" ")[::2] for line in text.splitlines())
    if "oom_kill" in fields:
        return (_int(fields["oom_kill"]) or 0) > 0
    return version == 1 and (_int(fields.get("under_oom")) or 0) > 0


def _v2_value(n: int) -> str:
    return "max" if n == -1 else str(n)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().lstrip("-").isdigit() else None


def _limit(text: str | None) -> int | None:
    """Bytes, or None when unlimited."""
    n = _int(text)
    return None if n is None or n >= _V1_UNLIMITED else n
