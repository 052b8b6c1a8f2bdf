"""Layer tars from snapshots: an overlay upper directory, or two full trees.

Both produce OCI layers: additions and changes as members, removals as
".wh.NAME" markers, a directory that hides everything below it as a
".wh..wh..opq" marker right after the directory's own member.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from kade.archive._writer import TarWriter, children, open_dir, read_xattrs
from kade.archive.tar import OPAQUE_MARKER, WHITEOUT_PREFIX
from kade.errors import FailedPrecondition, InvalidArgument

_OVERLAY_XATTR_PREFIXES = {"overlay": "trusted.overlay.", "userxattr": "user.overlay."}
# Features that store a change overlayfs-privately instead of in the upper tree.
_UNSUPPORTED_OVERLAY = ("redirect", "metacopy")


def write_layer(out: BinaryIO, upper: str, *, lowers: list[str] | None = None,
                mode: str = "overlay", clamp_mtime: int | None = None) -> None:
    """Write the overlay upper directory as an OCI layer tar to out.

    mode names the xattr namespace overlayfs used: "overlay" (trusted.overlay.*)
    or "userxattr" (user.overlay.*, rootless). With lowers (top first), whiteouts
    and opaque markers that hide nothing in any lower are left out. clamp_mtime:
    no member's mtime is later (TarWriter).
    """
    prefix = _OVERLAY_XATTR_PREFIXES.get(mode)
    if prefix is None:
        raise InvalidArgument(f'overlay mode must be "overlay" or "userxattr", not "{mode}"')
    w = TarWriter(out, clamp_mtime=clamp_mtime)
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _Upper(w, prefix, lowers).walk(fd, "")
    finally:
        os.close(fd)
    w.close()


class _Upper:
    def __init__(self, w: TarWriter, prefix: str, lowers: list[str] | None) -> None:
        self.w = w
        self.prefix = prefix
        self.lowers = lowers

    def walk(self, dfd: int, arcdir: str) -> None:
        # Sorted by the names written, whiteouts by their ".wh." names.
        for _, name, st in sorted(((_member_name(n, st), n, st) for n, st in children(dfd)),
                                  key=_first):
            arc = arcdir + name
            if _is_whiteout(st):
                if self._in_lowers(arc):
                    self.w.add_empty(arcdir + WHITEOUT_PREFIX + name, st)
            elif stat.S_ISDIR(st.st_mode):
                self._dir(dfd, name, arc, st)
            else:
                self.w.add(dfd, name, arc, st, read_xattrs(dfd, name))

    def _dir(self, pfd: int, name: str, arc: str, st: os.stat_result) -> None:
        fd = open_dir(pfd, name)
        try:
            self.w.add(pfd, name, arc, st, read_xattrs(pfd, name))
            if self._overlay_xattr(fd, arc, "opaque") == b"y" and self._in_lowers(arc):
                self.w.add_empty(f"{arc}/{OPAQUE_MARKER}", st)
            self.walk(fd, arc + "/")
        finally:
            os.close(fd)

    def _overlay_xattr(self, fd: int, arc: str, key: str) -> bytes | None:
        try:
            keys = os.listxattr(fd)
        except OSError:
            return None
        for feature in _UNSUPPORTED_OVERLAY:
            if self.prefix + feature in keys:
                raise FailedPrecondition(
                    f'overlay upper directory "{arc}" uses {feature}; mount overlay with '
                    "redirect_dir=off,metacopy=off to diff it")
        return os.getxattr(fd, self.prefix + key) if self.prefix + key in keys else None

    def _in_lowers(self, arc: str) -> bool:
        if self.lowers is None:
            return True
        return any(_exists_in(lower, arc) for lower in self.lowers)


def _exists_in(root: str, rel: str) -> bool:
    """Whether rel exists in the tree at root; a symlink on its way resolves inside
    root (kade.util.inroot), never to a file of the host."""
    from kade.util import inroot
    try:
        os.close(inroot.open_in_root(root, rel, os.O_PATH, follow=False))
    except OSError:
        return False
    return True


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _member_name(name: str, st: os.stat_result) -> str:
    return WHITEOUT_PREFIX + name if _is_whiteout(st) else name


def write_changes(out: BinaryIO, old: str, new: str, *,
                  clamp_mtime: int | None = None) -> None:
    """Write what changed from tree old to tree new as an OCI layer tar.

    A member is written when its type, permissions, owner, size, mtime, link
    target, device number or xattrs differ; the directories above it come along
    so their metadata is right after applying. Removed paths become whiteouts.
    clamp_mtime: no member's mtime is later (TarWriter).
    """
    w = TarWriter(out, clamp_mtime=clamp_mtime)
    ofd = os.open(old, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    nfd = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _Changes(w).walk(ofd, nfd, "")
    finally:
        os.close(ofd)
        os.close(nfd)
    w.close()


class _Changes:
    def __init__(self, w: TarWriter) -> None:
        self.w = w
        # Unchanged directories above the current one, not yet written:
        # written (top first) only if something below them is.
        self.pending: list[tuple[int, str, str, os.stat_result]] = []

    def walk(self, ofd: int, nfd: int, arcdir: str) -> None:
        old = dict(children(ofd)) if ofd >= 0 else {}
        new = children(nfd)
        new_names = {name for name, _ in new}
        gone = [(WHITEOUT_PREFIX + n, n, None) for n in old if n not in new_names]
        for arcname, name, nst in sorted(gone + [(n, n, s) for n, s in new], key=_first):
            if nst is None:
                self._flush()
                self.w.add_empty(arcdir + arcname, old[name])
            else:
                self._entry(ofd, nfd, name, arcdir, old.get(name), nst)

    def _entry(self, ofd: int, nfd: int, name: str, arcdir: str,
               ost: os.stat_result | None, nst: os.stat_result) -> None:
        arc = arcdir + name
        changed = ost is None or _differs(ofd, nfd, name, ost, nst)
        if not stat.S_ISDIR(nst.st_mode):
            if changed:
                self._flush()
                self.w.add(nfd, name, arc, nst, read_xattrs(nfd, name))
            return
        self.pending.append((nfd, name, arc, nst))
        if changed:
            self._flush()
        same_type = ost is not None and stat.S_ISDIR(ost.st_mode)
        sub_old = open_dir(ofd, name) if same_type else -1
        sub_new = open_dir(nfd, name)
        try:
            self.walk(sub_old, sub_new, arc + "/")
        finally:
            os.close(sub_new)
            if sub_old >= 0:
                os.close(sub_old)
        if self.pending and self.pending[-1][2] == arc:
            self.pending.pop()

    def _flush(self) -> None:
        for pfd, name, arc, st in self.pending:
            self.w.add(pfd, name, arc, st, read_xattrs(pfd, name))
        self.pending.clear()


def _first(item: tuple[str, str, os.stat_result | None]) -> str:
    """Sort key: the member name alone (the stat results do not compare)."""
    return item[0]


def _differs(ofd: int, nfd: int, name: str, a: os.stat_result, b: os.stat_result) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) != (b.st_mode, b.st_uid, b.st_gid,
                                                          b.st_mtime_ns):
        return True
    kind = stat.S_IFMT(b.st_mode)
    if kind == stat.S_IFREG and a.st_size != b.st_size:
        return True
    if kind in (stat.S_IFCHR, stat.S_IFBLK) and a.st_rdev != b.st_rdev:
        return True
    if kind == stat.S_IFLNK and os.readlink(name, dir_fd=ofd) != os.readlink(name, dir_fd=nfd):
        return True
    return read_xattrs(ofd, name) != read_xattrs(nfd, name)
