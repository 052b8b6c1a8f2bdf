"""A recording stand-in for kade.runtime.linux.Syscalls: no root, no side effects."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

Failure = Callable[[str, tuple], OSError | None]


class RecordingSyscalls:
    """Records every call as (name, *args), in order.

    dirs and files say what exists for is_dir; fail(name, args) may return an
    OSError for a call to raise (after it is recorded).
    """

    def __init__(self, dirs: set[str] = frozenset(), files: set[str] = frozenset(),  # type: ignore[assignment]
                 fail: Failure | None = None) -> None:
        self.calls: list[tuple] = []
        self.dirs, self.files = set(dirs), set(files)
        self._fail = fail

    def _call(self, name: str, *args: object) -> None:
        self.calls.append((name, *args))
        if self._fail and (err := self._fail(name, args)):
            raise err

    def named(self, *names: str) -> list[tuple]:
        return [c for c in self.calls if c[0] in names]

    def mount(self, source, target, fstype, flags=0, data=None):
        self._call("mount", source, target, fstype, flags, data)

    def umount2(self, target, flags=0):
        self._call("umount2", target, flags)

    def mount_setattr(self, path, attr_set, attr_clr):
        self._call("mount_setattr", path, attr_set, attr_clr)

    def pivot_root(self, new_root, put_old):
        self._call("pivot_root", new_root, put_old)

    def chroot(self, path):
        self._call("chroot", path)

    def fchdir(self, fd):
        self._call("fchdir", fd)

    def unshare(self, flags):
        self._call("unshare", flags)

    def setns(self, fd, nstype):
        self._call("setns", fd, nstype)

    def sethostname(self, name):
        self._call("sethostname", name)

    def setdomainname(self, name):
        self._call("setdomainname", name)

    def prctl(self, option, arg2=0):
        self._call("prctl", option, arg2)

    # the *_in_root calls return the joined path in place of a descriptor
    @staticmethod
    def _join(root, path):
        path = "/" + path.strip("/")
        return root if path == "/" else root.rstrip("/") + path

    def mkdir_in_root(self, root, path):
        self._call("makedirs", self._join(root, path))
        return self._join(root, path)

    def touch_in_root(self, root, path):
        self._call("makedirs", os.path.dirname(self._join(root, path)))
        self._call("touch", self._join(root, path))
        return self._join(root, path)

    def open_in_root(self, root, path, follow=True):
        return self._join(root, path)

    def fd_path(self, fd):
        return fd

    def close(self, fd):
        pass

    def makedirs(self, path, mode=0o755):
        self._call("makedirs", path)

    def touch(self, path, mode=0o644):
        self._call("touch", path)

    def mknod(self, path, mode, device):
        self._call("mknod", path, mode, device)

    def chown(self, path, uid, gid):
        self._call("chown", path, uid, gid)

    def symlink(self, target, path):
        self._call("symlink", target, path)

    def unlink(self, path):
        self._call("unlink", path)

    def chdir(self, path):
        self._call("chdir", path)

    def write_file(self, path, data):
        self._call("write_file", path, data)

    def is_dir(self, path):
        return True if path in self.dirs else False if path in self.files else None

    def mount_flags(self, path):
        return 0


def fail_on(name: str, where: str, code: int = errno.EPERM) -> Failure:
    """A failure for `name` calls whose arguments mention `where`."""
    def fail(call: str, args: tuple) -> OSError | None:
        if call == name and where in args:
            return OSError(code, os.strerror(code))
        return None
    return fail
