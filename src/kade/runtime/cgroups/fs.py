"""The cgroup filesystem seam, and the one way values get written to it.

`HostFS` is the kernel's cgroupfs through plain file calls. Tests hand a
Hierarchy rooted in tmp_path a subclass whose rmdir also removes the files it
finds, since a tmp dir full of written control files is not removable the way
a cgroup dir is.
"""

from __future__ import annotations

import errno
import os

from kade.errors import FailedPrecondition, InvalidArgument

TYPE_CHECKING = False  # typing costs the supervisor ~0.4 MB (kade.util.namedtuple)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from kade.util.namedtuple import NamedTuple


class Write(NamedTuple):
    """One control-file write. An optional one is skipped if the file is absent
    (the kernel lacks the feature, e.g. swap accounting or a blkio weight)."""

    file: str
    value: str
    optional: bool = False


class HostFS:
    """File operations on cgroupfs; every cgroup read and write goes through here."""

    def read(self, path: str) -> str | None:
        """The file's text without the trailing newline, or None if absent."""
        try:
            with open(path) as f:
                return f.read().rstrip("\n")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, value: str) -> None:
        # O_CREAT is harmless on cgroupfs (it refuses to create, with EACCES)
        # and lets a plain directory tree stand in for it in tests.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mkdir(self, path: str) -> bool:
        """Make the dir; False if it was already there."""
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            return False
        return True

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def subdirs(self, path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []


def apply_writes(fs: HostFS, directory: str, writes: list[Write]) -> None:
    """Write each value, retrying the refused ones once after the rest.

    Some limits must stay ordered while they change (v1 memory.limit_in_bytes
    may not exceed memory.memsw.limit_in_bytes; cfs quota against period), so a
    write the kernel refuses can succeed once its partner has been written.
    """
    refused = []
    for w in writes:
        if _write(fs, directory, w) is not None:
            refused.append(w)
    for w in refused:
        err = _write(fs, directory, w)
        if err is not None:
            raise _error(w, err)


def _write(fs: HostFS, directory: str, w: Write) -> OSError | None:
    try:
        fs.write(os.path.join(directory, w.file), w.value)
    except (FileNotFoundError, PermissionError) as e:
        if w.optional:
            return None
        return e
    except OSError as e:
        return e
    return None


def _error(w: Write, err: OSError) -> Exception:
    message = f'cannot set cgroup {w.file} to "{w.value}": {os.strerror(err.errno or 0)}'
    if err.errno in (errno.EINVAL, errno.ERANGE):
        return InvalidArgument(message)
    if err.errno == errno.EBUSY:
        return FailedPrecondition(message)
    return OSError(err.errno, message)
