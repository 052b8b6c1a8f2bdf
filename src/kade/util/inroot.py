"""Paths from an image or a user, resolved inside a root and never outside it.

The one place Kade turns an untrusted path (a VOLUME, a WORKDIR, a mount
destination, a `cp` or COPY destination, /etc/passwd for `-u`) into a file of a
container's root. The root acts as "/": absolute symlinks restart at it, ".."
stops at it, whatever symlinks the tree holds, so nothing outside the root is
ever opened, created or mounted on.

    fd = open_in_root(root, "/a/etc", os.O_PATH | os.O_DIRECTORY)
    fd = mkdir_all(root, "/w/tmp/new", owner=(uid, gid))   # runc's MkdirAllInRoot
    mount(source, fd_path(fd), ...)     # the target fd, as runc mounts: a symlink
                                        # swapped in afterwards redirects nothing
    parent_fd, name, real = resolve(root_fd, path, follow=False)   # for *at calls

Two implementations that must agree (tests/unit/util/test_inroot.py runs both):
openat2(2) with RESOLVE_IN_ROOT, where the kernel does the walk (Linux 5.6+),
and a walk one component at a time with O_NOFOLLOW that reads each symlink and
resolves it by hand, for kernels without openat2 (ENOSYS). Python 3.11 has no
os.openat2, so syscall 437 is called through ctypes, imported lazily on first
use: ctypes costs milliseconds to import, and the `ps`/`images`/`run` client
paths never resolve a path in a root.

Invariants: a descriptor this module returns names something reached from the
root only through single components opened with O_NOFOLLOW (or by the kernel
under RESOLVE_IN_ROOT); magic links (/proc/<pid>/root and the like) are refused
by openat2 and resolved as plain symlinks (inside the root) by the walk. Errors
are OSError with errno (ENOENT, ENOTDIR, ELOOP, EEXIST), for callers to word.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["fd_path", "mkdir_all", "open_in_root", "resolve"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40    # the kernel's limit (MAXSYMLINKS)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_OPENAT2 = {"x86_64": 437, "aarch64": 437, "riscv64": 437, "ppc64le": 437, "s390x": 437}
_state: dict = {}   # "openat2": the callable, or False when the kernel has none


def fd_path(fd: int) -> str:
    """A path naming exactly what fd names, for calls that take no descriptor
    (mount(2) targets, cp): the kernel follows the magic link to the fd's file."""
    return f"/proc/self/fd/{fd}"


def open_in_root(root: str | int, path: str, flags: int = os.O_RDONLY, mode: int = 0o644, *,
                 follow: bool = True) -> int:
    """A new descriptor of path with root (a directory or its descriptor) as "/".

    follow=False leaves a last symlink unfollowed (with O_PATH: a descriptor of the
    link itself; otherwise ELOOP). O_CREAT creates a missing last component.
    """
    flags |= os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    root_fd = _root_fd(root)
    try:
        impl = _openat2()
        if impl:
            try:
                return impl(root_fd, path, flags, mode)
            except OSError as e:
                if e.errno != errno.ENOSYS:
                    raise
                _state["openat2"] = False
        return _open_walk(root_fd, path, flags, mode)
    finally:
        if root_fd != root:
            os.close(root_fd)


def mkdir_all(root: str | int, path: str, mode: int = 0o755, *,
              owner: tuple[int, int] | None = None) -> int:
    """mkdir -p of path inside root: a descriptor (O_DIRECTORY) of the directory.

    Existing components resolve as open_in_root does (a symlink to a missing
    directory creates that directory, inside the root); each new one is made with
    mkdirat in its resolved parent, given mode exactly and owner when set. A
    component that is not a directory raises ENOTDIR.
    """
    try:
        return open_in_root(root, path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    root_fd = _root_fd(root)
    try:
        pfd, name, _ = resolve(root_fd, path, follow=True, make=(mode, owner))
    finally:
        if root_fd != root:
            os.close(root_fd)
    try:
        if not name:
            return os.dup(pfd)
        _mkdir_at(pfd, name, mode, owner)
        return os.open(name, _DIR, dir_fd=pfd)
    finally:
        os.close(pfd)


def resolve(root_fd: int, path: str, *, follow: bool = True,
            make: tuple[int, tuple[int, int] | None] | None = None
            ) -> tuple[int, str, list[str]]:
    """Walk path from root_fd as "/", one component at a time, by hand.

    Returns a new descriptor of the directory holding the last component, that
    name ("" when path ends in "/", "." or ".." or names the root) and the real
    path's components. A last symlink is followed only when follow; a missing
    last component is no error; a missing directory on the way raises ENOENT,
    unless make=(mode, owner): then it is created.
    """
    todo = path.split("/")[::-1]
    fds = [os.dup(root_fd)]
    names: list[str] = []
    links = 0
    try:
        while todo:
            c = todo.pop()
            if c in ("", ".", ".."):
                if c == ".." and names:
                    os.close(fds.pop())
                    names.pop()
                continue
            last = not todo     # "a/" leaves [""]: a directory is wanted, opened below
            st = _lstat(fds[-1], c)
            if st is None and (last or make is None):
                if last:
                    return os.dup(fds[-1]), c, names + [c]
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            if st is not None and stat.S_ISLNK(st.st_mode) and (follow or not last):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(c, dir_fd=fds[-1])
                if target.startswith("/"):
                    while len(fds) > 1:
                        os.close(fds.pop())
                    names.clear()
                todo.extend(target.split("/")[::-1])
                continue
            if last:
                return os.dup(fds[-1]), c, names + [c]
            if st is None and make is not None:
                _mkdir_at(fds[-1], c, *make)
            fds.append(os.open(c, _DIR, dir_fd=fds[-1]))   # ENOTDIR for a file
            names.append(c)
        return os.dup(fds[-1]), "", names
    finally:
        for fd in fds:
            os.close(fd)


def _open_walk(root_fd: int, path: str, flags: int, mode: int) -> int:
    pfd, name, _ = resolve(root_fd, path, follow=not flags & os.O_NOFOLLOW)
    try:
        if not name:   # the root itself, or a path ending in "/", "." or ".."
            return os.open(".", flags & ~(os.O_CREAT | os.O_EXCL), mode, dir_fd=pfd)
        # a last symlink was followed by resolve(); one left here is not to be
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=pfd)
    finally:
        os.close(pfd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def _mkdir_at(pfd: int, name: str, mode: int, owner: tuple[int, int] | None) -> None:
    try:
        os.mkdir(name, mode, dir_fd=pfd)
    except FileExistsError:
        return   # made meanwhile: opening it with O_NOFOLLOW checks what it is
    fd = os.open(name, _DIR, dir_fd=pfd)
    try:
        os.fchmod(fd, mode)     # exactly mode, whatever the umask
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)


def _root_fd(root: str | int) -> int:
    if isinstance(root, int):
        return root
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _openat2():
    """The openat2 caller, built on first use (ctypes is imported only here)."""
    impl = _state.get("openat2")
    if impl is None:
        impl = _state["openat2"] = _make_openat2()
    return impl


def _make_openat2():
    nr = _OPENAT2.get(os.uname().machine)
    if nr is None:
        return False
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
        creates = flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE
        # the kernel refuses a mode with flags that create nothing
        how = OpenHow(flags, mode if creates else 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        for _ in range(16):   # EAGAIN: a rename raced the walk; the kernel asks to retry
            fd = libc.syscall(ctypes.c_long(nr), ctypes.c_int(dir_fd),
                              os.fsencode(path or "."), ctypes.byref(how),
                              ctypes.c_size_t(ctypes.sizeof(how)))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err != errno.EAGAIN:
                raise OSError(err, os.strerror(err), path)
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)
    return openat2
