"""pids: the number of tasks the container may have."""

from __future__ import annotations

from collections.abc import Callable

from kade.runtime.cgroups.fs import Write

V1 = "pids"
V2 = "pids"


def v1_writes(res: dict) -> list[Write]:
    limit = (res.get("pids") or {}).get("limit")
    if not limit:
        return []  # 0 or absent: leave it
    return [Write("pids.max", "max" if limit < 0 else str(limit))]


v2_writes = v1_writes


def current(read: Callable[[str], str | None]) -> int | None:
    text = read("pids.current")
    return int(text) if text and text.isdigit() else None
