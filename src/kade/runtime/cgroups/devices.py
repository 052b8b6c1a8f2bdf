"""devices: which device nodes the container may open, read or mknod (v1).

On v2 the kernel enforces this only through an eBPF program attached to the
cgroup (BPF_CGROUP_DEVICE), which Kade does not build yet: there the rules are
not enforced, and `v2_writes` says so by writing nothing.
"""

from __future__ import annotations

from kade.runtime.cgroups.fs import Write

V1 = "devices"
V2 = "devices"  # never among v2's cgroup.controllers, so v2 routing never happens


# Appended to every spec's rules, as runc appends its AllowedDevices, so a docker
# container behaves as under runc:
# - any device node may be made ("c *:* m", "b *:* m": with CAP_MKNOD, as images'
#   package scripts do), yet opening one stays denied unless a rule allows it;
MKNOD_RULES = ({"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
               {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"})
# - new ptys from the container's own devpts (/dev/ptmx, /dev/pts/*), for its console
#   and for tmux, ssh, script... (read and write; mknod of them is MKNOD_RULES')
PTY_RULES = ({"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rw"},
             {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rw"})
# - runtime-spec's "Default Devices", which every container has whatever its rules say
#   (a spec's usual deny-all would otherwise make /dev/null unusable): /dev/null, zero,
#   full, random, urandom and tty, as runc's AllowedDevices has them
DEFAULT_DEVICE_RULES = tuple(
    {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)))


def v1_writes(res: dict) -> list[Write]:
    rules = [*(res.get("devices") or []), *MKNOD_RULES, *DEFAULT_DEVICE_RULES, *PTY_RULES]
    return [Write("devices.allow" if rule.get("allow") else "devices.deny", rule_text(rule))
            for rule in rules]


def v2_writes(res: dict) -> list[Write]:
    return []


def rule_text(rule: dict) -> str:
    """An OCI device rule as v1 writes it: "c 1:3 rwm", "a *:* rwm"."""
    return f"{rule.get('type') or 'a'} {_num(rule.get('major'))}:{_num(rule.get('minor'))} " \
           f"{rule.get('access') or 'rwm'}"


def _num(n: int | None) -> str:
    return "*" if n is None or n < 0 else str(n)
