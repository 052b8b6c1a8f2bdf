"""Kade's seccomp profile against docker's, syscall by syscall.

Kade's profile is moby's current one, except where docker 20.10 is stricter on a
syscall it names (kade.oci.defaults' docstring gives the comparison). Both of docker's
profiles are kept as published in testdata/seccomp; every syscall is resolved for
every capability set, several arches and an old and a new kernel, and must come out
as in the profile it is taken from.
"""

from __future__ import annotations

import json
import os

import pytest

from kade.oci import defaults
from kade.oci.defaults import ALL_CAPS, DEFAULT_CAPS

DATA = os.path.join(os.path.dirname(__file__), "testdata", "seccomp")

# syscalls where current moby is looser than docker 20.10: Kade keeps 20.10's rules
FROM_DOCKER_20_10 = {"process_vm_readv", "process_vm_writev", "name_to_handle_at",
                     "bpf", "perf_event_open"}

CAP_SETS = [("default", DEFAULT_CAPS), ("all", ALL_CAPS)] + [
    (f"+{c}", DEFAULT_CAPS + [c]) for c in ALL_CAPS if c not in DEFAULT_CAPS]
ENVS = [(arch, kernel) for arch in ("x86_64", "aarch64", "s390x", "riscv64", "ppc64le")
        for kernel in ("4.4", "6.1")]


def load(name: str) -> dict:
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


MOBY = load("moby-current.json")
DOCKER_20_10 = load("docker-20.10.24.json")


def by_syscall(profile: dict, caps: list[str], arch: str, kernel: str) -> dict:
    """syscall -> its rules (action, errno, conditions), once includes/excludes resolved."""
    out: dict[str, list] = {}
    for rule in defaults.seccomp_from_profile(profile, caps, arch, kernel)["syscalls"]:
        key = (rule["action"], rule.get("errnoRet"),
               json.dumps(rule.get("args") or [], sort_keys=True))
        for name in rule["names"]:
            out.setdefault(name, []).append(key)
    return {name: sorted(keys) for name, keys in out.items()}


def test_profile_header_is_mobys():
    kade = defaults.docker_profile()
    assert {k: v for k, v in kade.items() if k != "syscalls"} == \
        {k: v for k, v in MOBY.items() if k != "syscalls"}


@pytest.mark.parametrize("arch,kernel", ENVS)
def test_every_syscall_resolves_as_in_docker(arch, kernel):
    kade = defaults.docker_profile()
    for label, caps in CAP_SETS:
        mine = by_syscall(kade, caps, arch, kernel)
        moby = by_syscall(MOBY, caps, arch, kernel)
        old = by_syscall(DOCKER_20_10, caps, arch, kernel)
        for name in sorted(set(mine) | set(moby) | set(old)):
            want = old if name in FROM_DOCKER_20_10 else moby
            assert mine.get(name) == want.get(name), (name, label, arch, kernel)


def test_kept_20_10_rules_are_the_stricter_ones():
    # each deviation from moby must deny somewhere moby allows, never the reverse
    kade = defaults.docker_profile()
    for name in FROM_DOCKER_20_10:
        stricter = False
        for _, caps in CAP_SETS:
            mine = by_syscall(kade, caps, "x86_64", "6.1").get(name)
            moby = by_syscall(MOBY, caps, "x86_64", "6.1").get(name)
            assert not (mine and not moby), (name, caps)
            stricter |= bool(moby and not mine)
        assert stricter, name


def allowed(caps: list[str], name: str, kernel: str = "6.1") -> list:
    return by_syscall(defaults.docker_profile(), caps, "x86_64", kernel).get(name, [])


@pytest.mark.parametrize("name,cap", [("process_vm_readv", "CAP_SYS_PTRACE"),
                                      ("process_vm_writev", "CAP_SYS_PTRACE"),
                                      ("name_to_handle_at", "CAP_SYS_ADMIN"),
                                      ("bpf", "CAP_SYS_ADMIN"),
                                      ("perf_event_open", "CAP_SYS_ADMIN")])
def test_denied_without_the_capability(name, cap):
    assert allowed(DEFAULT_CAPS, name) == []
    assert allowed(DEFAULT_CAPS + [cap], name) == [("SCMP_ACT_ALLOW", None, "[]")]


def test_ptrace_from_kernel_4_8_and_io_uring_never():
    assert allowed(DEFAULT_CAPS, "ptrace") == [("SCMP_ACT_ALLOW", None, "[]")]
    assert allowed(DEFAULT_CAPS, "ptrace", kernel="4.4") == []
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert allowed(ALL_CAPS, name) == []


def test_socket_allows_every_family_but_af_alg_and_af_vsock():
    conditions = [json.loads(args)[0] for action, _, args in allowed(DEFAULT_CAPS, "socket")]
    assert all(c["index"] == 0 for c in conditions)

    def passes(family: int) -> bool:
        ops = {"SCMP_CMP_LT": family.__lt__, "SCMP_CMP_EQ": family.__eq__,
               "SCMP_CMP_GT": family.__gt__}
        return any(ops[c["op"]](c["value"]) for c in conditions)

    assert [f for f in range(64) if not passes(f)] == [38, 40]  # AF_ALG, AF_VSOCK


def test_clone3_is_enosys_without_sys_admin():
    assert allowed(DEFAULT_CAPS, "clone3") == [("SCMP_ACT_ERRNO", 38, "[]")]
