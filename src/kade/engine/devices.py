"""`--device` and `--device-cgroup-rule`, docker's way.

    --device HOST[:CONTAINER][:PERMISSIONS]     /dev/fuse, /dev/null:/dev/mynull:rw
        -> HostConfig.Devices [{"PathOnHost", "PathInContainer", "CgroupPermissions"}]
        -> at each start, from a stat of the host's node: a linux.devices entry (the
           runtime makes the node in the container's /dev) and an allow rule for it
    --device-cgroup-rule "TYPE MAJOR:MINOR PERMISSIONS"    'c 1:3 rwm', 'b *:* r'
        -> HostConfig.DeviceCgroupRules -> an allow rule in linux.resources.devices

Only imported when a container has one of them: not on `kade run`'s usual path.
"""

from __future__ import annotations

import os
import stat

from kade.errors import InvalidArgument

_KINDS = {stat.S_IFCHR: "c", stat.S_IFBLK: "b"}


def parse_mapping(text: str) -> dict:
    """A --device value -> docker's DeviceMapping, with docker's client errors."""
    def bad(why: str) -> InvalidArgument:
        return InvalidArgument(f'invalid argument "{text}" for "--device" flag: {why}')

    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise bad(f"bad format for path: {text}")
    host, container, permissions = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if valid_permissions(parts[1]):
            permissions = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, permissions = parts[1], parts[2]
        if not valid_permissions(permissions):
            raise bad(f"bad mode specified: {permissions}")
    for path in (host, container):
        if not path.startswith("/"):
            raise bad(f"{path} is not an absolute path")
    return {"PathOnHost": host, "PathInContainer": os.path.normpath(container),
            "CgroupPermissions": permissions}


def valid_permissions(text: str) -> bool:
    """r, w and m, each at most once (docker's validDeviceMode)."""
    return 0 < len(text) <= 3 and set(text) <= set("rwm") and len(set(text)) == len(text)


def parse_cgroup_rule(text: str) -> dict:
    """A --device-cgroup-rule value -> an OCI linux.resources.devices allow rule."""
    kind, _, rest = text.partition(" ")
    numbers, _, permissions = rest.partition(" ")
    major, colon, minor = numbers.partition(":")
    if kind not in ("a", "b", "c") or not colon or not valid_permissions(permissions) \
            or not all(_is_number_or_star(n) for n in (major, minor)):
        raise InvalidArgument(f'invalid argument "{text}" for "--device-cgroup-rule" flag: '
                              f"invalid device cgroup format '{text}'")
    return {"allow": True, "type": kind, "major": _number(major), "minor": _number(minor),
            "access": permissions}


def _is_number_or_star(text: str) -> bool:
    return text == "*" or (text.isascii() and text.isdigit())


def _number(text: str) -> int | None:
    return None if text == "*" else int(text)


def from_host(mapping: dict) -> tuple[dict, dict]:
    """(linux.devices entry, its allow rule) for a DeviceMapping, from the host's node
    as it is now; a path that is no device node is refused in one line."""
    host = mapping["PathOnHost"]
    try:
        st = os.stat(os.path.realpath(host))
    except OSError as e:
        raise InvalidArgument(f'error gathering device information while adding custom '
                              f'device "{host}": {e.strerror or e}') from None
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        raise InvalidArgument(f'error gathering device information while adding custom '
                              f'device "{host}": not a device node')
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    device = {"path": mapping["PathInContainer"], "type": kind, "major": major,
              "minor": minor, "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
              "gid": st.st_gid}
    rule = {"allow": True, "type": kind, "major": major, "minor": minor,
            "access": mapping["CgroupPermissions"]}
    return device, rule
