"""cpu and cpuacct: shares, CFS quota and period; CPU time used.

v2 has no shares: cpu.weight takes their place, converted with the formula
runc >= 1.3.2 and crun >= 1.23 share, which keeps the ends and the default in
place (2 -> 1, 1024 -> 100, 262144 -> 10000).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kade.runtime.cgroups.fs import Write

V1 = "cpu"
V2 = "cpu"
V1_ACCOUNTING = "cpuacct"


def v1_writes(res: dict) -> list[Write]:
    cpu = res.get("cpu") or {}
    writes = []
    if cpu.get("shares"):
        writes.append(Write("cpu.shares", str(cpu["shares"])))
    if cpu.get("period"):
        writes.append(Write("cpu.cfs_period_us", str(cpu["period"])))
    if cpu.get("quota"):
        writes.append(Write("cpu.cfs_quota_us", str(cpu["quota"])))
    return writes


def v2_writes(res: dict) -> list[Write]:
    cpu = res.get("cpu") or {}
    writes = []
    if cpu.get("shares"):
        writes.append(Write("cpu.weight", str(shares_to_weight(cpu["shares"]))))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        value = "max" if quota <= 0 else str(quota)
        writes.append(Write("cpu.max", f"{value} {period}" if period else value))
    return writes


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    # A quadratic in log2(shares) through (1, 0), (10, 2) and (18, 4) in log10(weight).
    l2 = math.log2(shares)
    return math.ceil(10 ** ((l2 * l2 + 125 * l2) / 612.0 - 7.0 / 34.0))


def usage_ns(read: Callable[[str], str | None], version: int) -> int | None:
    """CPU time used by the cgroup, from cpuacct.usage (v1) or cpu.stat (v2)."""
    if version == 1:
        text = read("cpuacct.usage")
        return int(text) if text and text.isdigit() else None
    for line in (read("cpu.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec" and value.isdigit():
            return int(value) * 1000
    return None
