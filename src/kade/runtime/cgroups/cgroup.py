"""A container's cgroup: one path, made in every hierarchy the host mounts.

    cg = open_cgroup("/kade/<id>")
    cg.create(spec["linux"]["resources"])   # dirs and limits, or nothing on error
    cg.add(pid)
    cg.freeze(); cg.thaw(); cg.stats(); cg.update(resources)
    cg.oom_killed()                         # after the init died, before destroy
    cg.kill_all(signal.SIGKILL)
    cg.destroy()                            # waits for it to empty, removes the dirs

Each resource goes to its controller wherever that is mounted: a v1 hierarchy
if there is one, else the unified (v2) one if the controller is offered there.
The engine's containers, and any bundle with a relative linux.cgroupsPath, sit under
a `kade` parent, so leftovers are easy to find (`list_cgroups`); the parent itself is
shared and stays. A bundle may also name an absolute path elsewhere, as under runc:
then only its own dir is removed, never the parents it shares with others.
"""

from __future__ import annotations

import errno
import os
import signal
import time

from kade.errors import (
    FailedPrecondition,
    InvalidArgument,
    KadeError,
    NotImplementedYet,
    Unavailable,
)
from kade.runtime.cgroups import blkio, cpu, cpuset, devices, freezer, memory, pids
from kade.runtime.cgroups.fs import Write, apply_writes
from kade.runtime.cgroups.hierarchy import Hierarchy, host_hierarchy


def _debug(fmt: str, *args) -> None:
    """Notes for `kade -D`; the logging module costs ~10 ms at every container start."""
    if os.environ.get("KADE_DEBUG"):
        import sys
        sys.stderr.write("kade: " + (fmt % args) + "\n")

PARENT = "kade"
# cpuset first: a v1 cpuset dir must have cpus and mems before anything joins.
_CONTROLLERS = (cpuset, memory, cpu, pids, blkio, devices)
_V2_WANTED = frozenset({"cpu", "cpuset", "io", "memory", "pids"})
_DESTROY_TIMEOUT = 5.0


def open_cgroup(path: str, hierarchy: Hierarchy | None = None) -> Cgroup:
    """A handle on the cgroup at spec linux.cgroupsPath, as runc reads it: an absolute
    path from the root of each hierarchy ("/kade/<id>", what the engine writes), a
    relative one below Kade's parent ("ci/job1" is "/kade/ci/job1")."""
    return Cgroup(_parts(path), hierarchy or host_hierarchy())


def list_cgroups(hierarchy: Hierarchy | None = None) -> list[str]:
    """Every cgroup path under the kade parent, in any hierarchy."""
    h = hierarchy or host_hierarchy()
    roots = h.v1_mounts() + ([h.unified] if h.unified else [])
    found = {f"/{PARENT}/{name}" for root in roots
             for name in h.fs.subdirs(os.path.join(root, PARENT))}
    return sorted(found)


class Cgroup:
    """One container's cgroup; see the module docstring for the life cycle."""

    def __init__(self, parts: list[str], hierarchy: Hierarchy) -> None:
        self.path = "/" + "/".join(parts)
        self._parts = parts
        self._h = hierarchy
        self._fs = hierarchy.fs
        self._unified = os.path.join(hierarchy.unified, *parts) if hierarchy.unified else None
        self._v2_offered: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"Cgroup({self.path!r}, mode={self._h.mode!r})"

    # -- life cycle

    def create(self, resources: dict | None = None) -> None:
        """Make the dirs and set the limits; on any error remove what was made."""
        made: list[str] = []
        try:
            for mount in self._h.v1_mounts():
                self._make_v1(mount, made)
            if self._unified:
                self._make_unified(made)
            self.update(resources or {})
        except BaseException:
            for d in reversed(made):
                self._try_rmdir(d)
            raise

    def update(self, resources: dict) -> None:
        """Set OCI linux.resources on the existing cgroup."""
        _refuse_unapplied(resources)
        for ctl in _CONTROLLERS:
            route = self._route(ctl.V1, ctl.V2)
            if route is None:
                if ctl.v1_writes(resources):  # the engine warns users; this is for debugging
                    _debug("%s: no %s controller on this host; not limited",
                              self.path, ctl.V1)
                continue
            directory, version = route
            writes = ctl.v1_writes(resources) if version == 1 else ctl.v2_writes(resources)
            apply_writes(self._fs, directory, writes)

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into the cgroup in every hierarchy."""
        for d in self._dirs():
            self._fs.write(os.path.join(d, "cgroup.procs"), str(pid))

    def exists(self) -> bool:
        return any(self._fs.exists(d) for d in self._dirs())

    def destroy(self, timeout: float = _DESTROY_TIMEOUT) -> None:
        """Kill what is left, wait for the cgroup to empty, remove its dirs."""
        deadline = time.monotonic() + timeout
        if self.pids():
            self.kill_all(signal.SIGKILL)
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        errors = [e for d in self._dirs() if (e := self._rmdir(d, deadline))]
        # intermediate dirs below kade/, if empty; elsewhere they may be someone else's
        below_parent = self._parts[0] == PARENT
        for i in range(len(self._parts) - 1, 1, -1) if below_parent else ():
            for root in self._roots():
                self._try_rmdir(os.path.join(root, *self._parts[:i]))
        if errors:
            raise FailedPrecondition(f'cannot remove cgroup "{self.path}": {errors[0]}')

    # -- processes

    def pids(self) -> list[int]:
        text = self._fs.read(os.path.join(self._procs_dir(), "cgroup.procs"))
        return [int(p) for p in (text or "").split()]

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process; cgroup.kill when it can, else freeze, signal, thaw.

        Freezing first means no process can fork a child the loop would miss.
        """
        if not self.pids():
            return
        kill_file = os.path.join(self._unified, "cgroup.kill") if self._unified else None
        if sig == signal.SIGKILL and kill_file and self._fs.exists(kill_file):
            self._fs.write(kill_file, "1")
            if freezer.V1 in self._h.v1 and self.is_frozen():
                self.thaw()  # a task frozen by v1 only dies once thawed
            return
        can_freeze = self._freezer() is not None
        froze = can_freeze and not self.is_frozen()
        if froze:
            self.freeze()
        try:
            for pid in self.pids():
                _signal(pid, sig)
        finally:
            # A v1-frozen task only dies of SIGKILL once thawed.
            if froze or (can_freeze and sig == signal.SIGKILL):
                self.thaw()

    # -- freezer

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def is_frozen(self) -> bool:
        directory, version = self._require_freezer()
        if version == 1:
            return freezer.is_frozen_v1(self._fs, directory)
        return freezer.is_frozen_v2(self._fs, directory)

    def _set_frozen(self, frozen: bool) -> None:
        directory, version = self._require_freezer()
        if version == 1:
            freezer.set_v1(self._fs, directory, frozen)
        else:
            freezer.set_v2(self._fs, directory, frozen)

    def _freezer(self) -> tuple[str, int] | None:
        # cgroup.freeze is a core v2 file: it needs no controller to be enabled.
        if freezer.V1 in self._h.v1:
            return self._v1_dir(freezer.V1), 1
        return (self._unified, 2) if self._unified else None

    def _require_freezer(self) -> tuple[str, int]:
        where = self._freezer()
        if where is None:
            raise Unavailable("this host has no cgroup freezer (v1 freezer or cgroup v2)")
        return where

    # -- stats

    def stats(self) -> dict:
        """memory_usage, memory_limit (None: unlimited), cpu_usage_ns,
        pids_current, blkio_read_bytes, blkio_write_bytes; None where unknown."""
        out: dict = {"memory_usage": None, "memory_limit": None}
        if route := self._route(memory.V1, memory.V2):
            out.update(memory.stats(self._reader(route[0]), route[1]))
        out["cpu_usage_ns"] = self._cpu_usage()
        route = self._route(pids.V1, pids.V2)
        counted = pids.current(self._reader(route[0])) if route else None
        out["pids_current"] = counted if counted is not None else len(self.pids())
        out.update({"blkio_read_bytes": None, "blkio_write_bytes": None})
        if route := self._route(blkio.V1, blkio.V2):
            out.update(blkio.stats(self._reader(route[0]), route[1]))
        return out

    def oom_killed(self) -> bool:
        """Whether the OOM killer killed one of its processes (read before destroy)."""
        route = self._route(memory.V1, memory.V2)
        return bool(route) and memory.oom_killed(self._reader(route[0]), route[1])

    def _cpu_usage(self) -> int | None:
        # cpu.stat is a core v2 file too, so a hybrid host can answer from there.
        if cpu.V1_ACCOUNTING in self._h.v1:
            return cpu.usage_ns(self._reader(self._v1_dir(cpu.V1_ACCOUNTING)), 1)
        return cpu.usage_ns(self._reader(self._unified), 2) if self._unified else None

    def _reader(self, directory: str):
        return lambda name: self._fs.read(os.path.join(directory, name))

    # -- where things are

    def _route(self, v1_name: str, v2_name: str) -> tuple[str, int] | None:
        if v1_name in self._h.v1:
            return self._v1_dir(v1_name), 1
        if self._unified and v2_name in self._v2_controllers():
            return self._unified, 2
        return None

    def _v2_controllers(self) -> frozenset[str]:
        if self._v2_offered is None:
            self._v2_offered = frozenset(self._h.unified_controllers() & _V2_WANTED)
        return self._v2_offered

    def _v1_dir(self, controller: str) -> str:
        return os.path.join(self._h.v1[controller], *self._parts)

    def _roots(self) -> list[str]:
        unified = self._h.unified if self._unified else None  # None once given up on
        return self._h.v1_mounts() + ([unified] if unified else [])

    def _dirs(self) -> list[str]:
        return [os.path.join(root, *self._parts) for root in self._roots()]

    def _procs_dir(self) -> str:
        if self._unified:
            return self._unified
        if freezer.V1 in self._h.v1:
            return self._v1_dir(freezer.V1)
        return self._dirs()[0]

    # -- making and removing dirs

    def _make_v1(self, mount: str, made: list[str]) -> None:
        is_cpuset = self._h.v1.get(cpuset.V1) == mount
        for i in range(1, len(self._parts) + 1):
            d = os.path.join(mount, *self._parts[:i])
            if self._fs.mkdir(d):
                made.append(d)
            if is_cpuset:
                cpuset.inherit_v1(self._fs, d)

    def _make_unified(self, made: list[str]) -> None:
        assert self._h.unified is not None
        enable = " ".join(f"+{c}" for c in sorted(self._v2_controllers()))
        mine: list[str] = []
        try:
            for i in range(len(self._parts)):
                parent = os.path.join(self._h.unified, *self._parts[:i])
                if enable:  # controllers reach a child only via its parent's subtree_control
                    apply_writes(self._fs, parent, [Write("cgroup.subtree_control", enable)])
                d = os.path.join(parent, self._parts[i])
                if self._fs.mkdir(d):
                    mine.append(d)
        except (OSError, KadeError):
            if self._h.mode == "v2":
                made.extend(mine)
                raise
            # On a hybrid host the v2 dir is a convenience (kill, freeze); go without.
            _debug("%s: cannot make the cgroup v2 dir; using v1 only", self.path)
            for d in reversed(mine):
                self._try_rmdir(d)
            self._unified = None
            return
        made.extend(mine)

    def _rmdir(self, directory: str, deadline: float) -> str | None:
        """Remove one dir, retrying while the kernel says it is busy."""
        while True:
            try:
                self._fs.rmdir(directory)
                return None
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    return f"{directory}: {os.strerror(e.errno or 0)}"
            time.sleep(0.01)

    def _try_rmdir(self, directory: str) -> None:
        try:
            self._fs.rmdir(directory)
        except OSError:
            pass  # still in use by another container, or already gone


# linux.resources that no controller module here applies: asked for, they are an
# error (as runc and crun fail when they cannot set them), never silently dropped
_UNAPPLIED = {"hugepageLimits": "hugetlb", "network": "net_cls/net_prio", "rdma": "rdma",
              "unified": "cgroup v2 unified keys"}


def _refuse_unapplied(resources: dict) -> None:
    for key, what in _UNAPPLIED.items():
        if resources.get(key):
            raise NotImplementedYet(f"linux.resources.{key} ({what}) is not supported yet")


def _parts(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    if not path.startswith("/"):
        parts.insert(0, PARENT)
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(f'cgroup path "{path}" must not contain "." or ".."')
    if not parts or parts == [PARENT]:
        raise InvalidArgument(f'cgroup path "{path}" names no cgroup of its own')
    return parts


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # exited since the list was read
