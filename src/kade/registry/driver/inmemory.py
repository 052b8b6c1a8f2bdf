"""The in-memory driver: a dict of path -> bytes, for unit tests.

Directories exist implicitly as prefixes of stored paths, as in object stores.
"""

from __future__ import annotations

import io
import threading
import time

from kade.registry.driver import FileInfo, InvalidPath, PathNotFound, check_path


class _Writer:
    def __init__(self, driver: "InMemoryDriver", path: str, append: bool):
        self._driver, self._path = driver, path
        self._buf: bytearray | None = (bytearray(driver._files.get(path, (b"", 0))[0])
                                       if append else bytearray())
        self.size = len(self._buf)

    def write(self, data) -> int:
        if self._buf is None:
            raise ValueError("write to a closed writer")
        self._buf += data
        self.size = len(self._buf)
        return len(data)

    def commit(self) -> None:
        self.close()

    def close(self) -> None:
        if self._buf is not None:
            self._driver.put_content(self._path, bytes(self._buf))
            self._buf = None

    def cancel(self) -> None:
        self._buf = None
        try:
            self._driver.delete(self._path)
        except PathNotFound:
            pass


class InMemoryDriver:
    name = "inmemory"

    def __init__(self):
        self._files: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def get_content(self, path: str) -> bytes:
        try:
            return self._files[check_path(path)][0]
        except KeyError:
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        check_path(path)
        with self._lock:
            if self._is_dir(path):
                raise InvalidPath(f'"{path}" is a directory')
            self._files[path] = (bytes(data), time.time())

    def reader(self, path: str, offset: int = 0):
        f = io.BytesIO(self.get_content(path))
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> _Writer:
        return _Writer(self, check_path(path), append)

    def stat(self, path: str) -> FileInfo:
        check_path(path)
        with self._lock:
            if path in self._files:
                data, mtime = self._files[path]
                return FileInfo(path, len(data), False, mtime)
            if self._is_dir(path):
                return FileInfo(path, 0, True, 0.0)
        raise PathNotFound(path)

    def list(self, path: str) -> list[str]:
        prefix = "/" if path == "/" else check_path(path) + "/"
        with self._lock:
            names = {p[len(prefix):].split("/", 1)[0] for p in self._files if p.startswith(prefix)}
            if not names and path in self._files:
                raise PathNotFound(path)
        if not names:
            raise PathNotFound(path)
        return sorted(names)

    def move(self, src: str, dst: str) -> None:
        check_path(src), check_path(dst)
        with self._lock:
            if src not in self._files:
                raise PathNotFound(src)
            self._files[dst] = self._files.pop(src)

    def delete(self, path: str) -> None:
        check_path(path)
        prefix = path + "/"
        with self._lock:
            doomed = [p for p in self._files if p == path or p.startswith(prefix)]
            if not doomed:
                raise PathNotFound(path)
            for p in doomed:
                del self._files[p]

    def _is_dir(self, path: str) -> bool:
        prefix = path + "/"
        return any(p.startswith(prefix) for p in self._files)
