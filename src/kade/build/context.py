"""The build context: a directory of sources, minus what .dockerignore excludes.

COPY and ADD name sources relative to it; nothing they name may leave it, not
even through a symlink (`forbidden path outside the build context`). A source is
a file or a directory (copied by content), or a pattern (filepath.Match per path
component: `*`, `?`, `[...]`) that picks several.

    ctx = Context("/src", ignore=Matcher(...))
    items = ctx.sources(["*.txt", "conf/"])       # -> [Source(...)]
    digest = ctx.checksum(items)                  # content + metadata, no mtimes
    Context.add(tar_writer, dir, name, arcname, lstat, owner, chmod)   # one entry

A context from a tar (`kade build - < ctx.tar`) is extracted into a temporary
directory first (see from_tar) and then read the same way. Stages and images
given to COPY --from are exported into such a directory too, with owners kept.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import time
from kade.util.record import record as dataclass

from kade.build.dockerignore import Matcher
from kade.errors import InvalidArgument, NotFound

TYPE_CHECKING = False  # typing costs ~5 ms on every `kade build`
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["Context", "Source", "has_wildcards", "is_archive"]

_WILDCARD = re.compile(r"[*?\[]")


def has_wildcards(path: str) -> bool:
    return bool(_WILDCARD.search(path))


def is_archive(f: BinaryIO) -> bool:
    """Whether f holds a tar, compressed or not, as docker tells an archive (ADD of
    a local file, a context on stdin): its first tar header, once decompressed,
    parses. A plain text file or a gzip of something else is not one."""
    import tarfile
    from kade.archive import open_decompressed
    try:
        with open_decompressed(f, threads=False) as stream:
            head = stream.read(512)
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except Exception:  # any failure to decompress or parse: not an archive
        return False
    return True


@dataclass(frozen=True)
class Source:
    """One source: `rel` is its path in the context ("" for the root); `name` the
    name it arrives under when copied into a directory."""
    rel: str
    name: str
    is_dir: bool


class Context:
    def __init__(self, root: str, ignore: Matcher | None = None, *, keep_owners: bool = False,
                 label: str = "build context") -> None:
        self.root = os.path.realpath(root)
        self.ignore = ignore
        self.keep_owners = keep_owners  # COPY --from keeps the image's owners
        self.label = label

    # --- naming sources -------------------------------------------------------
    def sources(self, patterns: list[str]) -> list[Source]:
        out: list[Source] = []
        for pattern in patterns:
            found = self._expand(pattern)
            out.extend(found)
        return out

    def _expand(self, pattern: str) -> list[Source]:
        clean = self._clean(pattern)
        if not has_wildcards(pattern):
            real = self._real(clean, pattern)
            if clean and self._ignored(clean) and not self._kept_below(clean, real):
                raise NotFound(f"file not found in {self.label} or excluded by "
                               f".dockerignore: stat {pattern}: file does not exist")
            st = os.stat(real)
            name = os.path.basename(clean) if clean else ""
            rel = "" if real == self.root else os.path.relpath(real, self.root)
            return [Source(rel, name, stat.S_ISDIR(st.st_mode))]
        found = [self._matched(rel, is_dir, pattern)
                 for rel, is_dir in self._walk("") if _match(clean, rel)]
        if not found:
            raise NotFound(f"no source files were specified: no file in {self.label} "
                           f"matches {pattern!r}")
        return found

    def _matched(self, rel: str, is_dir: bool, pattern: str) -> Source:
        """A wildcard's match; a symlink is followed as docker does, when what it names
        is in the context."""
        if not os.path.islink(os.path.join(self.root, rel)):
            return Source(rel, os.path.basename(rel), is_dir)
        try:
            real = self._real(rel, pattern)
        except (InvalidArgument, NotFound):  # leaves the context, or dangles: the link
            return Source(rel, os.path.basename(rel), False)  # itself, nothing it names
        return Source("" if real == self.root else os.path.relpath(real, self.root),
                      os.path.basename(rel), os.path.isdir(real))

    def _clean(self, pattern: str) -> str:
        parts: list[str] = []
        for c in pattern.replace("\\", "/").split("/"):
            if c in ("", "."):
                continue
            if c == "..":
                if not parts:
                    raise InvalidArgument(f"forbidden path outside the {self.label}: {pattern}")
                parts.pop()
                continue
            parts.append(c)
        return "/".join(parts)

    def _real(self, rel: str, pattern: str) -> str:
        """The source's real path; its symlinks may not leave the context."""
        path = os.path.join(self.root, rel)
        if not os.path.lexists(path):
            raise NotFound(f"file not found in {self.label} or excluded by .dockerignore: "
                           f"stat {pattern}: file does not exist")
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root + "/"):
            raise InvalidArgument(f"forbidden path outside the {self.label}: {pattern} "
                                  f"(it leads to {real})")
        if not os.path.exists(real):
            raise NotFound(f"file not found in {self.label}: stat {pattern}: file does not exist")
        return real

    def _ignored(self, rel: str) -> bool:
        return self.ignore is not None and self.ignore.matches(rel)

    def _kept_below(self, rel: str, real: str) -> bool:
        """An ignored directory that a `!` exception keeps something in: docker's
        context tar has that something, and so the directory."""
        if self.ignore is None or not os.path.isdir(real) or self.ignore.can_skip_dir(rel):
            return False
        return next(iter(self._walk(rel)), None) is not None

    def _walk(self, rel: str):
        """(rel, is_dir) of everything under rel that is not ignored, sorted."""
        base = os.path.join(self.root, rel) if rel else self.root
        with os.scandir(base) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            is_dir = e.is_dir(follow_symlinks=False)
            if self._ignored(child):
                if is_dir and self.ignore is not None and not self.ignore.can_skip_dir(child):
                    yield from self._walk(child)
                continue
            yield child, is_dir
            if is_dir:
                yield from self._walk(child)

    # --- reading them -------------------------------------------------------
    def entries(self, src: Source):
        """(relative name below the source, lstat) of a source and everything in it;
        the source itself first with name "" (a directory: its contents follow)."""
        yield "", os.stat(self.path_of(src))
        if src.is_dir:
            for rel, _ in self._walk(src.rel):
                below = rel[len(src.rel) + 1:] if src.rel else rel
                yield below, os.lstat(os.path.join(self.root, rel))

    def checksum(self, items: list[Source]) -> str:
        """A digest of the sources' names, types, modes, owners (when kept), sizes,
        link targets and contents; mtimes do not count, as in docker's cache."""
        h = hashlib.sha256()
        for src in items:
            h.update(f"S {src.rel}\0{src.name}\0{int(src.is_dir)}\n".encode())
            for below, st in self.entries(src):
                path = os.path.join(self.path_of(src), below) if below else self.path_of(src)
                owner = f"{st.st_uid}:{st.st_gid}" if self.keep_owners else ""
                link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
                h.update(f"{below}\0{st.st_mode:o}\0{owner}\0{st.st_size}\0{link}\n".encode())
                if stat.S_ISREG(st.st_mode):
                    h.update(_file_digest(path, st))
        return "sha256:" + h.hexdigest()

    def path_of(self, src: Source) -> str:
        return os.path.join(self.root, src.rel) if src.rel else self.root


    @staticmethod
    def add(w, head: str, name: str, arc: str, st: os.stat_result,
             owner: tuple[int, int] | None, chmod: int | None, *, suid: bool = True) -> None:
        """One tar entry; suid False drops setuid/setgid bits, as docker's legacy
        builder does to files from the build context."""
        meta = _Meta(st, owner, chmod)
        if not suid and chmod is None:
            meta.st_mode &= ~0o6000
        pfd = os.open(head, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            w.add(pfd, name, arc, meta)
        finally:
            os.close(pfd)


class _Meta:
    """An lstat result with the owner and permission bits COPY gives it."""

    def __init__(self, st: os.stat_result, owner: tuple[int, int] | None,
                 chmod: int | None) -> None:
        self.st_mode = st.st_mode if chmod is None or stat.S_ISLNK(st.st_mode) else \
            stat.S_IFMT(st.st_mode) | chmod
        self.st_uid, self.st_gid = owner if owner is not None else (st.st_uid, st.st_gid)
        self.st_size, self.st_mtime_ns = st.st_size, st.st_mtime_ns
        self.st_nlink, self.st_dev, self.st_ino, self.st_rdev = \
            st.st_nlink, st.st_dev, st.st_ino, st.st_rdev


def _match(pattern: str, rel: str) -> bool:
    """Go's filepath.Match: every component against its own; `*` never crosses "/"."""
    pp, rp = pattern.split("/"), rel.split("/")
    return len(pp) == len(rp) and all(fnmatch.fnmatchcase(r, p) for p, r in zip(pp, rp))


_DIGESTS: dict[tuple, bytes] = {}
# File times tick with the kernel's coarse clock (a jiffy; seconds on some file
# systems): a file rewritten within one tick keeps its key. Only digests of files
# settled for longer than this are cached, as git does with "racily clean" entries.
_SETTLED_NS = 2_000_000_000


def _file_digest(path: str, st: os.stat_result) -> bytes:
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    found = _DIGESTS.get(key)
    if found is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        found = h.digest()
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
            _DIGESTS[key] = found
    return found
