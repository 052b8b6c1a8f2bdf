"""The filesystem driver: driver paths are files under one root directory.

Crash safety: `put_content` writes a temporary file, fsyncs it, renames it over
the target and fsyncs the directory; `FileWriter.commit` fsyncs; `move` is a
rename(2) followed by an fsync of the destination's directory. Temporary files
are named `.tmp-*`, which no registry path ever is.

Speed: a writer asks the kernel to start writing back every `WRITEBACK_STEP`
bytes as they arrive (sync_file_range(2), without waiting), so the fsync at
commit finds little left to do instead of the whole blob.
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import TYPE_CHECKING, Any

from kade.registry.driver import FileInfo, InvalidPath, PathNotFound, check_path

if TYPE_CHECKING:
    from typing import BinaryIO

WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range: Any = None


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE), where libc has it."""
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes
            fn = ctypes.CDLL(None, use_errno=True).sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = fn
        except (OSError, AttributeError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class _Writer:
    def __init__(self, full: str, append: bool):
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        try:
            self._fd = os.open(full, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            self._fd = os.open(full, flags, 0o644)
        self._full = full
        self.size = os.fstat(self._fd).st_size if append else 0
        self._flushed = self.size  # bytes up to here were handed to writeback

    def write(self, data) -> int:
        view = memoryview(data)
        total = len(view)
        while view:
            view = view[os.write(self._fd, view):]
        self.size += total
        if self.size - self._flushed >= WRITEBACK_STEP:
            _start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size
        return total

    def commit(self) -> None:
        os.fsync(self._fd)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def cancel(self) -> None:
        self.close()
        try:
            os.unlink(self._full)
        except FileNotFoundError:
            pass


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        return self.root + check_path(path)

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        tmp = f"{os.path.dirname(full)}/.tmp-{os.urandom(6).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)  # a full disk must not fill up with half-written files
            raise
        os.close(fd)
        self._rename(tmp, full)

    def reader(self, path: str, offset: int = 0) -> "BinaryIO":
        try:
            f = open(self._full(path), "rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None
        if offset:
            f.seek(offset)
        return f  # type: ignore[return-value]

    def writer(self, path: str, append: bool = False) -> _Writer:
        return _Writer(self._full(path), append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = (st.st_mode & 0o170000) == 0o040000
        return FileInfo(path, 0 if is_dir else st.st_size, is_dir, st.st_mtime)

    def list(self, path: str) -> list[str]:
        full = self.root if path == "/" else self._full(path)
        try:
            names = os.listdir(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        return sorted(n for n in names if not n.startswith(".tmp-"))

    def move(self, src: str, dst: str) -> None:
        full_src, full_dst = self._full(src), self._full(dst)
        if not os.path.exists(full_src):
            raise PathNotFound(src)
        os.makedirs(os.path.dirname(full_dst), exist_ok=True)
        self._rename(full_src, full_dst)

    def delete(self, path: str) -> None:
        full = self._full(path)
        if full == self.root:
            raise InvalidPath("refusing to delete the storage root")
        try:
            os.unlink(full)
        except IsADirectoryError:
            shutil.rmtree(full, ignore_errors=True)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        except OSError as e:  # EPERM from unlink(2) on a directory on some systems
            if e.errno not in (errno.EPERM, errno.EISDIR):
                raise
            shutil.rmtree(full, ignore_errors=True)

    @staticmethod
    def _rename(src: str, dst: str) -> None:
        os.rename(src, dst)
        fd = os.open(os.path.dirname(dst), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
