"""blkio (v1) and io (v2): weight, per-device throttles, bytes read and written.

Weights are optional writes: kernels without a proportional scheduler (CFQ or
BFQ) have no weight file, and docker then just ignores --blkio-weight.
"""

from __future__ import annotations

from collections.abc import Callable

from kade.runtime.cgroups.fs import Write

V1 = "blkio"
V2 = "io"

# OCI throttle list -> (v1 file, v2 io.max key)
_THROTTLES = {
    "throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
    "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
    "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
    "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops"),
}


def v1_writes(res: dict) -> list[Write]:
    bio = res.get("blockIO") or {}
    writes = []
    for prefix in ("blkio.", "blkio.bfq."):  # CFQ's files, then BFQ's: whichever exists
        if bio.get("weight"):
            writes.append(Write(prefix + "weight", str(bio["weight"]), optional=True))
        for dev in bio.get("weightDevice") or []:
            if dev.get("weight"):
                writes.append(Write(prefix + "weight_device", f"{_dev(dev)} {dev['weight']}",
                                    optional=True))
    for key, (v1_file, _) in _THROTTLES.items():
        for dev in bio.get(key) or []:
            writes.append(Write(v1_file, f"{_dev(dev)} {dev['rate']}"))
    return writes


def v2_writes(res: dict) -> list[Write]:
    bio = res.get("blockIO") or {}
    writes = []
    if bio.get("weight"):
        writes.append(Write("io.weight", f"default {weight_v2(bio['weight'])}", optional=True))
    for dev in bio.get("weightDevice") or []:
        if dev.get("weight"):
            writes.append(Write("io.weight", f"{_dev(dev)} {weight_v2(dev['weight'])}",
                                optional=True))
    for key, (_, v2_key) in _THROTTLES.items():
        for dev in bio.get(key) or []:
            writes.append(Write("io.max", f"{_dev(dev)} {v2_key}={dev['rate']}"))
    return writes


def weight_v2(weight: int) -> int:
    """blkio weight [10, 1000] to io.weight [1, 10000], linearly."""
    return 1 + (max(10, min(weight, 1000)) - 10) * 9999 // 990


def stats(read: Callable[[str], str | None], version: int) -> dict:
    if version == 1:
        text = read("blkio.throttle.io_service_bytes_recursive")
        if text is None:
            text = read("blkio.throttle.io_service_bytes")
        read_bytes, write_bytes = _v1_bytes(text or "")
    else:
        read_bytes, write_bytes = _v2_bytes(read("io.stat") or "")
    return {"blkio_read_bytes": read_bytes, "blkio_write_bytes": write_bytes}


def _v1_bytes(text: str) -> tuple[int, int]:
    # Lines look like "8:0 Read 4096"; a last "Total N" line sums them all.
    totals = {"Read": 0, "Write": 0}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in totals and parts[2].isdigit():
            totals[parts[1]] += int(parts[2])
    return totals["Read"], totals["Write"]


def _v2_bytes(text: str) -> tuple[int, int]:
    # Lines look like "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0".
    totals = {"rbytes": 0, "wbytes": 0}
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key in totals and value.isdigit():
                totals[key] += int(value)
    return totals["rbytes"], totals["wbytes"]


def _dev(dev: dict) -> str:
    return f"{dev['major']}:{dev['minor']}"
