"""Docker's defaults for a Linux container spec, as data and small pure policies.

The engine builds config.json from these; the runtime applies whatever the spec
says and never consults this module for policy. Everything here follows moby's
`daemon/pkg/oci/defaults.go`, `daemon/pkg/oci/caps` and `profiles/seccomp`, so a
container looks the same to its process under Kade as under docker.

- capabilities: `CAPABILITIES` (names by number), `DEFAULT_CAPS`, `ALL_CAPS`,
  `resolve(add, drop, privileged)`, `capabilities_spec(caps)`.
- paths and mounts: `MASKED_PATHS`, `masked_paths()`, `READONLY_PATHS`,
  `default_mounts()`, `DEFAULT_DEVICE_RULES`.
- seccomp: `docker_profile()` (seccomp_default.json, docker's profile form) and
  `default_seccomp(caps, arch)` / `seccomp_from_profile(...)`, which resolve the
  profile's includes/excludes into an OCI linux.seccomp object.
- cpu: `cpu_quota(cpus)` turns docker's --cpus into a CFS quota and period.

The seccomp profile is moby's current one (moby/profiles seccomp v0.2.3, vendored by
moby b985e2313a), compared syscall by syscall, for every capability set, arch and
kernel, with docker 20.10.24's (`profiles/seccomp/default.json` at v20.10.24, the
dockerd Debian 12 ships). Where the two differ on a syscall 20.10 names, the stricter
rule is kept (tests/unit/oci/test_seccomp_profile.py pins the result):
- from current moby (stricter): socket() for AF_ALG (38) and AF_VSOCK (40), and
  io_uring_setup/enter/register, are denied (EPERM); 20.10 allowed them.
- from 20.10 (current is looser): process_vm_readv/process_vm_writev need
  CAP_SYS_PTRACE (current: any kernel >= 4.8); name_to_handle_at needs
  CAP_SYS_ADMIN (current: always); bpf and perf_event_open need CAP_SYS_ADMIN
  (current: also CAP_BPF, CAP_PERFMON).
- syscalls 20.10 does not name (newer kernels: cachestat, fchmodat2, futex_wait,
  mseal, pkey_*, statmount, clock_settime64 with CAP_SYS_TIME, lsm_* with
  CAP_SYS_ADMIN...) follow current moby: denying them with EPERM would break libcs
  that fall back only on ENOSYS. clone3 stays ENOSYS without CAP_SYS_ADMIN, as both.
"""

from __future__ import annotations

import json
import os
from functools import cache

from kade.errors import InvalidArgument

# Index = capability number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

ALL_CAPS: list[str] = list(CAPABILITIES)

# Docker's default set, in docker's order; its mask is 0x00000000a80425fb.
DEFAULT_CAPS: list[str] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

_ALL = "ALL"


def normalize_caps(names: list[str]) -> list[str]:
    """Upper-case and CAP_-prefix each name; "ALL" passes through."""
    out = []
    for name in names:
        name = name.upper()
        if name != _ALL and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != _ALL and name not in CAPABILITIES:
            raise InvalidArgument(f'unknown capability: "{name}"')
        out.append(name)
    return out


def resolve(add: list[str], drop: list[str], privileged: bool = False) -> list[str]:
    """The capability set for --cap-add/--cap-drop/--privileged, by docker's rules.

    Privileged gets everything; "ALL" in add means all but the dropped ones;
    "ALL" in drop means only the added ones; otherwise defaults - drop + add.
    """
    if privileged:
        return list(ALL_CAPS)
    adds, drops = normalize_caps(add), normalize_caps(drop)
    if _ALL in adds:
        return [c for c in ALL_CAPS if c not in drops]
    if _ALL in drops:
        return _unique(adds)
    return _unique([c for c in DEFAULT_CAPS if c not in drops] + adds)


def _unique(names) -> list[str]:
    return list(dict.fromkeys(names))


def capabilities_spec(caps: list[str]) -> dict:
    """OCI process.capabilities as docker writes it: no inheritable, no ambient."""
    return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}


MASKED_PATHS: list[str] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
]

READONLY_PATHS: list[str] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


def masked_paths(sysfs: str = "/sys") -> list[str]:
    """MASKED_PATHS plus each CPU's thermal_throttle dir that exists on this host.

    Docker masks those too (GHSA-6fw5-f8r9-fgfm); they exist only on some hosts.
    """
    cpu_root = os.path.join(sysfs, "devices/system/cpu")
    try:
        cpus = sorted(int(n[3:]) for n in os.listdir(cpu_root) if n[3:].isdigit())
    except OSError:
        cpus = []
    extra = [f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in cpus
             if os.path.isdir(os.path.join(cpu_root, f"cpu{n}", "thermal_throttle"))]
    return MASKED_PATHS + extra


def default_mounts(shm_size: int = 64 << 20) -> list[dict]:
    """Docker's default mounts, as OCI mount objects, in mount order."""
    def mount(dest: str, typ: str, source: str, options: list[str]) -> dict:
        return {"destination": dest, "type": typ, "source": source, "options": options}

    return [
        mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts", "devpts",
              ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"]),
        mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        mount("/dev/shm", "tmpfs", "shm",
              ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size // 1024}k"]),
    ]


def _device_rule(allow: bool, typ: str | None, major: int | None, minor: int | None) -> dict:
    rule: dict = {"allow": allow, "access": "rwm"}
    if typ is not None:
        rule.update(type=typ, major=major, minor=minor)
    return rule


# linux.resources.devices: deny all, then null, zero, full, urandom, random,
# tty, console; and deny /dev/net/tun (10:229) unless a user asks for it.
DEFAULT_DEVICE_RULES: list[dict] = [
    _device_rule(False, None, None, None),
    _device_rule(True, "c", 1, 5),
    _device_rule(True, "c", 1, 3),
    _device_rule(True, "c", 1, 7),
    _device_rule(True, "c", 1, 9),
    _device_rule(True, "c", 1, 8),
    _device_rule(True, "c", 5, 0),
    _device_rule(True, "c", 5, 1),
    _device_rule(False, "c", 10, 229),
]

CFS_PERIOD_US = 100_000


def cpu_quota(cpus: float) -> tuple[int, int]:
    """Docker's --cpus as (cfs quota, cfs period) in microseconds."""
    if cpus <= 0:
        raise InvalidArgument(f'invalid cpus value: "{cpus}"; it must be positive')
    return round(cpus * CFS_PERIOD_US), CFS_PERIOD_US


# Machine name (uname -m or GOARCH) -> (the profile's "arches" spelling, seccomp arch).
_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "amd64": ("amd64", "SCMP_ARCH_X86_64"),
    "i386": ("x86", "SCMP_ARCH_X86"),
    "i686": ("x86", "SCMP_ARCH_X86"),
    "386": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "arm": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "loongarch64": ("loongarch64", "SCMP_ARCH_LOONGARCH64"),
}


@cache
def _profile_text() -> str:
    # a plain open: importlib.resources costs ~9 ms at every container start
    with open(os.path.join(os.path.dirname(__file__), "seccomp_default.json")) as f:
        return f.read()


def docker_profile() -> dict:
    """Docker's default seccomp profile in docker's own form (a fresh copy)."""
    return json.loads(_profile_text())


_RESOLVED: dict[tuple, dict] = {}


def default_seccomp(caps: list[str], arch: str = "x86_64",
                    kernel: str | None = None) -> dict:
    """The OCI linux.seccomp docker would use for a container with `caps`.

    Cached per capability set and shared: every container with docker's default
    caps holds the same object (a fresh resolve costs ~3 ms and ~100 KB), so
    callers must not modify it."""
    key = (tuple(sorted(caps)), arch, kernel)
    resolved = _RESOLVED.get(key)
    if resolved is None:
        resolved = _RESOLVED[key] = seccomp_from_profile(docker_profile(), caps, arch, kernel)
    return resolved


def seccomp_from_profile(profile: dict, caps: list[str], arch: str = "x86_64",
                         kernel: str | None = None) -> dict:
    """Resolve a docker-form profile (archMap, includes/excludes) into OCI form.

    A rule's includes must all hold (every listed cap present, this arch listed,
    kernel at least minKernel); any one of its excludes holding drops it.
    `caps` stands for the container's bounding set, as in docker.
    """
    if arch not in _ARCHES:
        raise InvalidArgument(f'unsupported architecture for seccomp: "{arch}"')
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("seccomp profile has both 'architectures' and 'archMap'")
    native, scmp_arch = _ARCHES[arch]
    kernel_version = _version(kernel or os.uname().release)
    env = (native, set(caps), kernel_version)
    out = {k: v for k, v in profile.items() if k not in ("archMap", "syscalls")}
    if profile.get("archMap"):
        out["architectures"] = _arches_for(profile["archMap"], scmp_arch)
    out["syscalls"] = [_oci_rule(r) for r in profile.get("syscalls") or []
                       if _applies(r, env)]
    return out


def _arches_for(arch_map: list[dict], scmp_arch: str) -> list[str]:
    for entry in arch_map:
        if entry["architecture"] == scmp_arch:
            return [scmp_arch] + list(entry.get("subArchitectures") or [])
    return []


def _applies(rule: dict, env: tuple[str, set[str], tuple[int, ...]]) -> bool:
    arch, caps, kernel = env
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    if arch in (exc.get("arches") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    return not (exc.get("minKernel") and kernel >= _version(exc["minKernel"]))


def _oci_rule(rule: dict) -> dict:
    if rule.get("name") and rule.get("names"):
        raise InvalidArgument(
            f'seccomp rule for "{rule["name"]}" has both "name" and "names"')
    out = {k: v for k, v in rule.items()
           if k not in ("name", "comment", "includes", "excludes")}
    if rule.get("name"):
        out["names"] = [rule["name"]]
    return out


def _version(release: str) -> tuple[int, ...]:
    """"6.1.0-13-amd64" -> (6, 1): docker compares major.minor only."""
    parts = release.split("-")[0].split(".")[:2]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise InvalidArgument(f'invalid kernel version: "{release}"') from None
