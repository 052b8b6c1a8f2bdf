"""Applying layer tars and extracting archives, safely and fast.

Safety: entry names are cleaned lexically (".." may not climb above the root;
absolute names are refused or taken as relative, by policy), parent
directories are resolved by RootDir (symlinks followed only while they stay
beneath the root), and every change is an *at call on a single component, so
no entry can touch anything outside the root. Anything unsafe raises
InvalidArgument naming the entry; the caller discards the partial directory.

Layers follow the OCI image-spec whiteout rules: ".wh.NAME" removes NAME and
".wh..wh..opq" hides everything lower layers put in its directory; what this
layer itself writes always stays, wherever the marker sits in the tar.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from kade.archive import _format as fmt
from kade.archive._fs import Escape, RootDir, clamped, join, lexical, proc_path, remove
from kade.archive._reader import TarReader
from kade.errors import FailedPrecondition, Forbidden, InvalidArgument, NotFound

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NODE_TYPES = {fmt.CHR: stat.S_IFCHR, fmt.BLK: stat.S_IFBLK, fmt.FIFO: stat.S_IFIFO}


class ApplyResult(NamedTuple):
    size: int  # bytes of regular-file data written
    entries: int  # members applied, whiteouts included
    tar_size: int  # bytes of (uncompressed) tar read


def apply_layer(stream: BinaryIO, root: str, *, whiteouts: str = "overlay", owners: bool = True,
                absolute: str = "refuse") -> ApplyResult:
    """Apply the layer tar in stream (already decompressed) onto directory root.

    whiteouts="overlay" writes overlayfs whiteouts (0/0 character devices and
    trusted.overlay.opaque=y), for an upper directory; "delete" removes what
    they hide, for a copy of the parent layer.
    """
    _check_choice("whiteouts", whiteouts, ("overlay", "delete"))
    with _open_root(root) as rd:
        x = _Extractor(TarReader(stream), rd, label="layer entry", whiteouts=whiteouts,
                       owners=owners, absolute=absolute)
        return x.run()


def members(stream: BinaryIO) -> Iterator[fmt.Entry]:
    """The members of the tar in stream (already decompressed), their data skipped;
    pax and GNU headers folded in. A malformed tar raises InvalidArgument."""
    reader = TarReader(stream)
    while True:
        try:
            e = reader.next()
        except fmt.FormatError as err:
            raise InvalidArgument(f"layer is not a valid tar: {err}") from None
        if e is None:
            return
        yield e


def extract_into(stream: BinaryIO, root: str, dest: str, *, absolute: str = "refuse",
                 owners: bool = False) -> ApplyResult:
    """Extract the tar in stream into directory dest of the tree at root (a
    container's rootfs), like docker cp: dest is resolved with root as "/",
    entries may not leave dest, ".wh." names are plain files. owners keeps
    the archive's uid/gid (docker cp -a); otherwise files belong to the caller."""
    with _open_root(root, scope="in_root") as top:
        try:
            real = top.real_path("/".join(clamped(dest)), follow=True)
            fd = top.dir_fd(real, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f'destination directory "{dest}" not found in the container') from None
        with RootDir(os.dup(fd)) as rd:
            x = _Extractor(TarReader(stream), rd, label="archive entry", whiteouts=None,
                           owners=owners, absolute=absolute)
            return x.run()


def _open_root(root: str, scope: str = "beneath") -> RootDir:
    try:
        return RootDir.open(root, scope=scope)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f'directory "{root}" not found') from None


def _check_choice(what: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise InvalidArgument(f'{what} must be one of {", ".join(map(str, choices))}, '
                              f'not "{value}"')


class _Extractor:
    def __init__(self, reader: TarReader, root: RootDir, *, label: str, whiteouts: str | None,
                 owners: bool, absolute: str) -> None:
        _check_choice("absolute", absolute, ("refuse", "relative"))
        self.reader = reader
        self.root = root
        self.label = label
        self.whiteouts = whiteouts
        self.owners = owners
        self.refuse_absolute = absolute == "refuse"
        self.ids = (os.geteuid(), os.getegid())
        self.umask = _umask()
        self.written: set[str] = {""}  # paths this tar wrote, and their parents
        self.dirs: dict[str, fmt.Entry] = {}  # mode and times are set last
        self.size = 0
        self.entries = 0
        self.make: dict[int, Callable[[fmt.Entry, int, str, str], None]] = {
            fmt.REG: self._file, fmt.AREG: self._file, fmt.CONT: self._file,
            fmt.DIR: self._dir, fmt.SYM: self._symlink, fmt.LNK: self._hardlink,
            fmt.CHR: self._node, fmt.BLK: self._node, fmt.FIFO: self._node,
        }

    def run(self) -> ApplyResult:
        e = None
        try:
            while (e := self.reader.next()) is not None:
                self.root.trim()
                self._apply(e)
            self._finish_dirs()
            self.reader.drain()
        except fmt.FormatError as err:
            raise InvalidArgument(f"{self._what(None)} is not a valid tar: {err}"
                                  + (f' (at "{e.name}")' if e else "")) from None
        except Escape:
            raise InvalidArgument(f"{self._what(e)} escapes the root") from None
        except ValueError as err:  # a NUL inside a name or link target
            raise InvalidArgument(f"{self._what(e)} is invalid: {err}") from None
        except OSError as err:
            raise self._os_error(e, err) from err
        return ApplyResult(self.size, self.entries, self.reader.offset)

    def _what(self, e: fmt.Entry | None) -> str:
        return f'{self.label} "{e.name}"' if e is not None else self.label.split()[0]

    def _os_error(self, e: fmt.Entry | None, err: OSError) -> Exception:
        msg = f"cannot apply {self._what(e)}: {err.strerror or err}"
        if err.errno == errno.ELOOP:  # a symlink loop in the archive itself
            return InvalidArgument(msg)
        if err.errno in (errno.EPERM, errno.EACCES):
            return Forbidden(msg)
        return FailedPrecondition(msg)

    def _clean(self, name: str, what: str) -> str:
        if name.startswith("/") and self.refuse_absolute:
            raise InvalidArgument(f'{what} "{name}": absolute paths are refused')
        if not name.startswith((".", "/")) and "/." not in name and "//" not in name:
            return name.rstrip("/")  # no empty, "." or ".." components: clean already
        return "/".join(lexical(name))

    def _apply(self, e: fmt.Entry) -> None:
        self.entries += 1
        rel = self._clean(e.name, self.label)
        head, _, base = rel.rpartition("/")
        if self.whiteouts and base.startswith(WHITEOUT_PREFIX):
            return self._whiteout(e, head, base)
        make = self.make.get(e.kind)
        if make is None:
            raise InvalidArgument(f'{self.label} "{e.name}" has unsupported type {chr(e.kind)!r}')
        self._note(rel, head)
        if not rel:
            return self._root_entry(e)
        make(e, self.root.dir_fd(head), base, rel)

    def _note(self, rel: str, head: str) -> None:
        w = self.written
        w.add(rel)
        while head not in w:
            w.add(head)
            head = head.rpartition("/")[0]

    def _root_entry(self, e: fmt.Entry) -> None:
        if e.kind != fmt.DIR:
            raise InvalidArgument(f'{self.label} "{e.name}" names the root but is not a directory')
        self._own(e, self.root.fd)
        self.dirs[""] = e

    # Members.

    def _file(self, e: fmt.Entry, pfd: int, name: str, rel: str) -> None:
        mode = e.mode & 0o7777
        try:
            fd = os.open(name, _FILE_FLAGS, mode & 0o777, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, name, rel)
            fd = os.open(name, _FILE_FLAGS, mode & 0o777, dir_fd=pfd)
        try:
            if e.size:
                self.reader.copy_to(fd, e.size)
                self.size += e.size
            self._own(e, fd)
            if mode & 0o7000 or mode & self.umask:
                os.fchmod(fd, mode)
            if e.xattrs:
                self._xattrs(e, fd)
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _dir(self, e: fmt.Entry, pfd: int, name: str, rel: str) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(name, dir_fd=pfd).st_mode):
                self._clear(pfd, name, rel)
                os.mkdir(name, 0o700, dir_fd=pfd)
        if self._foreign(e):
            os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(e, self.root.dir_fd(rel))
        self.dirs[rel] = e

    def _symlink(self, e: fmt.Entry, pfd: int, name: str, rel: str) -> None:
        try:
            os.symlink(e.linkname, name, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, name, rel)
            os.symlink(e.linkname, name, dir_fd=pfd)
        self._meta_at(e, pfd, name)

    def _hardlink(self, e: fmt.Entry, pfd: int, name: str, rel: str) -> None:
        try:
            target = self._clean(e.linkname, f'{self.label} "{e.name}" links to')
        except Escape:
            raise InvalidArgument(f'{self.label} "{e.name}" links to "{e.linkname}", '
                                  "outside the root") from None
        if not target:
            raise InvalidArgument(f'{self.label} "{e.name}" is a hardlink to the root')
        thead, _, tname = target.rpartition("/")
        try:
            tpfd = self.root.dir_fd(thead, create=False)
            self._link(tpfd, tname, pfd, name, rel)
        except FileNotFoundError:
            raise InvalidArgument(f'{self.label} "{e.name}" links to "{e.linkname}", '
                                  "which does not exist") from None

    def _link(self, tpfd: int, tname: str, pfd: int, name: str, rel: str) -> None:
        try:
            os.link(tname, name, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileExistsError:
            self._clear(pfd, name, rel)
            os.link(tname, name, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _node(self, e: fmt.Entry, pfd: int, name: str, rel: str) -> None:
        kind = _NODE_TYPES[e.kind]
        dev = os.makedev(e.devmajor, e.devminor) if kind != stat.S_IFIFO else 0
        try:
            os.mknod(name, kind | (e.mode & 0o777), dev, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, name, rel)
            os.mknod(name, kind | (e.mode & 0o777), dev, dir_fd=pfd)
        self._meta_at(e, pfd, name)
        if e.mode & 0o7000 or e.mode & self.umask:
            _chmod_node(pfd, name, kind, e.mode & 0o7777)

    # Metadata.

    def _foreign(self, e: fmt.Entry) -> bool:
        return self.owners and (e.uid, e.gid) != self.ids

    def _own(self, e: fmt.Entry, fd: int) -> None:
        if self.owners and (e.uid, e.gid) != self.ids:
            os.fchown(fd, e.uid, e.gid)

    def _meta_at(self, e: fmt.Entry, pfd: int, name: str) -> None:
        """Owner, xattrs and times of a member that cannot be opened (links, nodes)."""
        if self._foreign(e):
            os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(e, proc_path(pfd, name), follow=False)
        os.utime(name, ns=(e.atime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _xattrs(self, e: fmt.Entry, target: int | str, *, follow: bool = True) -> None:
        for key, value in (e.xattrs or {}).items():
            try:
                os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as err:
                if err.errno != errno.ENOTSUP:  # the filesystem has no such namespace
                    raise

    def _finish_dirs(self) -> None:
        # Deepest first: a parent stays traversable until its children are done.
        for rel in sorted(self.dirs, reverse=True):
            e = self.dirs[rel]
            fd = self.root.dir_fd(rel, create=False)
            os.fchmod(fd, e.mode & 0o7777)
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
            self.root.trim()

    # Replacing and removing.

    def _clear(self, pfd: int, name: str, rel: str) -> None:
        """Make room for a new member at rel, whatever is there now."""
        remove(pfd, name)
        self.root.forget(rel)
        below = rel + "/"
        for key in [k for k in self.dirs if k == rel or k.startswith(below)]:
            del self.dirs[key]

    def _whiteout(self, e: fmt.Entry, head: str, base: str) -> None:
        if base == OPAQUE_MARKER:
            return self._opaque(head)
        if base.startswith(WHITEOUT_META_PREFIX):
            return None  # aufs bookkeeping (.wh..wh.plnk and the like), never content
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            raise InvalidArgument(f'{self.label} "{e.name}" is a whiteout of no name')
        rel = join(head, victim)
        if rel in self.written:
            return None  # this layer's own entry outlives its whiteout
        if self.whiteouts == "overlay":
            return self._overlay_whiteout(e, head, victim, rel)
        pfd = self._existing_dir(head)
        if pfd >= 0 and _lexists(pfd, victim):
            self._clear(pfd, victim, rel)
        return None

    def _overlay_whiteout(self, e: fmt.Entry, head: str, victim: str, rel: str) -> None:
        self._note(head, head.rpartition("/")[0])
        pfd = self.root.dir_fd(head)
        try:
            os.mknod(victim, stat.S_IFCHR, 0, dir_fd=pfd)
        except FileExistsError:
            self._clear(pfd, victim, rel)
            os.mknod(victim, stat.S_IFCHR, 0, dir_fd=pfd)
        if self._foreign(e):
            os.chown(victim, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)

    def _opaque(self, head: str) -> None:
        if self.whiteouts == "overlay":
            self._note(head, head.rpartition("/")[0])
            os.setxattr(self.root.dir_fd(head), OVERLAY_OPAQUE_XATTR, b"y")
            return
        fd = self._existing_dir(head)
        if fd >= 0:
            self._purge(head, fd)

    def _purge(self, rel: str, fd: int) -> None:
        """Remove what is under directory rel except what this layer wrote."""
        for name in os.listdir(fd):
            child = join(rel, name)
            if child not in self.written:
                self._clear(fd, name, child)
            elif stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                self._purge(child, self.root.dir_fd(child, create=False))

    def _existing_dir(self, rel: str) -> int:
        try:
            return self.root.dir_fd(rel, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return -1


def _lexists(pfd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=pfd)
    except FileNotFoundError:
        return False
    return True


def _chmod_node(pfd: int, name: str, kind: int, mode: int) -> None:
    # Linux has no lchmod; chmod through an O_PATH descriptor of the node
    # itself, checked to be the node we made, so a swapped-in symlink is never followed.
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    try:
        if stat.S_IFMT(os.fstat(fd).st_mode) != kind:
            raise FileExistsError(errno.EEXIST, "replaced while extracting", name)
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def _umask() -> int:
    # Read, not set: os.umask() would change it for every thread for a moment.
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o777  # unknown: always chmod
