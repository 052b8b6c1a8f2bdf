"""Docker's default confinement, attacked for real: OOM kills are recorded, device nodes
may be made but not opened, the seccomp profile denies what docker's denies, the
seccomp cache is the root's own, and a failed RUN ends a build as docker's does.

The seccomp attacks are the suite's static C probe (probes/probe.c, built with gcc at
test time by attack_probe: busybox cannot make these syscalls).
"""

from __future__ import annotations

import glob
import os
import time

from attack_probe import attacks



# --- OOM ------------------------------------------------------------------------------

# the shell keeps the whole substitution in memory: 256 MB, far over 32m (+ 32m swap)
HOG = "x=$(head -c 256m /dev/zero | tr '\\0' a); echo survived"


def test_an_oom_killed_container_says_so(kade):
    p = kade("run", "--name", "hog", "-m", "32m", "busybox", "sh", "-c", HOG, check=False)
    assert (p.returncode, p.stdout) == (137, ""), p.stderr  # SIGKILLed, as under docker
    state = kade("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog").stdout
    assert state.split() == ["true", "137"]
    assert "Exited (137)" in kade("ps", "-a", "--filter", "name=hog").stdout
    until = f"{time.time():.9f}"  # now: everything before it, without waiting
    events = kade("events", "--since", "5m", "--until", until, "--filter", "container=hog",
                  "--format", "{{.Action}}").stdout.split()
    assert events[-2:] == ["oom", "die"]
    kade("rm", "hog")


def test_a_container_within_its_limit_is_not_oom_killed(kade):
    kade("run", "--name", "frugal", "-m", "32m", "busybox", "sh", "-c",
         "x=$(head -c 1m /dev/zero | tr '\\0' a)")
    assert kade("inspect", "-f", "{{.State.OOMKilled}}", "frugal").stdout.strip() == "false"
    kade("rm", "frugal")


# --- device nodes ---------------------------------------------------------------------

def test_device_nodes_can_be_made_but_not_opened(kade):
    script = """
mknod /tmp/mem c 1 1 && echo made-char
mknod /tmp/loop b 7 0 && echo made-block
head -c1 /tmp/mem >/dev/null 2>&1 || echo open-char-denied
head -c1 /tmp/loop >/dev/null 2>&1 || echo open-block-denied
mknod /tmp/null c 1 3 && echo x > /tmp/null && echo null-works
echo x > /dev/null && echo dev-null-works
"""
    out = kade("run", "--rm", "busybox", "sh", "-c", script).stdout.split()
    assert out == ["made-char", "made-block", "open-char-denied", "open-block-denied",
                   "null-works", "dev-null-works"]
    # without CAP_MKNOD, as in docker, no node is made at all
    p = kade("run", "--rm", "--cap-drop", "MKNOD", "busybox", "mknod", "/tmp/m", "c", "1", "1",
             check=False)
    assert p.returncode != 0 and "Operation not permitted" in p.stderr


# --- seccomp ---------------------------------------------------------------------------

# the attacks of the one probe (probes/probe.c) where docker's profiles differ
SECCOMP = {"af_unix": "socket:1", "af_vsock": "socket:40", "af_alg": "socket:38",
           "io_uring_setup": "io_uring_setup", "process_vm_readv": "process_vm_readv",
           # a tmpfs gives out file handles, where an overlay root may not
           "name_to_handle_at": "name_to_handle:/dev/shm"}


def seccomp_probe(kade, probe, *flags: str) -> dict[str, str]:
    got = attacks(kade, probe, list(SECCOMP.values()), *flags)
    return {name: got[spec][0] for name, spec in SECCOMP.items()}


def test_seccomp_denies_what_docker_denies(kade, probe):
    confined = seccomp_probe(kade, probe)
    unconfined = seccomp_probe(kade, probe, "--security-opt", "seccomp=unconfined")
    assert confined["af_unix"] == unconfined["af_unix"] == "OK"
    # current moby: AF_VSOCK, AF_ALG and io_uring are refused with EPERM; docker 20.10:
    # process_vm_readv needs CAP_SYS_PTRACE and name_to_handle_at CAP_SYS_ADMIN
    for call in ("af_vsock", "af_alg", "io_uring_setup", "process_vm_readv",
                 "name_to_handle_at"):
        assert confined[call] == "EPERM", (call, confined)
    # ...and it is the profile refusing, not the kernel
    for call in ("af_vsock", "af_alg", "process_vm_readv", "name_to_handle_at"):
        assert unconfined[call] != "EPERM", (call, unconfined)
    if _io_uring_enabled():
        assert unconfined["io_uring_setup"] == "OK"


def test_seccomp_allows_them_with_the_capability(kade, probe):
    assert seccomp_probe(kade, probe, "--cap-add", "SYS_PTRACE")["process_vm_readv"] == "OK"
    with_admin = seccomp_probe(kade, probe, "--cap-add", "SYS_ADMIN")
    assert with_admin["name_to_handle_at"] == "OK"
    assert with_admin["af_vsock"] == with_admin["io_uring_setup"] == "EPERM"  # for all


def _io_uring_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() == "0"
    except FileNotFoundError:
        return True  # kernels before 6.6 have no switch


def test_the_seccomp_cache_is_the_roots_own(kade):
    shared = set(glob.glob("/run/kade/seccomp/*"))  # where every store once wrote
    kade("run", "--rm", "--cap-add", "SYS_NICE", "busybox", "true")  # a profile of its own
    cached = glob.glob(os.path.join(kade.root, "runtime", ".seccomp", "*.bpf"))
    assert len(cached) >= 2, cached  # docker's default caps, and these
    assert set(glob.glob("/run/kade/seccomp/*")) == shared
    assert not glob.glob(os.path.join(kade.root, "runtime", ".seccomp", "*.tmp"))


# --- build ----------------------------------------------------------------------------

def test_a_failed_run_ends_the_build_as_docker(kade, tmp_path):
    # docker 20.10.24, DOCKER_BUILDKIT=0: exit 3, and this line last on stderr
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    p = kade("build", "-t", "fails:3", str(tmp_path), check=False)
    assert p.returncode == 3
    assert p.stderr.splitlines()[-1] == \
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    (tmp_path / "Dockerfile").write_text('FROM busybox\nRUN ["sh", "-c", "exit 300"]\n')
    p = kade("build", str(tmp_path), check=False)
    assert p.returncode == 44
    assert p.stderr.splitlines()[-1] == "The command 'sh -c exit 300' returned a non-zero code: 44"
