"""What the OCI runtime-tools suite found, fixed and held for real: runc spec's default
bundle, default and configured devices, cgroupsPath forms, unappliable properties."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from runtime_harness import cgroup_dirs

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CHECKS = ("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status; "
          "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; "
          "head -c 4 /dev/urandom | wc -c")


def _cli(harness, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root",
                           harness.rt.state_root, *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(not os.path.exists(RUNC), reason="needs runc (apt-get install runc)")
def test_runc_specs_default_bundle_runs_as_under_runc(harness, tmp_path):
    """`runc spec` lists ambient caps without inheritable ones and denies every device:
    both runtimes raise what they can and still give the default devices."""
    cid, bundle = harness.bundle(["true"])
    os.unlink(os.path.join(bundle, "config.json"))
    subprocess.run([RUNC, "spec"], cwd=bundle, check=True)
    spec = harness.spec(bundle)
    assert spec["process"]["capabilities"]["ambient"] and \
        "inheritable" not in spec["process"]["capabilities"]
    spec["process"].update(terminal=False, args=["sh", "-c", CHECKS])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    ours = _cli(harness, "run", "--bundle", bundle, cid)
    theirs = subprocess.run([RUNC, "--root", str(tmp_path / "runc"), "run", "--bundle", bundle,
                             cid + "-runc"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert "null-ok\n4\n4\n" in ours.stdout


def test_default_devices_open_under_a_deny_all_rule(harness):
    cid, bundle = harness.bundle(["sh", "-c", CHECKS + "; head -c 1 /dev/full | wc -c"])
    spec = harness.spec(bundle)
    spec["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    code, out = _run(harness, cid, bundle, spec)
    assert code == 0, out
    assert out.endswith("null-ok\n4\n4\n1\n")


def test_linux_devices_are_made_with_their_type_mode_and_owner(harness):
    script = ("for d in /dev/c1 /dev/sub/b1 /dev/p1; do stat -c '%n %F %t:%T %a %u:%g' $d; "
              "done; (echo x > /dev/c1) 2>/dev/null || echo c1-denied")
    cid, bundle = harness.bundle(["sh", "-c", script])
    spec = harness.spec(bundle)
    spec["linux"]["devices"] = [
        {"path": "/dev/c1", "type": "c", "major": 10, "minor": 237, "fileMode": 0o640,
         "uid": 12, "gid": 34},
        {"path": "/dev/sub/b1", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
        {"path": "/dev/p1", "type": "p", "fileMode": 0o660}]
    spec["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    code, out = _run(harness, cid, bundle, spec)
    assert code == 0, out
    assert out.splitlines() == [
        "/dev/c1 character special file a:ed 640 12:34",
        "/dev/sub/b1 block special file 7:0 600 0:0",
        "/dev/p1 fifo 0:0 660 0:0",
        "c1-denied"]        # made, as the spec lists it; opened only if a rule allows


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_cgroups_path_forms(harness, form):
    cid, bundle = harness.bundle(["sh", "-c", "grep -E ':pids:' /proc/self/cgroup"])
    path = f"/kt-abs-{cid}/inner" if form == "absolute" else f"kt-rel/{cid}"
    host_path = path if form == "absolute" else f"/kade/{path}"
    spec = harness.spec(bundle)
    spec["linux"]["cgroupsPath"] = path
    spec["linux"]["resources"] = {"pids": {"limit": 42}}
    try:
        _write(bundle, spec)
        pid = harness.create(cid, bundle)
        with open(f"/sys/fs/cgroup/pids{host_path}/pids.max") as f:
            assert f.read().strip() == "42"
        harness.rt.start(cid)
        assert harness.wait(pid) == 0
        harness.rt.delete(cid)
        assert cgroup_dirs(host_path) == []
    finally:
        for d in cgroup_dirs(host_path) + cgroup_dirs(os.path.dirname(host_path)):
            if os.path.basename(d) not in ("kade", ""):
                os.rmdir(d)


@pytest.mark.parametrize(("where", "value", "message"), [
    ("capability", "CAP_TEST", 'unknown capability "CAP_TEST" in process.capabilities.bounding'),
    ("apparmor", "acme_secure_profile", 'process.apparmorProfile "acme_secure_profile" cannot '
                                        "be applied: AppArmor is not enabled on this host"),
    ("mountLabel", "system_u:object_r:svirt_sandbox_file_t:s0",
     "linux.mountLabel \"system_u:object_r:svirt_sandbox_file_t:s0\" cannot be applied: "
     "SELinux is not enabled on this host"),
])
def test_unappliable_properties_fail_create_and_leave_nothing(harness, where, value, message):
    if where == "apparmor" and os.path.exists("/sys/module/apparmor"):
        pytest.skip("this host has AppArmor")
    if where == "mountLabel" and os.path.exists("/sys/fs/selinux"):
        pytest.skip("this host has SELinux")
    cid, bundle = harness.bundle(["true"])
    spec = harness.spec(bundle)
    if where == "capability":
        spec["process"]["capabilities"]["bounding"].append(value)
    elif where == "apparmor":
        spec["process"]["apparmorProfile"] = value
    else:
        spec["linux"]["mountLabel"] = value
    _write(bundle, spec)
    r = _cli(harness, "create", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert r.stderr == f"error: {message}\n"
    assert harness.rt.list() == [] and cgroup_dirs(f"/kade/{cid}") == []


def _write(bundle: str, spec: dict) -> None:
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)


def _run(harness, cid: str, bundle: str, spec: dict) -> tuple[int, str]:
    _write(bundle, spec)
    return harness.run_bundle(cid, bundle)




def test_a_device_path_through_an_image_symlink_stays_in_the_root(harness, tmp_path):
    """The attack: an image symlink aims a linux.devices path at a host directory. The
    node must be made inside the rootfs (the symlink resolved in the root), never on
    the host."""
    host_dir = tmp_path / "host-side"
    host_dir.mkdir()
    cid, bundle = harness.bundle(["sh", "-c", f"stat -c %F {host_dir}/node"])
    os.symlink(str(host_dir), os.path.join(bundle, "rootfs", "escape"))
    spec = harness.spec(bundle)
    spec["linux"]["devices"] = [{"path": "/escape/node", "type": "c", "major": 1,
                                 "minor": 3, "fileMode": 0o666}]
    code, out = _run(harness, cid, bundle, spec)
    assert os.listdir(host_dir) == []
    assert (code, out) == (0, "character special file\n")
