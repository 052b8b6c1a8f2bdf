"""Building tars with the stdlib and describing trees, for the archive tests."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

import pytest

root_only = pytest.mark.skipif(os.geteuid() != 0,
                               reason="needs root (ownership, devices, trusted xattrs)")

MTIME = 1_600_000_000

Member = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes, mode: int, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = kw.pop("mtime", MTIME)  # type: ignore[assignment]
    info.uid, info.gid = os.geteuid(), os.getegid()  # so tests pass without root
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> Member:
    info = _info(name, tarfile.REGTYPE, mode, **kw)
    info.size = len(data)
    return info, data


def directory(name: str, mode: int = 0o755, **kw: object) -> Member:
    return _info(name, tarfile.DIRTYPE, mode, **kw), None


def symlink(name: str, target: str, **kw: object) -> Member:
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target, **kw), None


def hardlink(name: str, target: str, **kw: object) -> Member:
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target, **kw), None


def fifo(name: str, mode: int = 0o640, **kw: object) -> Member:
    return _info(name, tarfile.FIFOTYPE, mode, **kw), None


def chardev(name: str, major: int, minor: int, mode: int = 0o666, **kw: object) -> Member:
    return _info(name, tarfile.CHRTYPE, mode, devmajor=major, devminor=minor, **kw), None


def whiteout(name: str) -> Member:
    return file(name)


def make_tar(members: list[Member], format: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def read_tar(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return tf.getmembers()


def xattrs(path: str) -> dict[str, bytes]:
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {k: os.getxattr(path, k, follow_symlinks=False) for k in sorted(keys)
            if not k.startswith("security.selinux")}


def tree(root: str, *, times: bool = True, owners: bool = True) -> dict[str, tuple]:
    """Everything a layer round trip must keep, per relative path."""
    out: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            first = inodes.setdefault((st.st_dev, st.st_ino), rel)
            out[rel] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                (st.st_uid, st.st_gid) if owners else None,
                st.st_mtime_ns // 10**9 if times and not stat.S_ISLNK(st.st_mode) else None,
                _content(path, st), st.st_rdev,
                first if not stat.S_ISDIR(st.st_mode) else None, xattrs(path),
            )
    return out


def _content(path: str, st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    return None


def listing(root: str) -> list[str]:
    """Every path under root, relative, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


class CountingReader(io.RawIOBase):
    """Counts what is read through it (checks that apply_layer drains)."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._src.readinto(b)
        self.count += n
        return n
