"""The Linux system calls the runtime needs, behind one small seam.

Python 3.11's os module has no unshare, setns, mount, umount2 or pivot_root, so they
are called through libc with ctypes. `Syscalls` is the only class that does so; the
namespace and mount logic (rootfs.py, process.py) takes one as an argument, which is
how tests/unit/runtime records what a container's setup would do without being root.

Invariant: every method either succeeds or raises OSError carrying errno; callers turn
that into a one-line KadeError naming the step (see `step_failed`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import stat

from kade import errors
from kade.util import inroot

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430       # _IOR('T', 0x30, unsigned int): a pty master's number
TIOCSPTLCK = 0x40045431     # _IOW('T', 0x31, int): (un)lock its slave

_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000

# pivot_root and mount_setattr have no glibc wrapper in Debian 12's glibc.
_SYSCALL_NUMBERS = {
    "x86_64": {"pivot_root": 155, "mount_setattr": 442, "clone": 56},
    "aarch64": {"pivot_root": 41, "mount_setattr": 442, "clone": 220},
    "riscv64": {"pivot_root": 41, "mount_setattr": 442, "clone": 220},
    "ppc64le": {"pivot_root": 203, "mount_setattr": 442, "clone": 120},
    "s390x": {"pivot_root": 217, "mount_setattr": 442},   # its clone takes the stack first
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long
_libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
_libc.signal.restype = ctypes.c_void_p
# glibc reserves 32 and 33 for its threads; SIGKILL and SIGSTOP cannot be changed
_RESETTABLE_SIGNALS = tuple(s for s in range(1, 65) if s not in (9, 19, 32, 33))


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _check(ret: int, path: str | None = None) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path) if path else OSError(err, os.strerror(err))


def _nr(name: str) -> int:
    machine = os.uname().machine
    try:
        return _SYSCALL_NUMBERS[machine][name]
    except KeyError:
        raise OSError(38, f"{name} is not known on {machine}") from None


class Syscalls:
    """The real system calls, plus the few file operations rootfs setup performs.

    The file operations are here too so that a recording double sees the whole
    sequence of changes a container's setup makes, in order.
    """

    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int = 0, data: str | None = None) -> None:
        _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), target)

    def umount2(self, target: str, flags: int = 0) -> None:
        _check(_libc.umount2(_b(target), flags), target)

    def mount_setattr(self, path: str, attr_set: int, attr_clr: int) -> None:
        """Change mount attributes of path and every mount below it."""
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        ret = _libc.syscall(ctypes.c_long(_nr("mount_setattr")), ctypes.c_int(_AT_FDCWD),
                            _b(path), ctypes.c_uint(_AT_RECURSIVE), ctypes.byref(attr),
                            ctypes.c_size_t(ctypes.sizeof(attr)))
        _check(ret, path)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        ret = _libc.syscall(ctypes.c_long(_nr("pivot_root")), _b(new_root), _b(put_old))
        _check(ret, new_root)

    def unshare(self, flags: int) -> None:
        _check(_libc.unshare(flags))

    def setns(self, fd: int, nstype: int) -> None:
        _check(_libc.setns(fd, nstype))

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc.sethostname(raw, len(raw)))

    def setdomainname(self, name: str) -> None:
        raw = name.encode()
        _check(_libc.setdomainname(raw, len(raw)))

    def prctl(self, option: int, arg2: int = 0) -> None:
        _check(_libc.prctl(option, arg2, 0, 0, 0))

    # -- file operations -----------------------------------------------------

    def mkdir_in_root(self, root: str, path: str) -> int:
        """mkdir -p of path resolved inside root (kade.util.inroot): its descriptor."""
        return inroot.mkdir_all(root, path)

    def touch_in_root(self, root: str, path: str) -> int:
        """A file at path resolved inside root, made empty (and its directories) when
        missing: an O_PATH descriptor of it."""
        try:
            return inroot.open_in_root(root, path, os.O_PATH)
        except FileNotFoundError:
            os.close(inroot.mkdir_all(root, os.path.dirname(path.rstrip("/")) or "/"))
        # read-only and non-blocking: no copy-up of an image's file, no wait on a fifo
        os.close(inroot.open_in_root(root, path, os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK))
        return inroot.open_in_root(root, path, os.O_PATH)

    def open_in_root(self, root: str, path: str, follow: bool = True) -> int:
        """An O_PATH descriptor of path resolved inside root."""
        return inroot.open_in_root(root, path, os.O_PATH, follow=follow)

    def fd_path(self, fd: int) -> str:
        """The path mount(2) and friends take for what fd names (runc's target fd)."""
        return inroot.fd_path(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        os.makedirs(path, mode, exist_ok=True)

    def touch(self, path: str, mode: int = 0o644) -> None:
        # read-only: opening an image's existing file for writing would copy it up
        # into the container's layer for nothing
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode))

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid, follow_symlinks=False)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def write_file(self, path: str, data: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_TRUNC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def is_dir(self, path: str) -> bool | None:
        """True for a directory, False for anything else, None when path is missing."""
        try:
            return stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            return None

    def mount_flags(self, path: str) -> int:
        """The MS_* flags of the mount holding path that a bind remount must keep."""
        keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME
        return os.statvfs(path).f_flag & keep   # ST_* values equal MS_* for these


_CLONE_PARENT = 0x00008000


def clone_parent() -> int:
    """fork(), except that the child's parent is our parent (CLONE_PARENT), as runc's
    nsexec makes the container's init. Only for a single-threaded process (a forked
    helper): the raw system call skips glibc's and Python's at-fork handling."""
    ret = _libc.syscall(ctypes.c_long(_nr("clone")),
                        ctypes.c_ulong(_CLONE_PARENT | signal.SIGCHLD),
                        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0),
                        ctypes.c_ulong(0))
    _check(ret)
    return ret


def write_proc(path: str, text: str) -> None:
    """One write(2) of text, as /proc's uid_map and gid_map require."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_proc(path: str) -> str:
    with open(path) as f:
        return f.read()


def reset_signal_dispositions() -> None:
    """Every signal back to SIG_DFL: ignored ones (Python ignores SIGPIPE and SIGXFSZ)
    would stay ignored across execve, and handled ones would run Python's handler
    until then. The signal module knows each disposition, so only those that are
    not SIG_DFL cost a system call."""
    for sig in _RESETTABLE_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_DFL:
            _libc.signal(sig, None)


def describe(err: BaseException) -> str:
    """An OSError as Go and docker print it: lower case, no errno number."""
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno).lower()
    return str(err)


def step_failed(what: str, err: BaseException) -> errors.FailedPrecondition:
    """The error for a setup step that failed: 'mount "proc" to ...: permission denied'."""
    return errors.FailedPrecondition(f"{what}: {describe(err)}")
