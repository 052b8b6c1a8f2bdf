"""Crash-safe file writes and locks.

Every write that must survive a crash goes temp -> fsync -> rename, so a reader
sees the old content or the new, never a half.
"""

from __future__ import annotations

import fcntl
import os
import stat
from contextlib import contextmanager


def atomic_write(path: str, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data) if len(data) < (1 << 20) else _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def file_lock(path: str, shared: bool = False):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def rmtree(path: str) -> None:
    """shutil.rmtree that tolerates a missing path and immutable-free trees."""
    import shutil
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=False)


def remove_tree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) without importing shutil, which loads
    zlib, bz2 and lzma (~0.4 MB in the container supervisor, which removes every --rm
    container's files). Symlinks are removed, never followed; what cannot be removed
    (a busy mount point) stays, silently, as with ignore_errors."""
    try:
        for _, dirs, files, fd in os.fwalk(path, topdown=False):
            for name in files:
                _ignore(os.unlink, name, fd)
            for name in dirs:
                try:
                    os.rmdir(name, dir_fd=fd)
                except NotADirectoryError:  # fwalk lists a symlink to a dir with the dirs
                    _ignore(os.unlink, name, fd)
                except OSError:
                    pass
        os.rmdir(path)
    except OSError:
        pass


def _ignore(fn, name: str, dir_fd: int) -> None:
    try:
        fn(name, dir_fd=dir_fd)
    except OSError:
        pass


def du(path: str) -> int:
    """A tree's size as docker counts it (moby's pkg/directory.Size): the lstat size of
    everything but directories (files, symlinks, ...), each inode once, so hard links
    count once and a layer that only makes a directory (WORKDIR) is 0 B. Entries
    that vanish while it walks are skipped."""
    total = 0
    seen: set[tuple[int, int]] = set()
    todo = [path]
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                todo.append(entry.path)
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
