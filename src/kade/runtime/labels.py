"""AppArmor profiles and SELinux labels in a spec: refused, never silently dropped.

Kade applies neither, and a container that asked for confinement must not start
without it (runtime-spec: a property that cannot be applied is an error). On a host
without the LSM the spec names, the error says so, as runc's does; on a host with
it, it says Kade does not support it yet.

    check(spec["process"], spec.get("linux"))   # in the caller, before fork
"""

from __future__ import annotations

import os

from kade import errors

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_FS = "/sys/fs/selinux"


def check(process: dict, linux: dict | None = None, *, apparmor: bool | None = None,
          selinux: bool | None = None) -> None:
    """Raise for the first label given; apparmor/selinux: whether the host has the LSM
    (None: look)."""
    if profile := process.get("apparmorProfile"):
        _refuse("process.apparmorProfile", profile, "AppArmor",
                host_has_apparmor() if apparmor is None else apparmor)
    for where, label in (("process.selinuxLabel", process.get("selinuxLabel")),
                         ("linux.mountLabel", (linux or {}).get("mountLabel"))):
        if label:
            _refuse(where, label, "SELinux", host_has_selinux() if selinux is None else selinux)


def _refuse(where: str, value: str, lsm: str, enabled: bool) -> None:
    if not enabled:
        raise errors.FailedPrecondition(f'{where} "{value}" cannot be applied: '
                                        f"{lsm} is not enabled on this host")
    raise errors.NotImplementedYet(f'{where} "{value}": {lsm} labels are not supported yet')


def host_has_apparmor() -> bool:
    try:
        with open(APPARMOR_ENABLED) as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def host_has_selinux() -> bool:
    return os.path.exists(os.path.join(SELINUX_FS, "enforce"))
