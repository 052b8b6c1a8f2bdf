"""Seccomp: an OCI linux.seccomp object -> classic BPF -> this process's filter.

Building a filter with libseccomp costs tens of milliseconds; loading one is a
single prctl. So `compile` runs libseccomp once per distinct profile and the
BPF is cached by the profile's hash; a later container with the same profile
only reads the cache file and calls `install_bpf`:

    bpf = seccomp.cached_compile(spec["linux"]["seccomp"], cache_dir)   # parent
    seccomp.install_bpf(bpf)                                            # child, before exec

`install` does both. The cache is one file per profile, in a directory the caller
owns (the Runtime's `<state root>/.seccomp`, so each Kade root has its own and
no store writes where another reads); without a directory nothing is cached:

    <cache_dir>/
        <sha256 of profile + machine + FORMAT>.bpf   raw struct sock_filter array

Loading a filter needs no_new_privs or CAP_SYS_ADMIN, so a runtime loads it
before dropping capabilities unless process.noNewPrivileges is set.
Semantics follow runc: syscall names this arch does not know are skipped, a
rule whose action equals the default is skipped, and conditions that test one
argument more than once become separate rules (libseccomp ANDs the conditions
of one rule, which would make them unsatisfiable).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os

from kade.errors import InvalidArgument
from kade.oci.digest import sha256_hex

# Bump when compile() changes what it emits for the same profile.
FORMAT = "1"

_DEFAULT_ERRNO = errno.EPERM
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
_FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
# seccomp(2) has no libc wrapper; needed only when the profile sets flags.
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "loongarch64": 277,
                "ppc64le": 358, "s390x": 348}

_ACTIONS = {  # name -> (base value, takes errnoRet)
    "SCMP_ACT_KILL": (0x00000000, False),
    "SCMP_ACT_KILL_THREAD": (0x00000000, False),
    "SCMP_ACT_KILL_PROCESS": (0x80000000, False),
    "SCMP_ACT_TRAP": (0x00030000, False),
    "SCMP_ACT_ERRNO": (0x00050000, True),
    "SCMP_ACT_TRACE": (0x7FF00000, True),
    "SCMP_ACT_LOG": (0x7FFC0000, False),
    "SCMP_ACT_ALLOW": (0x7FFF0000, False),
}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

# AUDIT_ARCH_* values: ELF machine | 64-bit flag | little-endian flag.
_B64, _LE, _N32 = 0x80000000, 0x40000000, 0x20000000
_ARCHES = {
    "SCMP_ARCH_X86": 3 | _LE, "SCMP_ARCH_X86_64": 62 | _B64 | _LE,
    "SCMP_ARCH_X32": 62 | _LE, "SCMP_ARCH_ARM": 40 | _LE,
    "SCMP_ARCH_AARCH64": 183 | _B64 | _LE, "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _B64, "SCMP_ARCH_MIPS64N32": 8 | _B64 | _N32,
    "SCMP_ARCH_MIPSEL": 8 | _LE, "SCMP_ARCH_MIPSEL64": 8 | _B64 | _LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _B64 | _LE | _N32, "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _B64, "SCMP_ARCH_PPC64LE": 21 | _B64 | _LE,
    "SCMP_ARCH_S390": 22, "SCMP_ARCH_S390X": 22 | _B64,
    "SCMP_ARCH_RISCV64": 243 | _B64 | _LE, "SCMP_ARCH_LOONGARCH64": 258 | _B64 | _LE,
}
_NR_SCMP_ERROR = -1


def install(spec_seccomp: dict, cache_dir: str | None = None) -> None:
    """Load the filter for this OCI linux.seccomp into the current process."""
    install_bpf(cached_compile(spec_seccomp, cache_dir), _flags(spec_seccomp))


def prepare(spec_seccomp: dict, cache_dir: str | None = None) -> tuple[bytes, int]:
    """(BPF, flags) to hand to install_bpf later: compile before fork/pivot_root,
    because the container's root has neither pyseccomp nor the cache.

    The engine hands every container with the same capabilities one shared profile
    object (kade.oci.defaults caches them, not to be modified), so the last profiles
    are remembered by identity: a start then skips hashing the profile and reading
    the cache file (~0.2 ms)."""
    key = (id(spec_seccomp), cache_dir)
    hit = _PREPARED.get(key)
    if hit is not None and hit[0] is spec_seccomp:  # the reference held keeps ids unique
        return hit[1]
    prepared = cached_compile(spec_seccomp, cache_dir), _flags(spec_seccomp)
    if len(_PREPARED) >= 2:
        _PREPARED.clear()
    _PREPARED[key] = (spec_seccomp, prepared)
    return prepared


_PREPARED: dict[tuple[int, str | None], tuple[dict, tuple[bytes, int]]] = {}


def cached_compile(spec_seccomp: dict, cache_dir: str | None = None) -> bytes:
    """compile(), reading and filling the cache in `cache_dir` (None: no cache)."""
    if cache_dir is None:
        return compile(spec_seccomp)
    path = os.path.join(cache_dir, cache_key(spec_seccomp) + ".bpf")
    bpf = _read_cache(path)
    if bpf is None:
        bpf = compile(spec_seccomp)
        _write_cache(path, bpf)
    return bpf


def cache_key(spec_seccomp: dict) -> str:
    """A hash of everything the BPF depends on: the profile and the machine."""
    text = json.dumps(spec_seccomp, sort_keys=True, separators=(",", ":"))
    salt = f"{FORMAT}\0{os.uname().machine}\0"
    return sha256_hex((salt + text).encode())


def compile(spec_seccomp: dict) -> bytes:
    """Build the filter with libseccomp and return it as classic BPF bytes."""
    import pyseccomp  # type: ignore[import-untyped]  # only on a cache miss: the slow part

    default = _action(spec_seccomp.get("defaultAction", ""),
                      spec_seccomp.get("defaultErrnoRet"))
    filt = pyseccomp.SyscallFilter(default)
    for arch in spec_seccomp.get("architectures") or []:
        _add_arch(filt, arch)
    for rule in spec_seccomp.get("syscalls") or []:
        _add_rule(pyseccomp, filt, rule, default)
    return _export(filt)


def install_bpf(bpf: bytes, flags: int = 0) -> None:
    """Load classic BPF (an array of struct sock_filter) as this process's filter."""
    if not bpf or len(bpf) % 8:
        raise InvalidArgument(f"seccomp program of {len(bpf)} bytes is not a BPF program")
    program = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(program))
    if flags:
        rc = _libc.syscall(_seccomp_nr(), _SECCOMP_SET_MODE_FILTER, flags,
                           ctypes.byref(prog))
    else:
        rc = _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"loading seccomp filter: {os.strerror(err)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]


def _seccomp_nr() -> int:
    machine = os.uname().machine
    if machine not in _SYS_SECCOMP:
        raise InvalidArgument(f'seccomp flags are not supported on "{machine}"')
    return _SYS_SECCOMP[machine]


def _flags(spec_seccomp: dict) -> int:
    bits = 0
    for name in spec_seccomp.get("flags") or []:
        if name not in _FILTER_FLAGS:
            raise InvalidArgument(f'unknown seccomp flag: "{name}"')
        bits |= _FILTER_FLAGS[name]
    return bits


def _action(name: str, errno_ret: int | None) -> int:
    if name not in _ACTIONS:
        raise InvalidArgument(f'unsupported seccomp action: "{name}"')
    value, takes_errno = _ACTIONS[name]
    if takes_errno:
        value |= (_DEFAULT_ERRNO if errno_ret is None else errno_ret) & 0xFFFF
    return value


def _add_arch(filt, arch: str) -> None:
    if arch not in _ARCHES:
        raise InvalidArgument(f'unknown seccomp architecture: "{arch}"')
    try:
        filt.add_arch(_ARCHES[arch])
    except OSError as e:
        if e.errno != errno.EEXIST:  # the native arch is always there already
            raise


def _add_rule(pyseccomp, filt, rule: dict, default: int) -> None:
    action = _action(rule.get("action", ""), rule.get("errnoRet"))
    if action == default:
        return  # libseccomp rejects these, and they change nothing
    condition_sets = _condition_sets(pyseccomp, rule.get("args") or [])
    for name in rule.get("names") or []:
        nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if nr == _NR_SCMP_ERROR:
            continue  # unknown on this arch; runc skips these too
        for conditions in condition_sets:
            filt.add_rule(action, nr, *conditions)


def _condition_sets(pyseccomp, args: list[dict]) -> list[list]:
    conditions = [_condition(pyseccomp, a) for a in args]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) < len(indexes):
        return [[c] for c in conditions]
    return [conditions]


def _condition(pyseccomp, arg: dict):
    op = arg.get("op", "")
    if op not in _OPS:
        raise InvalidArgument(f'unknown seccomp operator: "{op}"')
    if not 0 <= arg.get("index", -1) <= 5:
        raise InvalidArgument(f'seccomp argument index out of range: "{arg.get("index")}"')
    return pyseccomp.Arg(arg["index"], _OPS[op], arg.get("value", 0), arg.get("valueTwo", 0))


def _export(filt) -> bytes:
    fd = os.memfd_create("kade-seccomp")
    try:
        filt.export_bpf(_FdFile(fd))
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _FdFile:
    """What pyseccomp's export_bpf wants: something with fileno()."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def _read_cache(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            bpf = f.read()
    except FileNotFoundError:
        return None
    return bpf if bpf and len(bpf) % 8 == 0 else None


def _write_cache(path: str, bpf: bytes) -> None:
    # temp, fsync, rename: a reader (or a restart after a crash) sees the whole
    # program or none. The temp name is this thread's own, so concurrent writers
    # of one profile never share a temp file; the last rename wins with the same bytes.
    import _thread
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}-{_thread.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, bpf)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
