"""Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.

Three shapes of host, told apart by what is mounted:

    v1 / hybrid                         v2 only (unified)
    /sys/fs/cgroup/                     /sys/fs/cgroup/
        memory/  cpu/  pids/ ...  (v1)      cgroup.controllers
        systemd/          (name=systemd)    cgroup.subtree_control
        unified/          (v2, hybrid)      kade/<id>/
            kade/<id>/                          memory.max  cpu.max ...
        memory/kade/<id>/
            memory.limit_in_bytes ...

On a hybrid host the v1 controllers carry the limits and the v2 dir is made for
its core files (cgroup.kill, cgroup.freeze, cgroup.procs); a controller that is
on neither side is simply not limited.
"""

from __future__ import annotations

import os
from functools import cache

from kade.runtime.cgroups.fs import HostFS

# Controllers a v1 mount can carry; named hierarchies appear as "name=<n>".
V1_CONTROLLERS = frozenset({
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory",
    "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma",
})


class Hierarchy:
    """The mount points of a host's cgroup hierarchies.

    v1 maps each v1 controller (and "name=systemd") to its mount point;
    co-mounted controllers such as cpu,cpuacct share one. A plain class, not a
    dataclass: dataclasses imports inspect, ~1.3 MB in the supervisor.
    """

    __slots__ = ("v1", "unified", "fs")

    def __init__(self, v1: dict[str, str] | None = None, unified: str | None = None,
                 fs: HostFS | None = None) -> None:
        self.v1: dict[str, str] = {} if v1 is None else v1
        self.unified = unified
        self.fs = HostFS() if fs is None else fs

    def __repr__(self) -> str:
        return f"Hierarchy(v1={self.v1!r}, unified={self.unified!r}, fs={self.fs!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hierarchy):
            return NotImplemented
        return (self.v1, self.unified, self.fs) == (other.v1, other.unified, other.fs)

    @property
    def mode(self) -> str:
        """"v2" (unified only), "hybrid" (v1 plus v2) or "v1"."""
        if not self.v1:
            return "v2"
        return "hybrid" if self.unified else "v1"

    def v1_mounts(self) -> list[str]:
        """Each v1 mount point once, in a stable order."""
        return sorted(set(self.v1.values()))

    def unified_controllers(self) -> set[str]:
        """Controllers the unified root offers (its cgroup.controllers)."""
        if self.unified is None:
            return set()
        text = self.fs.read(os.path.join(self.unified, "cgroup.controllers"))
        return set((text or "").split())


def parse_mountinfo(text: str, fs: HostFS | None = None) -> Hierarchy:
    """The cgroup mounts in a mountinfo text; the first mount of each wins."""
    v1: dict[str, str] = {}
    unified = None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype, _source, superopts = line.split(" - ", 1)[1].split()[:3]
        mountpoint = _unescape(fields[4])
        if fstype == "cgroup2" and unified is None:
            unified = mountpoint
        elif fstype == "cgroup":
            for ctrl in _v1_controllers(superopts):
                v1.setdefault(ctrl, mountpoint)
    return Hierarchy(v1=v1, unified=unified, fs=fs or HostFS())


@cache
def host_hierarchy() -> Hierarchy:
    """This host's hierarchy (read once per process: mounts do not move under us)."""
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def _v1_controllers(superopts: str) -> list[str]:
    return [o for o in superopts.split(",") if o in V1_CONTROLLERS or o.startswith("name=")]


def _unescape(path: str) -> str:
    # mountinfo octal-escapes space, tab, newline and backslash.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path
