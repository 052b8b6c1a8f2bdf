"""COPY without a container: the step's layer written straight from its tar.

The general way (files.copy_in) mounts the parent image in a helper and extracts
there, resolving every path with the image's root as "/". When the destination
needs no such resolution, the layer is simply the copied files under their
destination path, plus the directories that must be created:

    parent layers (top first)        COPY a.txt b/ /app/      layer tar
    /app  missing                    ------------------->     app/        (0755, owner)
                                                              app/a.txt
                                                              app/x       (b's contents)

plan() decides from the parent's layer directories, read as overlayfs merges them
(whiteouts, opaque directories), and answers None, meaning "use the helper",
whenever anything could differ from what extraction inside the image does: a
symlink or a file on the destination path, or a top-level name of the copy that
already exists in the destination as anything but a plain file replaced by a file.
"""

from __future__ import annotations

import os
import stat
import tarfile
import time

_OPAQUE = "trusted.overlay.opaque"


def _lookup(dirs: list[str], name: str) -> tuple[os.stat_result | None, list[str]]:
    """name in the merged directory made of dirs (top first): its lstat, and the
    layer directories that make it up when it is a directory."""
    first = None
    below: list[str] = []
    for d in dirs:
        p = os.path.join(d, name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            break  # a whiteout hides the layers below
        if first is None:
            first = st
        if not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(first.st_mode)):
            break
        below.append(p)
        try:
            if os.getxattr(p, _OPAQUE, follow_symlinks=False) == b"y":
                break
        except OSError:
            pass
    return first, below


class Plan:
    def __init__(self, dest_dir: str, create: list[str], rename: tuple[str, str] | None,
                 existing: list[tuple[str, os.stat_result]]):
        self.dest_dir = dest_dir  # no leading or trailing "/"; "" is the root
        self.create = create  # directories to make, parents first
        self.rename = rename
        # directories on the way that exist: the layer carries them as they are, or
        # unpacking it would make them anew (root-owned, 0755) over the image's
        self.existing = existing


def plan(layers: list[str], tar_path: str, dest: str,
         rename: tuple[str, str] | None) -> Plan | None:
    parts = [p for p in dest.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    dirs, kind = list(layers), "dir"
    create: list[str] = []
    existing: list[tuple[str, os.stat_result]] = []
    for i, name in enumerate(parts):
        last = i == len(parts) - 1
        if kind == "missing":
            if last and rename is not None:
                return Plan("/".join(parts[:-1]), create, rename, existing)
            create.append("/".join(parts[:i + 1]))
            continue
        st, below = _lookup(dirs, name)
        if st is None:
            kind = "missing"
            if last and rename is not None:
                return Plan("/".join(parts[:-1]), create, rename, existing)
            create.append("/".join(parts[:i + 1]))
        elif stat.S_ISDIR(st.st_mode):
            dirs = below
            existing.append(("/".join(parts[:i + 1]), st))
        elif last and rename is not None and stat.S_ISREG(st.st_mode):
            # a file replaced by a file
            return Plan("/".join(parts[:-1]), create, rename, existing)
        else:
            return None  # a symlink or a file where a directory must be: the helper decides
    if kind == "dir" and not _tops_are_new(dirs, tar_path):
        return None
    return Plan("/".join(parts), create, None, existing)


def _tops_are_new(dirs: list[str], tar_path: str) -> bool:
    """Every top-level name of the copy is new in the destination, or a plain file
    that a plain file replaces: then nothing below it needs resolving."""
    with tarfile.open(tar_path, "r:") as tar:
        for m in tar:
            top = m.name.strip("/").split("/")[0]
            if "/" in m.name.strip("/"):
                if _lookup(dirs, top)[0] is not None:
                    return False
                continue
            st = _lookup(dirs, top)[0]
            if st is not None and not (stat.S_ISREG(st.st_mode) and m.isreg()):
                return False
    return True


def write_layer(p: Plan, tar_path: str, out, owner: tuple[int, int],
                clamp_mtime: int | None = None) -> None:
    """The layer: the directories to create, then the copy under dest_dir.
    clamp_mtime: no member's mtime is later (a reproducible build's epoch)."""
    def mtime(t: float) -> int:
        return int(t) if clamp_mtime is None else min(int(t), clamp_mtime)
    now = mtime(time.time())
    prefix = p.dest_dir + "/" if p.dest_dir else ""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer, \
            tarfile.open(tar_path, "r:") as src:
        for path, st in p.existing:
            info = tarfile.TarInfo(path)
            info.type, info.mode = tarfile.DIRTYPE, stat.S_IMODE(st.st_mode)
            info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, mtime(st.st_mtime)
            layer.addfile(info)
        for path in p.create:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            info.uid, info.gid = owner
            layer.addfile(info)
        for m in src:
            name = m.name
            if p.rename is not None and name.strip("/") == p.rename[0]:
                name = p.rename[1]
            m.name = prefix + name
            if clamp_mtime is not None:
                m.mtime = mtime(m.mtime)
            if m.islnk():
                m.linkname = prefix + m.linkname
            layer.addfile(m, src.extractfile(m) if m.isreg() else None)
