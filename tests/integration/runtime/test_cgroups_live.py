"""Real cgroups on this host, as root: limits, freezer, kill, and a clean destroy."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from kade.errors import InvalidArgument
from kade.oci.defaults import cpu_quota
from kade.runtime.cgroups import Hierarchy, host_hierarchy, list_cgroups, open_cgroup

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups")


@pytest.fixture
def hierarchy():
    h = host_hierarchy()
    if not h.v1 and not h.unified:
        pytest.skip("no cgroup filesystem mounted")
    parents = [os.path.join(m, "kade") for m in h.v1_mounts() + [h.unified] if m]
    fresh = [p for p in parents if not os.path.exists(p)]
    yield h
    for p in fresh:  # leave the host as we found it
        try:
            os.rmdir(p)
        except OSError:
            pass


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def read(h: Hierarchy, controller: str, path: str, name: str) -> str:
    if controller in h.v1:
        root = h.v1[controller]
    else:
        root = h.unified
    with open(os.path.join(root, path.lstrip("/"), name)) as f:
        return f.read().strip()


def test_cgroup_life_cycle(hierarchy, sleeper):
    h = hierarchy
    path = f"/kade/test-{uuid.uuid4().hex[:12]}"
    quota, period = cpu_quota(0.5)
    cg = open_cgroup(path, h)
    cg.create({"memory": {"limit": 64 << 20}, "pids": {"limit": 20},
               "cpu": {"quota": quota, "period": period}})
    try:
        cg.add(sleeper.pid)
        assert cg.pids() == [sleeper.pid]
        if "memory" in h.v1:
            assert read(h, "memory", path, "memory.limit_in_bytes") == str(64 << 20)
            assert read(h, "pids", path, "pids.max") == "20"
            assert read(h, "cpu", path, "cpu.cfs_quota_us") == "50000"
            assert read(h, "cpu", path, "cpu.cfs_period_us") == "100000"
        elif "memory" in h.unified_controllers():
            assert read(h, "memory", path, "memory.max") == str(64 << 20)
            assert read(h, "pids", path, "pids.max") == "20"
            assert read(h, "cpu", path, "cpu.max") == "50000 100000"
        stats = cg.stats()
        assert stats["memory_limit"] == 64 << 20
        assert stats["pids_current"] == 1

        cg.freeze()
        assert cg.is_frozen()
        assert _state(sleeper.pid) in ("D", "S", "T")
        cg.thaw()
        assert not cg.is_frozen()

        cg.kill_all(signal.SIGKILL)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        cg.destroy()
    assert not cg.exists()
    assert path not in list_cgroups(h)


def test_v2_core_files_on_a_hybrid_host(sleeper):
    """The freeze and kill paths of a v2-only host, run on the unified hierarchy."""
    h = host_hierarchy()
    if h.mode != "hybrid":
        pytest.skip("needs a hybrid host to borrow its unified hierarchy")
    parent_existed = os.path.exists(os.path.join(h.unified, "kade"))
    v2 = Hierarchy(unified=h.unified)
    cg = open_cgroup(f"/kade/test-{uuid.uuid4().hex[:12]}", v2)
    cg.create({})
    try:
        cg.add(sleeper.pid)
        cg.freeze()
        assert cg.is_frozen()
        cg.thaw()
        cg.kill_all()
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        cg.destroy()
        if not parent_existed:
            os.rmdir(os.path.join(h.unified, "kade"))
    assert not cg.exists()


def test_failed_create_leaves_no_dir(hierarchy):
    path = f"/kade/test-{uuid.uuid4().hex[:12]}"
    cg = open_cgroup(path, hierarchy)
    with pytest.raises(InvalidArgument):
        cg.create({"cpu": {"cpus": "9999"}})  # no such CPU: the kernel refuses
    assert not cg.exists()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split()[1]
    return "?"


def test_kill_while_frozen(hierarchy, sleeper):
    """docker kill on a paused container: the frozen process still dies."""
    cg = open_cgroup(f"/kade/test-{uuid.uuid4().hex[:12]}", hierarchy)
    cg.create({})
    try:
        cg.add(sleeper.pid)
        cg.freeze()
        cg.kill_all(signal.SIGKILL)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        cg.destroy()
    assert not cg.exists()
