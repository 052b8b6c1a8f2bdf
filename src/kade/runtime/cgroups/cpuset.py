"""cpuset: which CPUs and memory nodes the container may use.

A new v1 cpuset dir starts with empty cpus and mems, and no task can join it
until both are set, so every dir Kade makes there inherits its parent's first.
"""

from __future__ import annotations

import os

from kade.runtime.cgroups.fs import HostFS, Write

V1 = "cpuset"
V2 = "cpuset"


def v1_writes(res: dict) -> list[Write]:
    return _writes(res)


def v2_writes(res: dict) -> list[Write]:
    return _writes(res)


def _writes(res: dict) -> list[Write]:
    cpu = res.get("cpu") or {}
    writes = []
    if cpu.get("cpus"):
        writes.append(Write("cpuset.cpus", cpu["cpus"]))
    if cpu.get("mems"):
        writes.append(Write("cpuset.mems", cpu["mems"]))
    return writes


def inherit_v1(fs: HostFS, directory: str) -> None:
    """Copy cpus and mems from the parent dir where they are still empty."""
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not fs.read(os.path.join(directory, name)):
            fs.write(os.path.join(directory, name), fs.read(os.path.join(parent, name)) or "")
