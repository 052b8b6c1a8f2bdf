"""Resolving `-u user[:group]` against the container's /etc/passwd and /etc/group."""

from __future__ import annotations

from kade.errors import InvalidArgument


def _table(text: bytes | None) -> list[list[str]]:
    if not text:
        return []
    return [line.split(":") for line in text.decode(errors="replace").splitlines()
            if line and not line.startswith("#")]


def resolve(user: str, passwd: bytes | None, group: bytes | None) -> tuple[int, int, list[int]]:
    """Returns (uid, gid, additional gids), as docker does at container start: the
    primary group first, then (for a user named without a group) the groups that
    list the user as a member."""
    name, _, grp = (user or "0").partition(":")
    users, groups = _table(passwd), _table(group)
    uid, gid, login = _user(name, users)
    if grp:
        gid = _group(grp, groups)
        login = None  # an explicit group: no membership lookup (runc's GetExecUser)
    extra = [int(g[2]) for g in groups
             if len(g) > 3 and login and login in g[3].split(",") and g[2].isdigit()]
    return uid, gid, [gid] + sorted(set(extra) - {gid})


def _user(name: str, users: list[list[str]]) -> tuple[int, int, str | None]:
    for u in users:
        if len(u) > 3 and (u[0] == name or u[2] == name):
            return int(u[2]), int(u[3]), u[0]
    if name.isdigit():
        return int(name), 0, None
    raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")


def _group(name: str, groups: list[list[str]]) -> int:
    for g in groups:
        if len(g) > 2 and (g[0] == name or g[2] == name):
            return int(g[2])
    if name.isdigit():
        return int(name)
    raise InvalidArgument(f"unable to find group {name}: no matching entries in group file")


def home_of(uid: int, passwd: bytes | None) -> str:
    for u in _table(passwd):
        if len(u) > 5 and u[2] == str(uid):
            return u[5]
    return "/"
