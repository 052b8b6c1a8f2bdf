"""Docker's spec defaults: paths, mounts, and the seccomp profile resolved per caps/arch."""

from __future__ import annotations

import pytest

from kade.errors import InvalidArgument
from kade.oci import defaults
from kade.oci.defaults import DEFAULT_CAPS, default_seccomp


def allowed(spec: dict) -> set[str]:
    """Names allowed without conditions."""
    return {n for r in spec["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def rules_for(spec: dict, name: str) -> list[dict]:
    return [r for r in spec["syscalls"] if name in r["names"]]


def test_docker_profile_shape():
    profile = defaults.docker_profile()
    assert (profile["defaultAction"], profile["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert {"read", "write", "execve", "epoll_wait", "io_setup"} <= \
        set(profile["syscalls"][0]["names"])
    assert defaults.docker_profile() is not defaults.docker_profile()


def test_default_seccomp_without_sys_admin():
    spec = default_seccomp(DEFAULT_CAPS, arch="x86_64", kernel="6.1.0")
    assert spec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert (spec["defaultAction"], spec["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert "archMap" not in spec
    names = allowed(spec)
    assert {"chroot", "arch_prctl", "modify_ldt", "ptrace"} <= names  # SYS_CHROOT, amd64, 4.8+
    assert not {"mount", "unshare", "setns", "keyctl", "reboot", "bpf"} & names
    assert rules_for(spec, "clone")[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    assert rules_for(spec, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                          "errnoRet": 38}]
    assert not any({"includes", "excludes", "comment"} & r.keys() for r in spec["syscalls"])


def test_default_seccomp_with_sys_admin_and_others():
    spec = default_seccomp(DEFAULT_CAPS + ["CAP_SYS_ADMIN", "CAP_SYS_TIME"], kernel="6.1")
    names = allowed(spec)
    assert {"mount", "unshare", "setns", "clone", "clone3", "settimeofday"} <= names
    assert all(not r.get("args") for r in rules_for(spec, "clone"))
    assert not [r for r in rules_for(spec, "clone3") if r["action"] != "SCMP_ACT_ALLOW"]


def test_default_seccomp_by_arch_and_kernel():
    arm = default_seccomp(DEFAULT_CAPS, arch="aarch64", kernel="6.1")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arm_fadvise64_64" in allowed(arm) and "arch_prctl" not in allowed(arm)
    old = default_seccomp(DEFAULT_CAPS, arch="x86_64", kernel="4.4.0-21-generic")
    assert "ptrace" not in allowed(old)


def test_default_seccomp_rejects_unknown_arch():
    with pytest.raises(InvalidArgument, match="unsupported architecture"):
        default_seccomp(DEFAULT_CAPS, arch="vax")


def test_profile_with_old_single_name_rules():
    profile = {"defaultAction": "SCMP_ACT_ERRNO",
               "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW", "comment": "x"}]}
    spec = defaults.seccomp_from_profile(profile, [], kernel="6.1")
    assert spec["syscalls"] == [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]


def test_paths():
    assert "/proc/kcore" in defaults.MASKED_PATHS and "/sys/firmware" in defaults.MASKED_PATHS
    assert defaults.READONLY_PATHS == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                       "/proc/sysrq-trigger"]


def test_masked_paths_adds_thermal_throttle(tmp_path):
    (tmp_path / "devices/system/cpu/cpu0/thermal_throttle").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/cpu1").mkdir()
    assert defaults.masked_paths(str(tmp_path)) == defaults.MASKED_PATHS + [
        "/sys/devices/system/cpu/cpu0/thermal_throttle"]


def test_default_mounts():
    mounts = {m["destination"]: m for m in defaults.default_mounts()}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                            "/dev/mqueue", "/dev/shm"]
    assert mounts["/dev/shm"]["options"][-1] == "size=65536k"
    assert mounts["/sys"]["type"] == "sysfs" and "ro" in mounts["/sys"]["options"]


def test_device_rules_deny_first():
    rules = defaults.DEFAULT_DEVICE_RULES
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "access": "rwm", "type": "c", "major": 1, "minor": 3} in rules


def test_cpu_quota():
    assert defaults.cpu_quota(0.5) == (50000, 100000)
    assert defaults.cpu_quota(2) == (200000, 100000)
    with pytest.raises(InvalidArgument):
        defaults.cpu_quota(0)


def test_capabilities_spec():
    assert defaults.capabilities_spec(["CAP_KILL"]) == {
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
