"""Tars of plain trees: `kade export` (a whole rootfs) and `kade cp` out of a
container (one path, named by its base name, like docker cp)."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from kade.archive._fs import Escape, RootDir, clamped
from kade.archive._writer import TarWriter, children, open_dir, read_xattrs
from kade.errors import InvalidArgument, NotFound


def write_tree(out: BinaryIO, root: str, paths: list[str] | None = None, *, prefix: str = "",
               follow: bool = False) -> None:
    """Write a tar of the tree at root, or of paths inside it, to out.

    Without paths the members are root's contents ("etc/", "etc/hosts", ...).
    Each path is resolved with root as "/" (its symlinks cannot leave root) and
    becomes a member named by its base name, a directory with its contents
    below it, as docker cp does: "dir/." gives the directory's contents
    instead, "dir/" must be a directory (through a last symlink too). follow
    dereferences a path that is itself a symlink (docker cp -L); symlinks
    inside the tree are never followed. prefix goes before every name.
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    w = TarWriter(out)
    with RootDir.open(root, scope="in_root") as rd:
        if paths is None:
            _contents(w, rd.fd, prefix)
        for path in paths or ():
            _path(w, rd, path, prefix, follow)
    w.close()


def _path(w: TarWriter, rd: RootDir, path: str, prefix: str, follow: bool) -> None:
    parts = clamped(path)
    contents = path.endswith("/.") or not parts
    as_dir = contents or path.endswith("/")  # "dir/" goes through a last symlink
    try:
        real = rd.real_path("/".join(parts), follow=follow or as_dir)
        head, _, name = real.rpartition("/")
        pfd = rd.dir_fd(head, create=False)
        st = os.lstat(name, dir_fd=pfd) if name else os.fstat(pfd)
    except (FileNotFoundError, NotADirectoryError, Escape):
        raise NotFound(f'path "{path}" not found in the container') from None
    if as_dir and not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f'path "{path}" is not a directory')
    if contents:
        fd = open_dir(pfd, name) if name else os.dup(pfd)
        try:
            _contents(w, fd, prefix)
        finally:
            os.close(fd)
        return
    _member(w, pfd, name, prefix + (parts[-1] if parts else "."), st)


def _member(w: TarWriter, pfd: int, name: str, arc: str, st: os.stat_result) -> None:
    w.add(pfd, name, arc, st, read_xattrs(pfd, name))
    if stat.S_ISDIR(st.st_mode):
        fd = open_dir(pfd, name)
        try:
            _contents(w, fd, arc + "/")
        finally:
            os.close(fd)


def _contents(w: TarWriter, dfd: int, arcdir: str) -> None:
    for name, st in children(dfd):
        _member(w, dfd, name, arcdir + name, st)
