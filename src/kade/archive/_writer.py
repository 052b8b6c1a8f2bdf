"""Writing tars of directory trees: PAX format, numeric ids, no user names.

Output is deterministic for a given tree: members come in the order the caller
adds them (the walkers add each directory's children sorted by name), mtimes
are whole seconds (like docker's layers), and the only pax records are the
ones a value needs (long or non-ASCII names, big numbers, xattrs). With
clamp_mtime (a reproducible build's SOURCE_DATE_EPOCH) no mtime is later than
it, as BuildKit's rewrite-timestamp does.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from kade.archive import _format as fmt
from kade.archive._fs import proc_path
from kade.errors import FailedPrecondition

# O_NONBLOCK: a file swapped for a fifo since lstat must not hang the open.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FLUSH_AT = 1 << 20
_CHUNK = 1 << 20
_KINDS = {
    stat.S_IFREG: b"0", stat.S_IFDIR: b"5", stat.S_IFLNK: b"2", stat.S_IFCHR: b"3",
    stat.S_IFBLK: b"4", stat.S_IFIFO: b"6",
}
# Host-specific or overlayfs-internal, never part of an image.
_SKIPPED_XATTRS = ("security.selinux", "trusted.overlay.", "user.overlay.")


class TarWriter:
    """Appends members to out; close() writes the end-of-archive blocks but
    leaves out open. Same-inode files after the first become hardlinks."""

    def __init__(self, out: BinaryIO, *, clamp_mtime: int | None = None) -> None:
        self._out = out
        self._clamp = clamp_mtime
        self._buf = bytearray()
        self._links: dict[tuple[int, int], str] = {}

    def _emit(self, data: bytes | memoryview) -> None:
        self._buf += data
        if len(self._buf) >= _FLUSH_AT:
            self._out.write(self._buf)
            self._buf = bytearray()

    def close(self) -> None:
        self._emit(fmt.END_OF_ARCHIVE)
        self._out.write(self._buf)
        self._buf = bytearray()

    def add(self, pfd: int, name: str, arcname: str, st: os.stat_result,
            xattrs: dict[str, bytes] | None = None) -> None:
        """Add name in directory pfd (lstat result st) as arcname."""
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            return  # sockets: docker skips them too
        if kind != b"5" and st.st_nlink > 1 and self._hardlink(arcname, st, xattrs):
            return
        if kind == b"0":
            return self._file(pfd, name, arcname, st, xattrs)
        linkname = os.readlink(name, dir_fd=pfd) if kind == b"2" else ""
        major = minor = 0
        if kind in (b"3", b"4"):
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        if kind == b"5" and not arcname.endswith("/"):
            arcname += "/"
        self._emit(self._header(arcname, kind, st, xattrs, linkname=linkname,
                                devmajor=major, devminor=minor))

    def add_empty(self, arcname: str, st: os.stat_result) -> None:
        """An empty regular file with st's owner, permissions and mtime
        (whiteout markers)."""
        self._emit(fmt.header(arcname, b"0", st.st_mode & 0o777, st.st_uid, st.st_gid,
                              self._mtime(st)))

    def _mtime(self, st: os.stat_result) -> int:
        mtime = st.st_mtime_ns // 1_000_000_000
        return mtime if self._clamp is None else min(mtime, self._clamp)

    def _header(self, arcname: str, kind: bytes, st: os.stat_result,
                xattrs: dict[str, bytes] | None, **kw: object) -> bytes:
        return fmt.header(arcname, kind, st.st_mode, st.st_uid, st.st_gid,
                          self._mtime(st), xattrs=xattrs, **kw)  # type: ignore[arg-type]

    def _hardlink(self, arcname: str, st: os.stat_result,
                  xattrs: dict[str, bytes] | None) -> bool:
        key = (st.st_dev, st.st_ino)
        first = self._links.get(key)
        if first is None:
            self._links[key] = arcname
            return False
        self._emit(self._header(arcname, b"1", st, xattrs, linkname=first))
        return True

    def _file(self, pfd: int, name: str, arcname: str, st: os.stat_result,
              xattrs: dict[str, bytes] | None) -> None:
        size = st.st_size
        self._emit(self._header(arcname, b"0", st, xattrs, size=size))
        if not size:
            return
        fd = os.open(name, _READ_FLAGS, dir_fd=pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FailedPrecondition(f'"{arcname}" changed type while being archived')
            left = size
            while left:
                chunk = os.read(fd, min(left, _CHUNK))
                if not chunk:  # shrank since lstat: keep the size we promised
                    chunk = bytes(min(left, _CHUNK))
                self._emit(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        self._emit(fmt.padding(size))


def read_xattrs(pfd: int, name: str) -> dict[str, bytes] | None:
    """The xattrs of name in directory pfd worth keeping in an image."""
    path = proc_path(pfd, name)
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return None
        raise
    found = {}
    for key in keys:
        if key.startswith(_SKIPPED_XATTRS):
            continue
        try:
            found[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError as e:
            if e.errno != errno.ENODATA:  # removed meanwhile
                raise
    return found or None


def children(dfd: int) -> list[tuple[str, os.stat_result]]:
    """The entries of directory dfd with their lstat, sorted by name."""
    with os.scandir(dfd) as it:
        found = [(d.name, d.stat(follow_symlinks=False)) for d in it]
    found.sort(key=lambda item: item[0])
    return found


def open_dir(pfd: int, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                   dir_fd=pfd)
