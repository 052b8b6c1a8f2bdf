"""Capabilities and user identity of the container process, set just before exec.

Runs in the forked child, so it is plain ctypes over prctl(2) and capset(2):
no imports beyond the standard library, a few dozen syscalls in all.

Order, as runc does it:

    caps.set_user(uid, gid, groups)   # setgroups, setgid, setuid with KEEPCAPS
    caps.apply(spec["process"]["capabilities"])
    os.execve(...)

`set_user` keeps the permitted set across the uid change; the kernel still
empties the effective and ambient sets then, which is why `apply` comes after:
it raises effective from permitted, drops the bounding set, sets
effective/permitted/inheritable with capset v3 and raises the ambient set.

The names and docker's policy (DEFAULT_CAPS, resolve) live in kade.oci.defaults,
since the engine builds specs from them; they are re-exported here.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable

from kade.errors import InvalidArgument
from kade.oci.defaults import ALL_CAPS, CAPABILITIES, DEFAULT_CAPS, resolve

__all__ = ["ALL_CAPS", "CAPABILITIES", "CAP_NUMBERS", "DEFAULT_CAPS", "apply", "check_names",
           "last_cap", "mask", "names", "resolve", "set_user"]

CAP_NUMBERS: dict[str, int] = {name: n for n, name in enumerate(CAPABILITIES)}

_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def mask(caps: Iterable[str]) -> int:
    """Names to a bit mask; unknown names are ignored."""
    return sum(1 << CAP_NUMBERS[c] for c in set(caps) if c in CAP_NUMBERS)


def names(bits: int) -> list[str]:
    """A bit mask to names, in capability-number order."""
    return [name for n, name in enumerate(CAPABILITIES) if bits >> n & 1]


def set_user(uid: int, gid: int, additional_gids: Iterable[int] = ()) -> None:
    """Become uid:gid with these supplementary groups, keeping the permitted caps."""
    os.setgroups(list(additional_gids))
    os.setgid(gid)
    _prctl(_PR_SET_KEEPCAPS, 1)
    try:
        os.setuid(uid)
    finally:
        _prctl(_PR_SET_KEEPCAPS, 0)


def check_names(spec_capabilities: dict) -> None:
    """Refuse a name in any set of OCI process.capabilities that is no capability at
    all (runtime-spec: a value that cannot be mapped to the kernel MUST be an error).
    A real capability newer than the running kernel is left for `apply` to skip."""
    for which in _SETS:
        for name in spec_capabilities.get(which) or ():
            if name not in CAP_NUMBERS:
                raise InvalidArgument(f'unknown capability "{name}" in '
                                      f"process.capabilities.{which}")


def apply(spec_capabilities: dict) -> list[str]:
    """Apply OCI process.capabilities to this process; return the names ignored.

    A missing set means an empty one. Names this kernel does not know (beyond
    cap_last_cap) are ignored, as runc does; so is an ambient capability the kernel
    refuses to raise because it is not both permitted and inheritable (`runc spec`
    writes such a spec: runc warns and goes on).
    """
    last = last_cap()
    known = set(CAPABILITIES[: last + 1])
    wanted = {s: set(spec_capabilities.get(s) or []) for s in _SETS}
    ignored = set().union(*wanted.values()) - known
    bits = {s: mask(wanted[s] & known) for s in _SETS}
    _raise_effective()
    _drop_bounding(bits["bounding"], last)
    _capset(bits["effective"], bits["permitted"], bits["inheritable"])
    ignored.update(names(_set_ambient(bits["ambient"], last)))
    return sorted(ignored)


def last_cap() -> int:
    """The highest capability number the running kernel knows.

    Probed with PR_CAPBSET_READ rather than read from /proc, which the child
    may not have mounted yet.
    """
    for n in range(len(CAPABILITIES) - 1, -1, -1):
        if _libc.prctl(_PR_CAPBSET_READ, n, 0, 0, 0) >= 0:
            return n
    raise OSError(errno.EINVAL, "no capability is known to this kernel")


def _raise_effective() -> None:
    # After a setuid with KEEPCAPS the effective set is empty, and dropping
    # the bounding set needs CAP_SETPCAP in it.
    eff, perm, inh = _capget()
    if eff != perm:
        _capset(perm, perm, inh)


def _drop_bounding(keep: int, last: int) -> None:
    for n in range(last + 1):
        if not keep >> n & 1:
            _prctl(_PR_CAPBSET_DROP, n)


def _set_ambient(bits: int, last: int) -> int:
    """Raise the ambient set; returns the bits the kernel refused (EPERM: a
    capability not in both the permitted and the inheritable set)."""
    if _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0:
        if ctypes.get_errno() == errno.EINVAL and not bits:
            return 0  # kernel before 4.3: no ambient set, and none wanted
        _fail("prctl(PR_CAP_AMBIENT)")
    refused = 0
    for n in range(last + 1):
        if not bits >> n & 1:
            continue
        if _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, n, 0, 0) < 0:
            if ctypes.get_errno() != errno.EPERM:
                _fail(f"prctl(PR_CAP_AMBIENT_RAISE, {n})")
            refused |= 1 << n
    return refused


def _capget() -> tuple[int, int, int]:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        _fail("capget")
    def both(field: str) -> int:
        return getattr(data[0], field) | getattr(data[1], field) << 32

    return both("effective"), both("permitted"), both("inheritable")


def _capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = effective >> shift & 0xFFFFFFFF
        data[i].permitted = permitted >> shift & 0xFFFFFFFF
        data[i].inheritable = inheritable >> shift & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(header), data) != 0:
        _fail("capset")


def _prctl(option: int, arg2: int, arg3: int = 0) -> None:
    if _libc.prctl(option, arg2, arg3, 0, 0) < 0:
        _fail(f"prctl({option}, {arg2})")


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")
