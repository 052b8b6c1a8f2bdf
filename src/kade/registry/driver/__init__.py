"""The storage driver: a tiny filesystem-like key/value store under the registry.

A driver knows paths and bytes, nothing else: no digests, repositories, tags or
links. All registry semantics (content addressing, verification before
publication, links, uploads) live above it, in kade.registry, so a new driver
only has to pass tests/unit/registry/test_driver_conformance.py.

Vocabulary:
- a *path* is absolute, `/`-separated, each component `[A-Za-z0-9._-]+` and
  never `.` or `..`; it names a *file* (bytes) or, implicitly, a *directory*
  (any prefix of a file's path).
- `put_content` and `move` are atomic: a reader sees the old file or the new,
  never a part. `move` replaces an existing destination.
- A `FileWriter`'s bytes are readable at its path once `commit` (durable) or
  `close` (may be appended to later with `writer(path, append=True)`) returns;
  `cancel` removes them.
- Errors: a missing path raises `PathNotFound`; a bad path `InvalidPath`.

Example:

    w = driver.writer("/v2/repositories/a/_uploads/u1/data")
    w.write(b"hello"); w.commit()
    driver.move("/v2/repositories/a/_uploads/u1/data", "/v2/blobs/sha256/2c/2cf2.../data")
    driver.get_content("/v2/blobs/sha256/2c/2cf2.../data") == b"hello"
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple, Protocol

from kade.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from typing import BinaryIO, Iterator

_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._-]+)+")


class PathNotFound(NotFound):
    def __init__(self, path: str):
        super().__init__(f'path "{path}" not found in the registry storage')
        self.path = path


class InvalidPath(InvalidArgument):
    pass


class FileInfo(NamedTuple):
    path: str
    size: int
    is_dir: bool
    mtime: float


class FileWriter(Protocol):
    size: int

    def write(self, data) -> int: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...

    def cancel(self) -> None: ...


class StorageDriver(Protocol):
    name: str

    def get_content(self, path: str) -> bytes: ...

    def put_content(self, path: str, data: bytes) -> None: ...

    def reader(self, path: str, offset: int = 0) -> "BinaryIO":
        """A file positioned at `offset`; a real file (with fileno) where possible,
        so the server can sendfile(2) from it."""

    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    def stat(self, path: str) -> FileInfo: ...

    def list(self, path: str) -> list[str]:
        """Names of the direct children of directory `path`, sorted."""

    def move(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None:
        """Removes a file, or a directory and everything under it."""


def check_path(path: str) -> str:
    if not _PATH_RE.fullmatch(path) or "/./" in path + "/" or "/../" in path + "/":
        raise InvalidPath(f'invalid storage path "{path}"')
    return path


def walk(driver: StorageDriver, path: str) -> "Iterator[FileInfo]":
    """Every file under `path`, depth first, in sorted order."""
    try:
        names = driver.list(path)
    except PathNotFound:
        return
    for name in names:
        child = f"{path.rstrip('/')}/{name}"
        try:
            info = driver.stat(child)
        except PathNotFound:
            continue
        if info.is_dir:
            yield from walk(driver, child)
        else:
            yield info
