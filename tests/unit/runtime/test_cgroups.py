"""Cgroups against a directory tree standing in for cgroupfs (no root needed)."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from kade.errors import FailedPrecondition, InvalidArgument, NotImplementedYet
from kade.runtime.cgroups import (
    HostFS,
    list_cgroups,
    open_cgroup,
    parse_mountinfo,
    shares_to_weight,
    swap_v2,
)

HYBRID_MOUNTINFO = """\
31 23 0:28 / {root} rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {root}/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / {root}/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / {root}/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / {root}/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / {root}/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / {root}/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / {root}/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / {root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
"""

V2_MOUNTINFO = "30 23 0:26 / {root} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"

RESOURCES = {
    "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
    "pids": {"limit": 20},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
}


class TreeFS(HostFS):
    """cgroupfs in a tmp dir: records writes, can refuse some, removes dirs with
    files in them, and reports a v2 freeze in cgroup.events as the kernel does."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.refuse: dict[str, list[int]] = {}  # file name -> errnos to raise, in turn
        self.busy = 0  # how many rmdirs answer EBUSY before one succeeds

    def write(self, path: str, value: str) -> None:
        name = os.path.basename(path)
        if self.refuse.get(name):
            raise OSError(self.refuse[name].pop(0), os.strerror(errno.EINVAL))
        self.writes.append((path, value))
        super().write(path, value)
        if name == "cgroup.freeze":
            super().write(os.path.join(os.path.dirname(path), "cgroup.events"),
                          f"populated 1\nfrozen {value}\n")

    def rmdir(self, path: str) -> None:
        if self.busy:
            self.busy -= 1
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        for entry in os.scandir(path):
            if entry.is_file():
                os.unlink(entry.path)
        super().rmdir(path)

    def written(self, suffix: str) -> list[str]:
        return [v for p, v in self.writes if p.endswith(suffix)]


def make_hybrid(root: Path):
    for name in ("cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                 "systemd", "unified"):
        (root / name).mkdir()
    (root / "cpuset/cpuset.cpus").write_text("0-3\n")
    (root / "cpuset/cpuset.mems").write_text("0\n")
    (root / "unified/cgroup.controllers").write_text("hugetlb\n")
    return parse_mountinfo(HYBRID_MOUNTINFO.format(root=root), fs=TreeFS())


def make_v2(root: Path):
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    return parse_mountinfo(V2_MOUNTINFO.format(root=root), fs=TreeFS())


@pytest.fixture
def hybrid(tmp_path):
    return make_hybrid(tmp_path)


@pytest.fixture
def v2(tmp_path):
    return make_v2(tmp_path)


# -- finding the hierarchies

def test_parse_hybrid_mountinfo(tmp_path):
    h = parse_mountinfo(HYBRID_MOUNTINFO.format(root="/sys/fs/cgroup"))
    assert h.mode == "hybrid"
    assert h.unified == "/sys/fs/cgroup/unified"
    assert h.v1["cpu"] == h.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert h.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert "xattr" not in h.v1 and len(h.v1_mounts()) == 8


def test_parse_v2_only_and_escapes():
    h = parse_mountinfo(V2_MOUNTINFO.format(root="/sys/fs/cgroup"))
    assert (h.mode, h.v1, h.unified) == ("v2", {}, "/sys/fs/cgroup")
    h = parse_mountinfo("1 2 0:1 / /my\\040cg rw - cgroup cgroup rw,memory\n")
    assert (h.mode, h.v1) == ("v1", {"memory": "/my cg"})


@pytest.mark.parametrize("path,message", [
    ("kade/../x", 'must not contain "." or ".."'), ("/kade/./x", "must not contain"),
    ("/a/../../etc", "must not contain"), ("/", "names no cgroup"), ("", "names no cgroup"),
    ("/kade", "names no cgroup")])
def test_bad_cgroup_paths(hybrid, path, message):
    with pytest.raises(InvalidArgument, match=f'^cgroup path "{re.escape(path)}" {message}'):
        open_cgroup(path, hybrid)


def test_absolute_path_is_from_each_hierarchy_root(hybrid, tmp_path):
    cg = open_cgroup("/cgrouptest/c", hybrid)
    cg.create({"pids": {"limit": 20}})
    assert (tmp_path / "pids/cgrouptest/c/pids.max").read_text() == "20"
    assert (tmp_path / "memory/cgrouptest/c").is_dir()
    cg.destroy()
    assert not (tmp_path / "pids/cgrouptest/c").exists()
    assert (tmp_path / "pids/cgrouptest").is_dir()   # not Kade's to remove


def test_relative_path_is_below_kades_parent(hybrid, tmp_path):
    cg = open_cgroup("testdir/cgrouptest/container", hybrid)
    assert cg.path == "/kade/testdir/cgrouptest/container"
    cg.create({"pids": {"limit": 20}})
    assert (tmp_path / "pids/kade/testdir/cgrouptest/container/pids.max").read_text() == "20"
    cg.destroy()
    assert not (tmp_path / "pids/kade/testdir").exists()  # the dirs it made are gone
    assert (tmp_path / "pids/kade").is_dir()


# -- creating and limiting

def test_create_on_hybrid_puts_limits_in_v1(hybrid, tmp_path):
    cg = open_cgroup("/kade/c1", hybrid)
    cg.create(RESOURCES)
    fs = hybrid.fs
    for mount in hybrid.v1_mounts() + [hybrid.unified]:
        assert os.path.isdir(os.path.join(mount, "kade/c1"))
    assert fs.written("memory/kade/c1/memory.limit_in_bytes") == [str(64 << 20)]
    assert fs.written("memory/kade/c1/memory.memsw.limit_in_bytes") == [str(128 << 20)]
    assert fs.written("memory/kade/c1/memory.soft_limit_in_bytes") == [str(32 << 20)]
    assert fs.written("kade/c1/cpu.shares") == ["512"]
    assert fs.written("kade/c1/cpu.cfs_quota_us") == ["50000"]
    assert fs.written("kade/c1/cpu.cfs_period_us") == ["100000"]
    assert fs.written("kade/c1/pids.max") == ["20"]
    assert fs.written("kade/c1/devices.deny") == ["a *:* rwm"]
    # the spec's rules, then what runc always allows: making any node (not opening
    # it), the default devices, and new ptys (/dev/ptmx, /dev/pts/*)
    assert fs.written("kade/c1/devices.allow") == [
        "c 1:3 rwm", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rw", "c 136:* rw"]
    # cpuset dirs inherit before the container's own cpus land
    assert fs.written("cpuset/kade/cpuset.cpus") == ["0-3"]
    assert fs.written("cpuset/kade/c1/cpuset.cpus") == ["0-3", "0-1"]
    assert fs.written("cgroup.subtree_control") == []  # unified offers none of ours
    assert list_cgroups(hybrid) == ["/kade/c1"]


def test_create_on_v2_enables_controllers_and_converts(v2, tmp_path):
    cg = open_cgroup("/kade/c2", v2)
    cg.create(RESOURCES)
    fs = v2.fs
    enable = "+cpu +cpuset +io +memory +pids"
    assert fs.written(f"{tmp_path}/cgroup.subtree_control") == [enable]
    assert fs.written("kade/cgroup.subtree_control") == [enable]
    assert fs.written("c2/memory.max") == [str(64 << 20)]
    assert fs.written("c2/memory.swap.max") == [str(64 << 20)]  # (mem+swap) - mem
    assert fs.written("c2/memory.low") == [str(32 << 20)]
    assert fs.written("c2/cpu.weight") == [str(shares_to_weight(512))]
    assert fs.written("c2/cpu.max") == ["50000 100000"]
    assert fs.written("c2/cpuset.cpus") == ["0-1"]
    assert fs.written("c2/pids.max") == ["20"]
    assert not any("devices" in p for p, _ in fs.writes)  # v2 needs eBPF: not done


def test_default_devices_stay_allowed_after_a_deny(hybrid):
    """A spec that denies everything, or /dev/null itself, still gets the runtime-spec's
    default devices: their allow rules come after the spec's."""
    cg = open_cgroup("/kade/dd", hybrid)
    cg.create({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3}]})
    writes = [(os.path.basename(p), v) for p, v in hybrid.fs.writes if "/devices/" in p]
    null_rules = [w for w in writes if w[1].startswith(("a ", "c 1:3 "))]
    assert null_rules == [("devices.deny", "a *:* rwm"), ("devices.deny", "c 1:3 rwm"),
                          ("devices.allow", "c 1:3 rwm")]
    assert ("devices.allow", "c 1:9 rwm") in writes and ("devices.allow", "c 5:0 rwm") in writes


@pytest.mark.parametrize(("key", "value"), [
    ("hugepageLimits", [{"pageSize": "2MB", "limit": 1 << 21}]),
    ("network", {"classID": 1048577}), ("rdma", {"mlx5_1": {"hcaHandles": 3}}),
    ("unified", {"memory.high": "1G"})])
def test_resources_no_controller_applies_are_refused(hybrid, tmp_path, key, value):
    with pytest.raises(NotImplementedYet, match=f"^linux.resources.{key} .* not supported yet$"):
        open_cgroup("/kade/u", hybrid).create({key: value})
    assert not list(tmp_path.glob("*/kade"))
    open_cgroup("/kade/u", hybrid).create({key: type(value)()})   # empty: nothing asked


def test_failed_create_leaves_nothing(hybrid, tmp_path):
    hybrid.fs.refuse["pids.max"] = [errno.EINVAL, errno.EINVAL]
    with pytest.raises(InvalidArgument, match='cannot set cgroup pids.max to "20"'):
        open_cgroup("/kade/c3", hybrid).create(RESOURCES)
    assert not list(tmp_path.glob("*/kade"))


def test_refused_write_is_retried_after_its_partner(hybrid):
    # memory.limit_in_bytes above the current memsw limit is refused until memsw rises
    hybrid.fs.refuse["memory.limit_in_bytes"] = [errno.EINVAL]
    open_cgroup("/kade/c4", hybrid).create(RESOURCES)
    names = [os.path.basename(p) for p, _ in hybrid.fs.writes if "/memory/kade/c4/" in p]
    assert names.index("memory.memsw.limit_in_bytes") < names.index("memory.limit_in_bytes")


def test_missing_optional_file_is_skipped(hybrid):
    hybrid.fs.refuse["memory.memsw.limit_in_bytes"] = [errno.EACCES, errno.EACCES]
    open_cgroup("/kade/c5", hybrid).create(RESOURCES)  # no swap accounting: no error
    assert hybrid.fs.written("memory.memsw.limit_in_bytes") == []


def test_busy_write_is_a_failed_precondition(hybrid):
    cg = open_cgroup("/kade/c6", hybrid)
    cg.create({})
    hybrid.fs.refuse["memory.limit_in_bytes"] = [errno.EBUSY, errno.EBUSY]
    with pytest.raises(FailedPrecondition):
        cg.update({"memory": {"limit": 1 << 20}})


def test_update_unlimited_memory_lifts_swap_too(hybrid, v2):
    for h, files in ((hybrid, ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]),
                     (v2, ["memory.max", "memory.swap.max"])):
        cg = open_cgroup("/kade/c7", h)
        cg.create({})
        cg.update({"memory": {"limit": -1}})
        assert [h.fs.written(f) for f in files] == [["max" if h is v2 else "-1"]] * 2


# -- conversions

@pytest.mark.parametrize("shares,weight", [(2, 1), (1, 1), (512, 59), (1024, 100),
                                           (2048, 174), (262144, 10000), (10**6, 10000)])
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize("swap,limit,v2", [(0, 100, 0), (-1, 100, -1), (0, -1, -1),
                                           (300, 100, 200), (100, 100, 0)])
def test_swap_v2(swap, limit, v2):
    assert swap_v2(swap, limit) == v2


@pytest.mark.parametrize("swap,limit", [(300, 0), (50, 100)])
def test_swap_v2_rejects(swap, limit):
    with pytest.raises(InvalidArgument):
        swap_v2(swap, limit)


# -- freezer, processes, stats

def test_freeze_thaw_v1_and_v2(hybrid, v2):
    for h in (hybrid, v2):
        cg = open_cgroup("/kade/f", h)
        cg.create({})
        cg.freeze()
        assert cg.is_frozen()
        cg.thaw()
        assert not cg.is_frozen()
    assert hybrid.fs.written("freezer/kade/f/freezer.state") == ["FROZEN", "THAWED"]
    assert v2.fs.written("kade/f/cgroup.freeze") == ["1", "0"]


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_kill_all_signals_each_pid_while_frozen(hybrid, sleeper):
    cg = open_cgroup("/kade/k", hybrid)
    cg.create({})
    cg.add(sleeper.pid)
    assert hybrid.fs.written("unified/kade/k/cgroup.procs") == [str(sleeper.pid)]
    assert cg.pids() == [sleeper.pid]
    cg.kill_all(signal.SIGTERM)
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert hybrid.fs.written("freezer.state") == ["FROZEN", "THAWED"]


def test_kill_all_prefers_cgroup_kill(v2, sleeper):
    cg = open_cgroup("/kade/k2", v2)
    cg.create({})
    cg.add(sleeper.pid)
    Path(v2.unified, "kade/k2/cgroup.kill").write_text("0\n")
    cg.kill_all()
    assert v2.fs.written("kade/k2/cgroup.kill") == ["1"]
    assert sleeper.poll() is None  # the fake kernel kills nobody


def test_stats_v1(hybrid):
    cg = open_cgroup("/kade/s", hybrid)
    cg.create({})
    d = Path(hybrid.v1["memory"]).parent
    (d / "memory/kade/s/memory.usage_in_bytes").write_text("4096\n")
    (d / "memory/kade/s/memory.limit_in_bytes").write_text("9223372036854771712\n")
    (d / "cpu,cpuacct/kade/s/cpuacct.usage").write_text("123456\n")
    (d / "pids/kade/s/pids.current").write_text("3\n")
    (d / "blkio/kade/s/blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 100\n8:0 Write 7\n8:16 Read 1\nTotal 108\n")
    (d / "memory/kade/s/memory.stat").write_text("cache 10\ntotal_inactive_file 1024\n")
    assert cg.stats() == {"memory_usage": 4096, "memory_limit": None, "cpu_usage_ns": 123456,
                          "pids_current": 3, "blkio_read_bytes": 101, "blkio_write_bytes": 7,
                          "memory_inactive_file": 1024}


def test_stats_v2(v2):
    cg = open_cgroup("/kade/s", v2)
    cg.create({"memory": {"limit": 1 << 20}})
    d = Path(v2.unified, "kade/s")
    (d / "memory.current").write_text("8192\n")
    (d / "cpu.stat").write_text("usage_usec 50\nuser_usec 40\n")
    (d / "cgroup.procs").write_text("")
    (d / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n")
    assert cg.stats() == {"memory_usage": 8192, "memory_limit": 1 << 20, "cpu_usage_ns": 50000,
                          "pids_current": 0, "blkio_read_bytes": 10, "blkio_write_bytes": 20,
                          "memory_inactive_file": None}


@pytest.mark.parametrize("text,killed", [
    ("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", False),
    ("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", True),
    ("oom_kill_disable 1\nunder_oom 1\n", True),  # before kernel 4.13: no counter
    ("oom_kill_disable 0\nunder_oom 0\n", False),
])
def test_oom_killed_v1(hybrid, text, killed):
    cg = open_cgroup("/kade/o", hybrid)
    cg.create({})
    Path(hybrid.v1["memory"], "kade/o/memory.oom_control").write_text(text)
    assert cg.oom_killed() is killed


@pytest.mark.parametrize("text,killed", [
    ("low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n", False),
    ("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n", True),
])
def test_oom_killed_v2(v2, text, killed):
    cg = open_cgroup("/kade/o", v2)
    cg.create({"memory": {"limit": 1 << 20}})
    Path(v2.unified, "kade/o/memory.events").write_text(text)
    assert cg.oom_killed() is killed


# -- destroying

def test_destroy_removes_dirs_but_keeps_the_parent(hybrid, tmp_path):
    cg = open_cgroup("/kade/d", hybrid)
    cg.create(RESOURCES)
    cg.destroy()
    assert not cg.exists()
    assert list_cgroups(hybrid) == []
    assert (tmp_path / "memory/kade").is_dir()
    cg.destroy()  # twice is fine


def test_destroy_retries_while_busy(v2, tmp_path):
    cg = open_cgroup("/kade/d2", v2)
    cg.create({})
    v2.fs.busy = 2
    cg.destroy()
    assert not (tmp_path / "kade/d2").exists()


def test_destroy_gives_up_when_it_stays_busy(v2):
    cg = open_cgroup("/kade/d3", v2)
    cg.create({})
    v2.fs.busy = 10**9
    with pytest.raises(FailedPrecondition, match='cannot remove cgroup "/kade/d3"'):
        cg.destroy(timeout=0.05)


def test_hybrid_goes_without_v2_dir_it_cannot_make(hybrid, tmp_path):
    (tmp_path / "unified/cgroup.controllers").write_text("memory2 pids\n")  # pids only on v2
    hybrid.fs.refuse["cgroup.subtree_control"] = [errno.EBUSY, errno.EBUSY]
    cg = open_cgroup("/kade/h", hybrid)
    cg.create({})
    assert not (tmp_path / "unified/kade").exists()
    assert cg.exists() and os.path.isdir(tmp_path / "memory/kade/h")


def test_v2_only_fails_whole_when_subtree_control_is_refused(v2, tmp_path):
    v2.fs.refuse["cgroup.subtree_control"] = [errno.EBUSY, errno.EBUSY]
    with pytest.raises(FailedPrecondition, match="subtree_control"):
        open_cgroup("/kade/h2", v2).create({})
    assert not (tmp_path / "kade").exists()


def test_block_io(hybrid, v2):
    bio = {"blockIO": {"weight": 500,
                       "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}}
    open_cgroup("/kade/b", hybrid).create(bio)
    open_cgroup("/kade/b", v2).create(bio)
    assert hybrid.fs.written("kade/b/blkio.weight") == ["500"]
    assert hybrid.fs.written("kade/b/blkio.throttle.read_bps_device") == ["8:0 1048576"]
    assert v2.fs.written("kade/b/io.weight") == ["default 4950"]  # runc: 1 + (w - 10) * 9999 / 990
    assert v2.fs.written("kade/b/io.max") == ["8:0 rbps=1048576"]
