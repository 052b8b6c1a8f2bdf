"""User, inherited and joined namespaces and rootfs propagation with real containers
(root only; see conftest)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from kade.oci import defaults
from kade.runtime import linux as L

HOST_ID = 100000
MAPS = {"uidMappings": [{"containerID": 0, "hostID": HOST_ID, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]}


@pytest.fixture
def open_dir():
    """A directory the container's mapped root can reach (pytest's are 0700 root's)."""
    path = tempfile.mkdtemp(prefix="kade-userns-")
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _write(bundle, spec):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)


def _chown_tree(path, uid):
    for top, dirs, files in os.walk(path):
        for name in (top, *[os.path.join(top, n) for n in dirs + files]):
            os.chown(name, uid, uid, follow_symlinks=False)


def _userns_bundle(harness, open_dir, args):
    harness.root = open_dir
    cid, bundle = harness.bundle(args)
    os.chmod(bundle, 0o711)
    _chown_tree(os.path.join(bundle, "rootfs"), HOST_ID)
    data = os.path.join(open_dir, "data")
    os.mkdir(data)
    os.chown(data, HOST_ID, HOST_ID)
    spec = harness.spec(bundle)
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"].update(MAPS)
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": data,
                           "options": ["rbind", "rw"]})
    _write(bundle, spec)
    return cid, bundle, data


def test_user_namespace_maps_root_to_the_host_id(harness, open_dir):
    cid, bundle, data = _userns_bundle(harness, open_dir, [
        "sh", "-c", "id -u; cat /proc/self/uid_map; touch /data/made; ls /dev/null"])
    code, out = harness.run_bundle(cid, bundle)
    assert code == 0, out
    lines = out.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(HOST_ID), "65536"]
    assert os.stat(os.path.join(data, "made")).st_uid == HOST_ID


def test_user_namespace_as_the_host_sees_it(harness, open_dir):
    cid, bundle, _ = _userns_bundle(harness, open_dir, ["sleep", "100"])
    pid = harness.create(cid, bundle)
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", str(HOST_ID), "65536"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    harness.rt.start(cid)
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(HOST_ID)] * 4
    # exec joins the user namespace too
    r, w = os.pipe()
    child = harness.rt.exec(cid, {"args": ["id", "-u"], "env": ["PATH=/bin"], "cwd": "/"},
                            stdio=(None, w, w))
    os.close(w)
    assert os.waitpid(child, 0)[1] == 0
    assert os.read(r, 100) == b"0\n"
    os.close(r)
    harness.rt.kill(cid, signal.SIGKILL)
    harness.wait(pid)
    harness.rt.delete(cid)


def test_a_namespace_not_listed_is_the_callers(harness):
    cid, bundle = harness.bundle(["readlink", "/proc/self/ns/net"])
    spec = harness.spec(bundle)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"]
    _write(bundle, spec)
    code, out = harness.run_bundle(cid, bundle)
    assert (code, out.strip()) == (0, os.readlink("/proc/self/ns/net"))


def _mountinfo_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4].startswith(path)]


def test_without_a_mount_namespace_it_chroots_and_unmounts_at_delete(harness):
    cid, bundle = harness.bundle(["sh", "-c", "readlink /proc/self/ns/mnt; cat /etc/marker"])
    spec = harness.spec(bundle)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "mount"]
    del spec["linux"]["maskedPaths"], spec["linux"]["readonlyPaths"]
    _write(bundle, spec)
    code, out = harness.run_bundle(cid, bundle)
    assert (code, out.split("\n")[:2]) == (0, [os.readlink("/proc/self/ns/mnt"), "rootfs"])
    assert _mountinfo_under(os.path.join(bundle, "rootfs")) == []


def test_joining_a_mount_namespace_by_path(harness):
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                               "sleep", "1000"])
    try:
        ns = f"/proc/{holder.pid}/ns/mnt"
        while os.readlink(ns) == os.readlink("/proc/self/ns/mnt"):
            os.sched_yield()             # unshare has not unshared yet
        cid, bundle = harness.bundle(["readlink", "/proc/self/ns/mnt"])
        spec = harness.spec(bundle)
        for n in spec["linux"]["namespaces"]:
            if n["type"] == "mount":
                n["path"] = ns
        _write(bundle, spec)
        code, out = harness.run_bundle(cid, bundle)
        assert (code, out.strip()) == (0, os.readlink(ns))
    finally:
        holder.kill()
        holder.wait()


def _propagation_bundle(harness, tmp_path, propagation):
    shared = tmp_path / "shared"
    shared.mkdir()
    L.Syscalls().mount("tmpfs", str(shared), "tmpfs", 0, "size=1m")
    L.Syscalls().mount(None, str(shared), None, L.MS_SHARED)
    cid, bundle = harness.bundle(["sh", "-c", "mount -t tmpfs tmpfs /shared/sub && "
                                  "cat /proc/self/mountinfo"])
    spec = harness.spec(bundle)
    spec["linux"]["rootfsPropagation"] = propagation
    spec["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                           "options": ["rbind", "rw"]})
    spec["process"]["capabilities"] = defaults.capabilities_spec(
        [*defaults.DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    (shared / "sub").mkdir()
    _write(bundle, spec)
    return cid, bundle, shared


def _fields(mountinfo, point):
    line = next(line for line in mountinfo.splitlines() if line.split()[4] == point)
    return line.split(" - ")[0].split()[6:]


@pytest.mark.parametrize("propagation", ["shared", "rshared"])
def test_shared_propagation_reaches_the_host(harness, tmp_path, propagation):
    cid, bundle, shared = _propagation_bundle(harness, tmp_path, propagation)
    try:
        code, out = harness.run_bundle(cid, bundle)
        assert code == 0, out
        assert any(f.startswith("shared:") for f in _fields(out, "/"))
        assert any(f.startswith("shared:") for f in _fields(out, "/shared"))
        # the tmpfs the container mounted is the host's too
        assert os.path.ismount(shared / "sub")
    finally:
        for path in (shared / "sub", shared / "sub", shared):
            if os.path.ismount(path):
                L.Syscalls().umount2(str(path), L.MNT_DETACH)


def test_private_propagation_keeps_container_mounts_from_the_host(harness, tmp_path):
    cid, bundle, shared = _propagation_bundle(harness, tmp_path, "private")
    try:
        code, out = harness.run_bundle(cid, bundle)
        assert code == 0, out
        assert not os.path.ismount(shared / "sub")
    finally:
        L.Syscalls().umount2(str(shared), L.MNT_DETACH)


def test_unbindable_root(harness):
    cid, bundle = harness.bundle(["cat", "/proc/self/mountinfo"])
    spec = harness.spec(bundle)
    spec["linux"]["rootfsPropagation"] = "unbindable"
    _write(bundle, spec)
    code, out = harness.run_bundle(cid, bundle)
    assert code == 0, out
    assert "unbindable" in _fields(out, "/")
    assert "unbindable" not in _fields(out, "/proc")
