"""Container escapes that Kade's defaults hold, run for real from inside default
(unprivileged) containers: each test runs the attack and fails if it succeeds.

Most attacks run in one container (`held`): the probe tries each and reports the errno;
each test then checks one. The errnos are docker 20.10's for the same attack: EPERM
from the seccomp profile or a missing capability, EROFS from docker's read-only
mounts, ENOSYS for clone3 (docker's profile answers it so, so libc falls back to
clone). Attacks the kernel would not offer on this host anyway (no /proc/kcore, no
sysrq) must still fail, and are checked masked when the host has them.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from attack_probe import attacks, mount_of, parse

EPERM, EROFS = {"EPERM"}, {"EROFS"}


def _host_disk() -> str:
    """MAJOR:MINOR of the block device under the host's /, or sda's."""
    dev = os.stat("/").st_dev
    return f"{os.major(dev)}:{os.minor(dev)}" if os.major(dev) else "8:0"


def _sys_file() -> str:
    """A writable sysfs file this host has (uevent_helper is the classic escape)."""
    for path in ("/sys/kernel/uevent_helper", "/sys/kernel/rcu_expedited",
                 "/sys/kernel/mm/ksm/run", "/sys/kernel/profiling"):
        if os.path.exists(path):
            return path
    pytest.skip("no writable sysfs file known on this host")


def _pids_max() -> str:
    """The container's own pids.max, whose raise would undo --pids-limit."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup/pids.max"
    return "/sys/fs/cgroup/pids/pids.max"


def _masked_or_absent(path: str) -> set[str]:
    """A masked file reads as /dev/null; one the kernel lacks is simply not there."""
    return {"READ 0"} if os.path.exists(path) else {"ENOENT"}


def _only_host_can_read(path: str) -> None:
    """Not vacuous: the host itself reads bytes from what the container must not."""
    with open(path, "rb") as f:
        assert f.read(4096), f"{path} reads empty on the host too"


# (id, probe spec with {host values}, acceptable results); OK is never acceptable.
CASES = [
    # mounts: new ones, unmasking, the new mount API, remounting read-only paths rw
    ("mount-tmpfs", "mount:tmpfs", EPERM),
    ("mount-proc", "mount:proc", EPERM),
    ("mount-cgroup", "mount:cgroup", EPERM),
    ("mount-bind-root", "mount:bind", EPERM),
    ("remount-proc-sys-rw", "mount:remount:/proc/sys", EPERM),
    ("umount-mask", "umount:/proc/timer_list", EPERM),
    ("fsopen", "fsopen", EPERM),
    ("open-tree", "open_tree:/", EPERM),
    ("pivot-root", "pivot_root", EPERM),
    ("swapon", "swapon", EPERM),
    # namespaces
    *[(f"unshare-{ns}", f"unshare:{ns}", EPERM)
      for ns in ("mnt", "user", "net", "pid", "uts", "ipc", "cgroup", "time")],
    ("clone-newuser", "clone:user", EPERM),
    ("clone-newns", "clone:mnt", EPERM),
    ("clone3-newuser", "clone3:user", {"ENOSYS"}),
    ("setns-mnt", "setns:mnt", EPERM),
    ("setns-net", "setns:net", EPERM),
    ("setns-user", "setns:user", EPERM),
    # /proc and /sys
    ("write-proc-sys-hostname", "write:/proc/sys/kernel/hostname", EROFS),
    ("write-drop-caches", "write:/proc/sys/vm/drop_caches:1", EROFS),
    ("write-core-pattern", "write:/proc/sys/kernel/core_pattern", EROFS),
    ("write-sysrq-trigger", "write:/proc/sysrq-trigger:h",
     EROFS if os.path.exists("/proc/sysrq-trigger") else {"ENOENT"}),
    ("write-proc-irq", "openw:/proc/irq/default_smp_affinity", EROFS),
    ("write-sys", "write:{sys_file}", EROFS),
    ("raise-pids-max", "write:{pids_max}:max", EROFS),
    ("proc-sys-read-only", "statfs:/proc/sys", {"RO"}),
    ("proc-bus-read-only", "statfs:/proc/bus", {"RO"}),
    ("proc-irq-read-only", "statfs:/proc/irq", {"RO"}),
    ("proc-fs-read-only", "statfs:/proc/fs", {"RO"}),
    ("sys-read-only", "statfs:/sys", {"RO"}),
    ("sys-fs-cgroup-read-only", "statfs:/sys/fs/cgroup", {"RO"}),
    ("read-kcore", "read:/proc/kcore", _masked_or_absent("/proc/kcore")),
    ("read-keys", "read:/proc/keys", _masked_or_absent("/proc/keys")),
    ("read-timer-list", "read:/proc/timer_list", _masked_or_absent("/proc/timer_list")),
    ("read-sched-debug", "read:/proc/sched_debug", _masked_or_absent("/proc/sched_debug")),
    # kernel-wide state
    ("init-module", "init_module", EPERM),
    ("finit-module", "finit_module", EPERM),
    ("delete-module", "delete_module", EPERM),
    ("kexec-load", "kexec_load", EPERM),
    ("kexec-file-load", "kexec_file_load", EPERM),
    ("reboot", "reboot", EPERM),
    ("acct", "acct", EPERM),
    ("iopl", "iopl", EPERM),
    ("ioperm", "ioperm", EPERM),
    ("clock-settime", "clock_settime", EPERM),
    ("settimeofday", "settimeofday", EPERM),
    ("adjtimex", "adjtimex", EPERM),
    ("add-key", "add_key", EPERM),
    ("keyctl-join-session", "keyctl", EPERM),
    ("request-key", "request_key", EPERM),
    ("bpf-prog-load", "bpf", EPERM),
    ("perf-event-open", "perf_event_open", EPERM),
    ("userfaultfd", "userfaultfd", EPERM),
    # the shocker: a host inode by handle, through the bind-mounted /etc/hostname
    ("open-by-handle-at", "open_by_handle:/etc/hostname", EPERM),
    # devices, other processes, chroot
    ("read-host-disk", "blockdev:{disk}", EPERM),
    ("read-sda", "blockdev:8:0", EPERM),
    ("ptrace-host-process", "ptrace:{host_pid}", {"ESRCH"}),
    ("signal-host-process", "kill:{host_pid}", {"ESRCH"}),
    ("chroot-fchdir-escape", "chroot_escape:{marker}", {"CONTAINED"}),
]


@pytest.fixture(scope="module")
def host_marker():
    """A file only the host has, for escapes to look for."""
    path = f"/etc/kade-marker-{os.urandom(6).hex()}"
    with open(path, "w") as f:
        f.write("host\n")
    yield path
    os.unlink(path)


@pytest.fixture(scope="module")
def held(kade, probe, host_marker):  # noqa: F811 - probe is the imported fixture
    """Every case's attack, run in one default container: {id: "RESULT [detail]"}."""
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        values = {"disk": _host_disk(), "sys_file": _sys_file(), "pids_max": _pids_max(),
                  "host_pid": sleeper.pid, "marker": host_marker}
        specs = [spec.format(**values) for _, spec, _ in CASES]
        got = attacks(kade, probe, specs)
    finally:
        sleeper.kill()
        sleeper.wait()
    return {case: " ".join(got[spec]).strip() for (case, _, _), spec in zip(CASES, specs)}


@pytest.mark.parametrize("case, expected", [(c, e) for c, _, e in CASES],
                         ids=[c for c, _, _ in CASES])
def test_attack_fails(held, case, expected):
    result = held[case]
    assert not result.startswith("OK"), f"attack {case} SUCCEEDED: {result}"
    assert result.split(" at=")[0] in expected, f"{case}: {result}"


def test_masked_files_are_readable_on_the_host():
    # what read-keys and read-timer-list show empty in the container is not empty here
    present = [p for p in ("/proc/keys", "/proc/timer_list") if os.path.exists(p)]
    if not present:
        pytest.skip("this kernel has neither /proc/keys nor /proc/timer_list")
    for path in present:
        _only_host_can_read(path)


def test_host_disk_is_a_disk_of_this_host():
    # read-host-disk attacks the real thing, not a number nobody has
    major, minor = _host_disk().split(":")
    if (major, minor) != ("8", "0"):
        with open("/proc/partitions") as f:
            assert any(line.split()[:2] == [major, minor] for line in f)


# --- capabilities, no_new_privs, seccomp, as docker sets them ---------------------
DOCKER_CAPS = "00000000a80425fb"  # docker's default 14 capabilities


def status(kade, *run_args: str) -> dict[str, str]:
    out = kade("run", "--rm", *run_args, "busybox", "cat", "/proc/self/status").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_root_gets_dockers_14_capabilities_and_seccomp(kade):
    got = status(kade)
    assert (got["CapEff"], got["CapPrm"], got["CapBnd"]) == (DOCKER_CAPS,) * 3
    assert (got["CapInh"], got["CapAmb"]) == ("0" * 16,) * 2
    assert got["Seccomp"] == "2"  # filter mode: the profile is loaded
    assert got["NoNewPrivs"] == "0"  # docker's default: only no-new-privileges sets it


def test_a_user_gets_no_effective_capabilities(kade):
    got = status(kade, "--user", "1000:1000")
    assert (got["CapEff"], got["CapPrm"]) == ("0" * 16,) * 2
    assert got["CapBnd"] == DOCKER_CAPS and got["Seccomp"] == "2"


def test_no_new_privileges_sets_the_bit(kade):
    got = status(kade, "--security-opt", "no-new-privileges")
    assert got["NoNewPrivs"] == "1" and got["Seccomp"] == "2"


# --- resources: a fork bomb and a memory hog --------------------------------------

def test_fork_bomb_stops_at_the_pids_limit(kade, probe):  # noqa: F811
    # bounded by its own count, so a missing limit fails the test instead of the host
    proc = kade("run", "--rm", "--pids-limit", "64", *mount_of(probe), "busybox",
                "/probe", "forkbomb:1000")
    result, detail = parse(proc.stdout)["forkbomb:1000"]
    fields = dict(kv.split("=") for kv in detail.split())
    assert result == "EAGAIN", proc.stdout  # fork refused, not the bomb's own bound
    assert 48 <= int(fields["forked"]) <= 63, detail  # 64 with the probe itself
    assert fields["pids.current"] in ("?", *map(str, range(49, 65))), detail
    assert kade("ps", "-aq").stdout == ""  # the bomb's container ended and went


def test_fork_bomb_without_a_limit_gets_further(kade, probe):  # noqa: F811
    # the other side of the test above: the probe forks past 64 when nothing stops it
    proc = kade("run", "--rm", *mount_of(probe), "busybox", "/probe", "forkbomb:100")
    assert parse(proc.stdout)["forkbomb:100"][0] == "LIMIT", proc.stdout


def test_memory_hog_is_killed_at_the_memory_limit(kade, probe):  # noqa: F811
    proc = kade("run", "--rm", "-m", "32m", *mount_of(probe), "busybox",
                "/probe", "hog:512", check=False)
    assert proc.returncode == 137, (proc.returncode, proc.stdout, proc.stderr)
    assert "hog:512 OK" not in proc.stdout
    # the limit killed it, not the probe: under it the same probe finishes
    small = kade("run", "--rm", "-m", "32m", *mount_of(probe), "busybox", "/probe", "hog:8")
    assert small.stdout == "hog:8 OK mb=8\n"
    assert kade("ps", "-aq").stdout == ""
