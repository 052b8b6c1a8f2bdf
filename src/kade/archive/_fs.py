"""Directory descriptors resolved inside one root, never outside it.

Invariant: every descriptor RootDir hands out names a directory reached from
the root descriptor one component at a time with O_NOFOLLOW, and callers pass
only single path components to *at calls on it. So no symlink, whatever it
points at, can make a write land outside the root. A symlink met on the way
is resolved by hand, in one of two scopes:

- "beneath" (layers, archives): the target must stay under the root; an
  absolute target or a ".." above the root raises Escape.
- "in_root" (paths a user names inside a container, like docker cp): the root
  acts as "/", so absolute targets restart at it and ".." stops at it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import Self

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_FOLLOWS = 40
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR)


class Escape(Exception):
    """A path would resolve outside the root."""


def join(head: str, name: str) -> str:
    return f"{head}/{name}" if head else name


def lexical(path: str) -> list[str]:
    """Components of path with "." dropped and ".." applied; ".." above the top
    raises Escape."""
    parts: list[str] = []
    for c in path.split("/"):
        if c == "..":
            if not parts:
                raise Escape(path)
            parts.pop()
        elif c and c != ".":
            parts.append(c)
    return parts


class RootDir:
    """Resolves relative directory paths under a root to cached descriptors.

    Cached descriptors stay valid until trim(), forget() or close(); callers
    trim() between independent operations, never while holding a descriptor.
    """

    def __init__(self, fd: int, *, scope: str = "beneath", cache_limit: int = 256) -> None:
        self.fd = fd
        self.scope = scope
        self._cache: dict[str, int] = {}
        self._limit = cache_limit
        self._followed = False  # some cached path went through a symlink

    @classmethod
    def open(cls, path: str, **kw: object) -> RootDir:
        return cls(os.open(path, DIR_FLAGS & ~os.O_NOFOLLOW), **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.trim(0)
        os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trim(self, limit: int | None = None) -> None:
        if len(self._cache) > (self._limit if limit is None else limit):
            for fd in self._cache.values():
                os.close(fd)
            self._cache.clear()
            self._followed = False

    def forget(self, rel: str) -> None:
        """Drop cached descriptors at or under rel, after it was removed."""
        if self._followed:
            self.trim(0)
            return
        below = rel + "/"
        for key in [k for k in self._cache if k == rel or k.startswith(below)]:
            os.close(self._cache.pop(key))

    def dir_fd(self, rel: str, *, create: bool = True) -> int:
        """The descriptor of directory rel ("" is the root), creating missing
        directories (0755) when create; rel has no "." or ".." components."""
        if not rel:
            return self.fd
        fd = self._cache.get(rel)
        if fd is not None:
            return fd
        missing = []
        head = rel
        while fd is None:
            head, _, name = head.rpartition("/")
            missing.append(name)
            fd = self._cache.get(head) if head else self.fd
        for name in reversed(missing):
            head = join(head, name)
            fd = self._open_child(fd, name, head, create)
            self._cache[head] = fd
        return fd

    def _open_child(self, pfd: int, name: str, rel: str, create: bool) -> int:
        fd = self._try_open(pfd, name, create)
        if fd >= 0:
            return fd
        self._followed = True
        return self.walk(rel, create=create)[0]

    def walk(self, rel: str, *, create: bool = False) -> tuple[int, list[str]]:
        """Resolve rel symlink by symlink: a new descriptor (the caller closes
        it) and the real components of the directory it names."""
        todo = rel.split("/")[::-1]
        fds: list[int] = []
        names: list[str] = []
        follows = 0
        try:
            while todo:
                c = todo.pop()
                if c in ("", "."):
                    continue
                if c == "..":
                    self._up(fds, names, rel)
                    continue
                cur = fds[-1] if fds else self.fd
                fd = self._try_open(cur, c, create)
                if fd >= 0:
                    fds.append(fd)
                    names.append(c)
                    continue
                follows += 1
                if follows > _MAX_FOLLOWS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", rel)
                target = _symlink_target(cur, c)
                if target.startswith("/"):
                    self._restart(fds, names, rel, target)
                todo.extend(target.split("/")[::-1])
            return (fds.pop() if fds else os.dup(self.fd)), names
        finally:
            for fd in fds:
                os.close(fd)

    def _try_open(self, cur: int, name: str, create: bool) -> int:
        """A descriptor for directory name, or -1 when name is a symlink."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=cur)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=cur)
            return os.open(name, DIR_FLAGS, dir_fd=cur)
        except OSError as e:
            if e.errno not in _NOT_FOLLOWED:
                raise
            return -1

    def _up(self, fds: list[int], names: list[str], rel: str) -> None:
        if fds:
            os.close(fds.pop())
            names.pop()
        elif self.scope == "beneath":
            raise Escape(rel)

    def _restart(self, fds: list[int], names: list[str], rel: str, target: str) -> None:
        if self.scope == "beneath":
            raise Escape(rel)
        while fds:
            os.close(fds.pop())
        names.clear()

    def real_path(self, rel: str, *, follow: bool) -> str:
        """The path rel names with every directory symlink resolved (in this
        scope); the last component too when follow. No "." or ".." in rel."""
        for _ in range(_MAX_FOLLOWS):
            head, _, name = rel.rpartition("/")
            fd, names = self.walk(head)
            try:
                target = _link_or_none(fd, name) if follow and name else None
            finally:
                os.close(fd)
            real_head = "/".join(names)
            if target is None:
                return join(real_head, name)
            if target.startswith("/") and self.scope == "beneath":
                raise Escape(rel)
            base = "" if target.startswith("/") else real_head
            rel = self._relative(join(base, target), rel)
        raise OSError(errno.ELOOP, "too many levels of symbolic links", rel)

    def _relative(self, path: str, rel: str) -> str:
        try:
            return "/".join(lexical(path))
        except Escape:
            if self.scope == "beneath":
                raise Escape(rel) from None
            return "/".join(clamped(path))


def clamped(path: str) -> list[str]:
    """Components of path as seen from "/": ".." at the top stays there."""
    parts: list[str] = []
    for c in path.split("/"):
        if c == "..":
            if parts:
                parts.pop()
        elif c and c != ".":
            parts.append(c)
    return parts


def _symlink_target(dirfd: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", name) from None
        raise


def _link_or_none(dirfd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def remove(pfd: int, name: str) -> None:
    """Remove name (a whole tree when a directory) without following symlinks."""
    if stat.S_ISDIR(os.lstat(name, dir_fd=pfd).st_mode):
        shutil.rmtree(name, dir_fd=pfd)
    else:
        os.unlink(name, dir_fd=pfd)


def proc_path(pfd: int, name: str) -> str:
    """A path to name in directory pfd for calls that take no dir_fd (xattrs):
    /proc resolves the directory; pass follow_symlinks=False for the name."""
    return f"/proc/self/fd/{pfd}/{name}"
