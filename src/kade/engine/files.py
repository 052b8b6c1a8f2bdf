"""A container's files seen from outside: diff, commit, export and cp.

Three ways to look at a container's "/", each verb using the one it needs:

    changes      the overlay upper directory against the layers below it (copy
                 driver: the container's full copy against the image's top layer);
                 diff and commit read only what the container changed.
    merged view  every layer as the container's root shows it: export; with the
                 container's volumes and hosts files on top (what docker's daemon
                 sees): cp out of a container, and cp into a stopped one.
    live root    /proc/<pid>/root, the running container's own mount namespace:
                 cp into a running container, which sees the files at once.

Invariants:
- A merged view (and the volumes docker shows with it) is mounted only in a
  private mount namespace of a forked helper (`_spawn`), so no mount is ever
  left on the host, even if Kade is killed.
- Every path a user names inside a container is resolved with the container's
  root as "/" (kade.util.inroot, archive.write_tree, archive.extract_into): no
  symlink and no ".." in it can reach a file of the host.
"""

from __future__ import annotations

import copy
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from kade.util.record import record as dataclass  # @dataclass costs ~9 ms to import
from typing import BinaryIO

from kade import errors
from kade.errors import FailedPrecondition, InvalidArgument, NotFound

# Mount points the runtime makes in a container's root. Docker keeps them in an
# "init" layer below the container's own, so they never show in diff or commit.
INIT_PATHS = frozenset({
    "/.dockerenv", "/dev", "/dev/console", "/dev/mqueue", "/dev/pts", "/dev/shm",
    "/etc/hostname", "/etc/hosts", "/etc/mtab", "/etc/resolv.conf", "/proc", "/sys",
    "/sys/fs/cgroup",
})
_INIT_FILES = frozenset(p for p in INIT_PATHS if p.startswith("/etc/") or p == "/.dockerenv")
_OPAQUE_XATTR = "trusted.overlay.opaque"


# --- diff ------------------------------------------------------------------------
def changes(engine, cid: str) -> list[tuple[str, str]]:
    """Docker's diff: ("A"|"C"|"D", "/path") in walk order, parents before children."""
    engine.containers.get(cid)
    upper, lowers = _layer_dirs(engine.snapshots, cid)
    full = engine.snapshots.driver != "overlay"
    return tree_changes(upper, lowers, full=full, skip=INIT_PATHS)


def _layer_dirs(snaps, cid: str) -> tuple[str, list[str]]:
    """The container's own directory and the layers below it, top first."""
    chain = snaps.chain(cid)
    dirs = [os.path.join(snaps.root, str(info.num), "fs") for info in chain]
    if snaps.driver == "overlay":
        return dirs[0], dirs[1:]
    return dirs[0], dirs[1:2]  # a copy snapshot holds all of its parent already


def tree_changes(upper: str, lowers: list[str], *, full: bool = False,
                 skip: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """What upper changes over lowers (top first).

    Overlay (full=False): upper holds only changes, with overlayfs whiteouts
    (0/0 character devices) and opaque directories. full=True: upper is a
    whole tree, compared entry by entry. A directory is "C" when its owner or
    mode changed or anything below it did. Paths in skip are not reported
    themselves when they are plain files or directories (runtime mount points).
    """
    return _Changes(full, skip).walk(upper, lowers, "", complete=full)


class _Changes:
    def __init__(self, full: bool, skip: frozenset[str]) -> None:
        self.full = full
        self.skip = skip

    def walk(self, udir: str, lowers: list[str], rel: str, complete: bool) -> list:
        """complete: every name of lowers absent from udir was deleted (a full tree,
        or below an opaque directory)."""
        names = os.listdir(udir)
        gone = set()
        if complete:
            present = set(names)
            gone = {n for n in _merged_names(lowers, not self.full) if n not in present}
        out: list[tuple[str, str]] = []
        for name in sorted(names + list(gone)):
            if name in gone:
                out.append(("D", f"{rel}/{name}"))
            else:
                out += self._entry(udir, lowers, rel, name, complete)
        return out

    def _entry(self, udir: str, lowers: list[str], rel: str, name: str,
               complete: bool) -> list:
        path, upath = f"{rel}/{name}", os.path.join(udir, name)
        st = os.lstat(upath)
        below, below_path, below_dirs = _lookup(lowers, name, not self.full)
        if not self.full and _is_whiteout(st):
            return [("D", path)] if below else []
        if stat.S_ISDIR(st.st_mode):
            return self._dir(upath, path, st, below, below_dirs, complete)
        if below is None:
            kind = "A"
        elif self.full and not _differs(below_path, upath, below, st):
            kind = None
        else:
            kind = "C"
        if kind is None or (path in self.skip and _plain(st)):
            return []
        return [(kind, path)]

    def _dir(self, upath: str, path: str, st: os.stat_result, below, below_dirs: list[str],
             complete: bool) -> list:
        opaque = not self.full and _opaque(upath)
        sub_lowers = below_dirs if below is not None and stat.S_ISDIR(below.st_mode) else []
        sub = self.walk(upath, sub_lowers, path, complete or opaque)
        if below is None:
            kind = "A"
        elif not stat.S_ISDIR(below.st_mode) or opaque or _owner_or_mode(below, st) or sub:
            kind = "C"
        else:
            kind = None
        if kind is None or (path in self.skip and not sub):
            return sub
        return [(kind, path)] + sub


def _lookup(lowers: list[str], name: str, whiteouts: bool):
    """name as the layers below show it: (lstat or None, its path, the directories
    that make it up top first when it is a directory)."""
    first = first_path = None
    dirs: list[str] = []
    for d in lowers:
        p = os.path.join(d, name)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if whiteouts and _is_whiteout(st):
            break
        if first is None:
            first, first_path = st, p
        if not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(first.st_mode)):
            break
        dirs.append(p)
        if whiteouts and _opaque(p):
            break
    return first, first_path, dirs


def _merged_names(dirs: list[str], whiteouts: bool) -> set[str]:
    seen: set[str] = set()
    hidden: set[str] = set()
    for d in dirs:
        for name in os.listdir(d):
            if name in seen or name in hidden:
                continue
            if whiteouts and _is_whiteout(os.lstat(os.path.join(d, name))):
                hidden.add(name)
            else:
                seen.add(name)
    return seen


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _plain(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)


def _owner_or_mode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid)


def _differs(apath: str, bpath: str, a: os.stat_result, b: os.stat_result) -> bool:
    if _owner_or_mode(a, b) or a.st_mtime_ns != b.st_mtime_ns:
        return True
    if stat.S_ISREG(b.st_mode):
        return a.st_size != b.st_size
    if stat.S_ISCHR(b.st_mode) or stat.S_ISBLK(b.st_mode):
        return a.st_rdev != b.st_rdev
    if stat.S_ISLNK(b.st_mode):
        return os.readlink(apath) != os.readlink(bpath)
    return False


# --- commit ----------------------------------------------------------------------
@dataclass(frozen=True)
class CommitOptions:
    reference: str | None = None  # REPO[:TAG] to tag the new image with
    changes: tuple[str, ...] = ()  # Dockerfile instructions (CMD, ENV, ...)
    message: str = ""
    author: str = ""
    pause: bool = True


def commit(engine, cid: str, opts: CommitOptions) -> str:
    """A new image: the container's image plus one layer of its changes. Returns its id."""
    from kade.oci import reference
    from kade.util.ids import now_rfc3339
    if opts.reference:
        ref = reference.parse(opts.reference)
        if ref.digest:
            raise InvalidArgument(f'refusing to create a tag with a digest reference: '
                                  f'"{opts.reference}"')
    record, state = engine.containers.get(cid)
    images = engine.images
    image_config = images.config(record["Image"])
    with _paused(engine, cid, state, opts.pause):
        layer = _new_layer(engine, cid)
    config = commit_config(image_config, record, opts, layer is None, now_rfc3339())
    layers = image_layers(images.record(record["Image"])) + ([layer] if layer else [])
    image_id = images.create(config, layers, [opts.reference] if opts.reference else [])
    if opts.reference:
        engine.emit("image", "tag", image_id, {"name": reference.parse(opts.reference).familiar()})
    engine.emit("container", "commit", cid, {
        "comment": opts.message, "imageID": image_id, "imageRef": opts.reference or "",
        "name": record["Name"].lstrip("/"), "image": record["Config"].get("Image", "")})
    return image_id


@contextmanager
def _paused(engine, cid: str, state: dict, wanted: bool) -> Iterator[None]:
    """Docker's commit -p: freeze a running container while its layer is written."""
    from kade.engine import lifecycle
    from kade.engine.procs import me
    if not (wanted and state["Running"] and not state["Paused"]):
        yield
        return
    # marked before the freeze: if this process dies while the container is frozen,
    # the next reader of its state finds the owner dead and thaws it (_reconcile)
    engine.db.update_state(cid, {"PausedBy": me()})
    try:
        lifecycle.pause(engine, cid)
        try:
            yield
        finally:
            lifecycle.unpause(engine, cid)
    finally:
        engine.db.update_state(cid, {"PausedBy": None})


def commit_config(image: dict, record: dict, opts: CommitOptions, empty_layer: bool,
                  created: str) -> dict:
    """The new image config, as docker builds it: the container's Config with
    the changes applied, the image's platform, and one more history entry."""
    from kade.images import changes as changes_mod
    cfg = changes_mod.apply(copy.deepcopy(record["Config"]), list(opts.changes))
    image_cfg = image.get("config") or {}
    if cfg.get("StopSignal") == "SIGTERM" and not image_cfg.get("StopSignal"):
        del cfg["StopSignal"]  # Kade's default, not something the container chose
    entry: dict = {"created": created,
                   "created_by": " ".join(record["Config"].get("Cmd") or [])}
    if opts.author:
        entry["author"] = opts.author
    if opts.message:
        entry["comment"] = opts.message
    if empty_layer:
        entry["empty_layer"] = True
    out = {k: image[k] for k in ("architecture", "os", "variant", "os.version", "os.features")
           if k in image}
    if opts.author:
        out["author"] = opts.author
    if opts.message:
        out["comment"] = opts.message
    out.update({"created": created, "config": cfg,
                "history": list(image.get("history") or []) + [entry],
                "rootfs": {"type": "layers", "diff_ids": []}})
    return out


def image_layers(rec: dict) -> list:
    """An image record's layers as ImageService.create takes them."""
    from kade.images import LayerInput
    from kade.oci.descriptor import Descriptor
    return [LayerInput(Descriptor(lay["mediaType"], lay["digest"], lay["size"]), lay["diff_id"])
            for lay in rec["layers"]]


def _new_layer(engine, cid: str, clamp_mtime: int | None = None):
    """The container's changes as a layer in the content store; None when it
    changed nothing but the runtime's mount points (docker's empty layer).
    clamp_mtime: no file's time in the layer is later (reproducible builds)."""
    if not changes(engine, cid):
        return None
    with tempfile.TemporaryFile(dir=_tmp_dir(engine)) as tmp:
        write_container_layer(engine, cid, tmp, clamp_mtime)
        tmp.seek(0)
        drop = _init_files(engine, cid)
        stream = tmp if not drop else rewrite_tar(tmp, lambda m: _drop_init(m, drop))
        return engine.images.ingest_layer(stream)


def write_container_layer(engine, cid: str, out: BinaryIO,
                          clamp_mtime: int | None = None) -> None:
    """An OCI layer tar of what the container changed (docker's layer of a commit)."""
    from kade import archive
    snaps = engine.snapshots
    upper, lowers = _layer_dirs(snaps, cid)
    if snaps.driver == "overlay":
        archive.write_layer(out, upper, lowers=lowers, clamp_mtime=clamp_mtime)
        return
    with tempfile.TemporaryDirectory(dir=_tmp_dir(engine)) as empty:
        archive.write_changes(out, lowers[0] if lowers else empty, upper,
                              clamp_mtime=clamp_mtime)


def _tmp_dir(engine) -> str:
    """<root>/tmp: scratch files on the store's file system (a commit's layer)."""
    path = os.path.join(engine.root, "tmp")
    os.makedirs(path, exist_ok=True)
    return path


def _init_files(engine, cid: str) -> set[str]:
    """Runtime-made mount point files the container's layer would carry, and
    "etc/" when the upper /etc is there for nothing else (docker keeps them in an
    init layer of their own, so a RUN that leaves /etc alone does not list it)."""
    upper, lowers = _layer_dirs(engine.snapshots, cid)
    from kade.util import inroot
    found = set()
    for path in _INIT_FILES:   # the container may have made /etc a symlink: stay inside
        try:
            fd = inroot.open_in_root(upper, path, os.O_PATH, follow=False)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                found.add(path.lstrip("/"))
        finally:
            os.close(fd)
    if found and _etc_holds_only(upper, lowers, found):
        found.add("etc/")
    return found


def _etc_holds_only(upper: str, lowers: list[str], files: set[str]) -> bool:
    """Whether the upper /etc holds only files, is not opaque, and keeps the mode
    and owner of the /etc below it."""
    etc = os.path.join(upper, "etc")
    try:
        st = os.lstat(etc)
        extra = {f"etc/{n}" for n in os.listdir(etc)} - files
        opaque = _OPAQUE_XATTR in os.listxattr(etc, follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or extra or opaque:
        return False
    for low in lowers:
        try:
            below = os.lstat(os.path.join(low, "etc"))
        except FileNotFoundError:
            continue
        return stat.S_ISDIR(below.st_mode) and \
            (below.st_mode, below.st_uid, below.st_gid) == (st.st_mode, st.st_uid, st.st_gid)
    return False


def _drop_init(m: tarfile.TarInfo, drop: set[str]) -> tarfile.TarInfo | None:
    name = m.name.removeprefix("./").strip("/")
    if m.isdir() and name + "/" in drop:
        return None
    return None if m.isreg() and name in drop else m


# --- tar streams rewritten on the fly --------------------------------------------
def rewrite_tar(src: BinaryIO, fn: Callable[[tarfile.TarInfo], tarfile.TarInfo | None]
                ) -> BinaryIO:
    """A readable tar stream: src's members passed through fn (None drops one)."""
    return io.BufferedReader(_Rewritten(src, fn), 1 << 16)


def rebased(src: BinaryIO, old: str, new: str) -> BinaryIO:
    """src with its top-level name old renamed new, like docker's cp does when it
    copies to a new name. old "." means the archive holds a directory's contents:
    they go below new."""
    def rebase(name: str) -> str:
        clean = name.removeprefix("./")
        if old == ".":
            return new + "/" + clean if clean not in ("", ".") else new
        if clean == old or clean.startswith(old + "/"):
            return new + clean[len(old):]
        return name

    def member(m: tarfile.TarInfo) -> tarfile.TarInfo:
        m.name = rebase(m.name)
        if m.islnk():
            m.linkname = rebase(m.linkname)
        return m
    return rewrite_tar(src, member)


class _Rewritten(io.RawIOBase):
    def __init__(self, src: BinaryIO, fn: Callable) -> None:
        try:
            self._tar = tarfile.open(fileobj=src, mode="r|", errors="surrogateescape")
        except tarfile.TarError as e:
            raise InvalidArgument(f"archive is not a valid tar: {e}") from None
        self._parts = self._generate(fn)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._pending:
            chunk = next(self._parts, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _generate(self, fn: Callable) -> Iterator[bytes]:
        try:
            for m in self._tar:
                data = self._tar.extractfile(m) if m.isreg() else None
                m = fn(m)
                if m is None:
                    continue
                yield from _member_bytes(m, data)
        except tarfile.TarError as e:
            raise InvalidArgument(f"archive is not a valid tar: {e}") from None
        yield b"\0" * 1024


def _member_bytes(m: tarfile.TarInfo, data) -> Iterator[bytes]:
    # A changed name must win over the one a pax header carried in.
    m.pax_headers = {k: v for k, v in m.pax_headers.items() if k not in ("path", "linkpath")}
    if m.issparse():
        m.type = tarfile.REGTYPE  # extractfile gives the expanded data
    yield m.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    left = m.size if data is not None else 0
    while left:
        chunk = data.read(min(left, 1 << 20))
        if not chunk:
            raise InvalidArgument(f'archive entry "{m.name}" is truncated')
        left -= len(chunk)
        yield chunk
    if data is not None and m.size % 512:
        yield b"\0" * (512 - m.size % 512)


# --- where a helper finds the container's root ------------------------------------
@dataclass(frozen=True)
class ContainerRoot:
    """The container's "/" for a helper process: path, after mounting there
    (source, fstype, flags, data) and binding (source, destination, read-only)
    on top, in a private mount namespace, when mount or binds are set."""

    path: str
    mount: tuple[str, str, int, str] | None = None
    binds: tuple[tuple[str, str, bool], ...] = ()


def container_root(engine, cid: str, *, mode: str = "read") -> ContainerRoot:
    """mode "read": docker's view, the layers plus volumes and the hosts files;
    "export": the layers alone; "write": a running container's own root (its
    mount namespace, through /proc), otherwise the layers read-write plus volumes."""
    from kade.engine.procs import pid_alive
    record, state = engine.containers.get(cid)
    running = state["Running"] and pid_alive(state.get("Pid", 0), state.get("PidStart"))
    if mode == "write" and running:
        return ContainerRoot(f"/proc/{state['Pid']}/root")
    binds = () if mode == "export" else _binds(record, read_only=mode == "read")
    if mode != "write":
        return layers_view(engine, cid, binds)
    snaps = engine.snapshots
    upper, lowers = _layer_dirs(snaps, cid)
    if snaps.driver != "overlay" or not lowers:
        return ContainerRoot(upper, None, binds)
    m = snaps.mounts(cid)[0]
    return ContainerRoot(_mount_point(engine, cid), (m.source, m.type, 0, ",".join(m.options)),
                         binds)


def layers_view(engine, cid: str, binds: tuple = ()) -> ContainerRoot:
    """The container's layers, read-only: the upper directory as the top lower
    layer, so the view shares no workdir with the mount a running container has."""
    MS_RDONLY = 0x1  # kade.runtime.linux's, without importing ctypes for it
    upper, lowers = _layer_dirs(engine.snapshots, cid)
    if engine.snapshots.driver != "overlay" or not lowers:
        return ContainerRoot(upper, None, binds)
    return ContainerRoot(_mount_point(engine, cid), (
        "overlay", "overlay", MS_RDONLY, "lowerdir=" + ":".join([upper, *lowers])), binds)


def _mount_point(engine, cid: str) -> str:
    target = os.path.join(engine.containers.bundle(cid), "rootfs")
    os.makedirs(target, exist_ok=True)
    return target


def run_in_layers(engine, cid: str, fn: Callable[[str], None]) -> None:
    """fn(top) in a helper process that sees the container's layers at top (volume
    copy-up); raises what fn raised there."""
    def work(top: str, fd: int, report) -> None:
        os.close(fd)
        fn(top)
        report({"done": True})
    _spawn(layers_view(engine, cid), work, to_child=False).finish()


def _binds(record: dict, read_only: bool) -> tuple[tuple[str, str, bool], ...]:
    """What docker mounts beside the root for cp: hosts files, then volumes and binds."""
    from kade.volumes import PlannedMount
    volumes = [PlannedMount.from_json(m).oci()
               for m in record.get("Private", {}).get("VolumeMounts", [])]
    taken = {m["destination"] for m in volumes}
    out = [(record[key], f"/etc/{name}", True) for name, key in (
        ("resolv.conf", "ResolvConfPath"), ("hostname", "HostnamePath"), ("hosts", "HostsPath"))
        if f"/etc/{name}" not in taken and os.path.exists(record.get(key) or "")]
    out += [(m["source"], m["destination"], read_only or "ro" in m.get("options", ()))
            for m in volumes if m["type"] == "bind"]
    return tuple(out)


# --- helper processes --------------------------------------------------------------
# A helper gets the root, a data pipe end (a tar, in or out) and a report function;
# it sends JSON lines: {"stat": ...}, {"ready": ...}, {"error": msg, "kind": class}.
Work = Callable[[str, int, Callable[[dict], None]], None]


class _Child:
    def __init__(self, pid: int, data_fd: int, report_fd: int, to_child: bool) -> None:
        self.pid = pid
        self.data = os.fdopen(data_fd, "wb" if to_child else "rb")
        self._reports = os.fdopen(report_fd, "rb")
        self._status: int | None = None

    def expect(self, key: str) -> dict:
        """The helper's first report, which says it got going; raises its error."""
        line = self._reports.readline()
        msg = json.loads(line) if line else None
        if msg is None or key not in msg:
            self.close()
            raise _error_of(msg, self._status)
        return msg[key]

    def finish(self) -> None:
        """Wait for the helper; raise what went wrong in it."""
        self._close_data()
        msgs = [json.loads(line) for line in self._reports]
        self.close()
        failed = [m for m in msgs if "error" in m]
        if failed or self._status != 0:
            raise _error_of(failed[0] if failed else None, self._status)

    def close(self) -> None:
        self._close_data()
        if self._status is None:
            self._reports.close()
            _, status = os.waitpid(self.pid, 0)
            self._status = os.waitstatus_to_exitcode(status)

    def _close_data(self) -> None:
        try:
            self.data.close()
        except BrokenPipeError:
            pass


def _error_of(msg: dict | None, status: int | None) -> Exception:
    if msg and "error" in msg:
        cls = getattr(errors, msg.get("kind", ""), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.KadeError)):
            cls = FailedPrecondition
        return cls(msg["error"])
    return FailedPrecondition(f"file helper process failed (exit status {status})")


def _spawn(root: ContainerRoot, work: Work, *, to_child: bool) -> _Child:
    data_r, data_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        mine = data_r if to_child else data_w
        _helper_main(root, work, mine, rep_w, (data_w if to_child else data_r, rep_r))
    os.close(rep_w)
    os.close(data_r if to_child else data_w)
    return _Child(pid, data_w if to_child else data_r, rep_r, to_child)


def _helper_main(root: ContainerRoot, work: Work, data_fd: int, rep_fd: int,
                 others: tuple[int, int]) -> None:  # pragma: no cover - forked child
    code = 0
    try:
        for fd in others:
            os.close(fd)
        work(_enter(root), data_fd, lambda msg: _send(rep_fd, msg))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the caller
        _send(rep_fd, _report_of(e))
        code = 1
    finally:
        os._exit(code)


def _enter(root: ContainerRoot) -> str:
    """In the helper: mount the view, in a mount namespace nothing propagates from."""
    if root.mount is None and not root.binds:
        return root.path
    from kade.runtime import linux as L
    sc = L.Syscalls()
    try:
        sc.unshare(L.CLONE_NEWNS)
        sc.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
        if root.mount:
            source, fstype, flags, data = root.mount
            sc.mount(source, root.path, fstype, flags, data or None)
    except OSError as e:
        raise FailedPrecondition(f"cannot mount the container's root at \"{root.path}\": "
                                 f"{e.strerror or e}") from None
    for source, dest, read_only in root.binds:
        _bind(sc, root.path, source, dest, read_only)
    return root.path


def _bind(sc, top: str, source: str, dest: str, read_only: bool) -> None:
    """Bind source at dest, resolved inside top; skipped when dest is missing or
    of another kind (a mount point the runtime has not made yet)."""
    from kade.runtime import linux as L
    root_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pfd, name, _ = _resolve(root_fd, dest, True)
    except OSError:
        return
    finally:
        os.close(root_fd)
    try:
        if not name or os.path.isdir(source) != _is_dir_at(pfd, name):
            return
        # Through a descriptor: the mount lands exactly on what was resolved.
        _at_fd(pfd, name, lambda p: sc.mount(source, p, None, L.MS_BIND | L.MS_REC))
        if read_only:
            _at_fd(pfd, name, lambda p: sc.mount(None, p, None,
                                                 L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY))
    except OSError as e:
        raise FailedPrecondition(f'cannot mount "{source}" at "{dest}" in the container\'s '
                                 f"root: {e.strerror or e}") from None
    finally:
        os.close(pfd)


def _is_dir_at(pfd: int, name: str) -> bool | None:
    try:
        return stat.S_ISDIR(os.lstat(name, dir_fd=pfd).st_mode)
    except FileNotFoundError:
        return None


def _at_fd(pfd: int, name: str, fn: Callable[[str], None]) -> None:
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    try:
        fn(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _send(fd: int, msg: dict) -> None:
    data = (json.dumps(msg) + "\n").encode()
    try:
        os.write(fd, data)
    except OSError:
        pass


def _report_of(e: BaseException) -> dict:
    if isinstance(e, errors.KadeError):
        return {"error": str(e), "kind": type(e).__name__}
    if isinstance(e, OSError):
        return {"error": e.strerror or str(e), "kind": "FailedPrecondition"}
    return {"error": f"{type(e).__name__}: {e}", "kind": "FailedPrecondition"}


# --- paths inside a container -------------------------------------------------------
@dataclass(frozen=True)
class PathStat:
    """Docker's container path stat: name, size, mode (st_mode), mtime, link target."""

    name: str
    size: int
    mode: int
    mtime: float
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def to_json(self) -> dict:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}

    @classmethod
    def from_json(cls, d: dict) -> PathStat:
        return cls(d["name"], d["size"], d["mode"], d["mtime"], d.get("linkTarget", ""))


def _resolve(root_fd: int, path: str, follow: bool) -> tuple[int, str, list[str]]:
    """path with root_fd as "/" (kade.util.inroot.resolve): the directory holding
    its last component, that name and the real path's components."""
    from kade.util import inroot
    return inroot.resolve(root_fd, path, follow=follow)


def _stat_in(root: str, path: str, follow: bool, ref: str) -> PathStat:
    """Docker's stat of a container path; NotFound in docker's words."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            pfd, name, real = _resolve(root_fd, path, follow)
            try:
                st = os.lstat(name, dir_fd=pfd) if name else os.fstat(pfd)
            finally:
                os.close(pfd)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {ref}") from None
        target = ""
        if stat.S_ISLNK(st.st_mode):
            pfd, name, real = _resolve(root_fd, path, True)
            os.close(pfd)
            target = "/" + "/".join(real)
    finally:
        os.close(root_fd)
    return PathStat(real[-1] if real else "/", st.st_size, st.st_mode, st.st_mtime, target)


def _tree_path(path: str, follow: bool) -> tuple[str, bool]:
    """path and follow as archive.write_tree takes them: a trailing "/" asks for
    the directory itself (write_tree would give its contents) through a symlink."""
    stripped = path.rstrip("/")
    if stripped == path or stripped.endswith("/."):
        return path, follow
    return stripped or "/", True


def stat_path(engine, cid: str, path: str, *, follow: bool = False,
              ref: str | None = None) -> PathStat:
    """Docker's HEAD /containers/{id}/archive."""
    return stat_in_root(container_root(engine, cid), path, follow=follow, label=ref or cid)


@contextmanager
def open_archive(engine, cid: str, path: str, *, follow: bool = False,
                 ref: str | None = None) -> Iterator[tuple[PathStat, BinaryIO]]:
    """Docker's GET /containers/{id}/archive: the path's stat (through a last
    symlink when follow) and a tar of it, named by its base name ("dir/." gives
    the directory's contents)."""
    with archive_in_root(container_root(engine, cid), path, follow=follow,
                         label=ref or cid) as found:
        yield found
    engine.emit("container", "archive-path", cid)


@contextmanager
def export(engine, cid: str) -> Iterator[BinaryIO]:
    """A tar of the container's merged root file system, without its mounts."""
    with export_root(container_root(engine, cid, mode="export")) as stream:
        yield stream
    engine.emit("container", "export", cid)


def put_archive(engine, cid: str, dest_dir: str, produce: Callable[[BinaryIO], None], *,
                owners: bool = False, rebase: tuple[str, str] | None = None,
                arrives: tuple[str, bool] | None = None, absolute: str = "refuse",
                ref: str | None = None) -> None:
    """Docker's PUT /containers/{id}/archive: extract the tar produce() writes into
    directory dest_dir of the container (running: its live root; otherwise its
    layers, through overlayfs so that what it replaces is whited out)."""
    extract_in_root(container_root(engine, cid, mode="write"), dest_dir, produce,
                    owners=owners, rebase=rebase, arrives=arrives, absolute=absolute,
                    label=ref or cid)
    engine.emit("container", "extract-to-dir", cid)


# The same, given a root; each runs in a helper process (see _spawn).
def stat_in_root(root: ContainerRoot, path: str, *, follow: bool = False,
                 label: str = "") -> PathStat:
    def work(top: str, fd: int, report) -> None:
        os.close(fd)
        report({"stat": _stat_in(top, path, follow, label).to_json()})
    child = _spawn(root, work, to_child=False)
    try:
        found = child.expect("stat")
    finally:
        child.close()
    return PathStat.from_json(found)


@contextmanager
def archive_in_root(root: ContainerRoot, path: str, *, follow: bool = False,
                    label: str = "") -> Iterator[tuple[PathStat, BinaryIO]]:
    from kade.archive import write_tree
    tree_path, tree_follow = _tree_path(path, follow)

    def work(top: str, fd: int, report) -> None:
        report({"stat": _stat_in(top, path, follow, label).to_json()})
        with open(fd, "wb") as out:
            write_tree(out, top, [tree_path], follow=tree_follow)
    with _reading(root, work) as (found, stream):
        yield PathStat.from_json(found), stream


@contextmanager
def export_root(root: ContainerRoot) -> Iterator[BinaryIO]:
    from kade.archive import write_tree

    def work(top: str, fd: int, report) -> None:
        report({"stat": {}})
        with open(fd, "wb") as out:
            write_tree(out, top)
    with _reading(root, work) as (_, stream):
        yield stream


@contextmanager
def _reading(root: ContainerRoot, work: Work) -> Iterator[tuple[dict, BinaryIO]]:
    child = _spawn(root, work, to_child=False)
    try:
        found = child.expect("stat")
        yield found, child.data
        while child.data.read(1 << 16):
            pass  # what the caller left, so the helper can finish writing
    except BaseException:
        child.close()  # the helper sees a broken pipe and stops
        raise
    child.finish()


def extract_in_root(root: ContainerRoot, dest_dir: str, produce: Callable[[BinaryIO], None],
                    *, owners: bool = False, rebase: tuple[str, str] | None = None,
                    arrives: tuple[str, bool] | None = None, absolute: str = "refuse",
                    label: str = "") -> None:
    """rebase renames the archive's top-level name (see rebased); arrives is
    (name, is_dir) of what lands in dest_dir, checked first, as docker does, so
    that a directory never replaces a file or the other way round."""
    from kade.archive import extract_into

    def work(top: str, fd: int, report) -> None:
        where = _stat_in(top, dest_dir, True, label)
        if not where.is_dir:
            raise InvalidArgument(f'destination "{label}:{dest_dir}" must be a directory')
        if arrives:
            _check_overwrite(top, dest_dir, arrives, label)
        report({"ready": True})
        with open(fd, "rb") as src:
            stream = rebased(src, *rebase) if rebase else src
            extract_into(stream, top, dest_dir, owners=owners, absolute=absolute)
    child = _spawn(root, work, to_child=True)
    try:
        child.expect("ready")
        try:
            produce(child.data)
        except BrokenPipeError:
            pass  # the helper failed; finish() says why
    except BaseException:
        child.close()
        raise
    child.finish()


def copy_in(engine, cid: str, tar: str | None, archives: list[str], dest: str,
            rename: tuple[str, str] | None, dir_owner: tuple[int, int]) -> None:
    """The builder's COPY, ADD and WORKDIR into a created container's layers: make
    dest's missing directories (owned by dir_owner, 0755), extract the tar file
    into it keeping owners, then ADD's archives (compressed or not). With
    rename = (name in the tar, new name) and no directory at dest, dest names
    the single file the tar holds."""
    from kade.archive import extract_into, open_decompressed

    def work(top: str, fd: int, report) -> None:
        os.close(fd)
        dest_dir, swap = dest, None
        if rename is not None and not _is_dir_in(top, dest):
            dest_dir, swap = os.path.dirname(dest.rstrip("/")) or "/", rename
        _mkdirs(top, dest_dir, dir_owner)
        if tar is not None:
            with open(tar, "rb") as raw:
                stream = rebased(raw, *swap) if swap else raw
                extract_into(stream, top, dest_dir, owners=True)
        for path in archives:
            with open(path, "rb") as raw, open_decompressed(raw) as stream:
                extract_into(stream, top, dest_dir, owners=True, absolute="relative")
        report({"stat": {}})
    child = _spawn(container_root(engine, cid, mode="write"), work, to_child=False)
    child.finish()


def _is_dir_in(top: str, path: str) -> bool:
    try:
        return _stat_in(top, path, True, "image").is_dir
    except NotFound:
        return False


def _mkdirs(top: str, path: str, owner: tuple[int, int]) -> None:
    """mkdir -p with path resolved inside top; new directories get owner, 0755."""
    from kade.util import inroot
    try:
        os.close(inroot.mkdir_all(top, path, 0o755, owner=owner))
    except NotADirectoryError:
        raise InvalidArgument(f'cannot copy to "{path}": not a directory') from None
    except OSError as e:
        raise InvalidArgument(f'cannot copy to "{path}": {os.strerror(e.errno or 0).lower()}'
                              ) from None


def _check_overwrite(root: str, dest_dir: str, arrives: tuple[str, bool], label: str) -> None:
    name, is_dir = arrives
    if name in (".", ""):
        return
    target = dest_dir.rstrip("/") + "/" + name
    try:
        there = _stat_in(root, target, False, label)
    except NotFound:
        return
    if there.is_dir and not is_dir:
        raise InvalidArgument(f'cannot overwrite directory "{target}" with non-directory')
    if not there.is_dir and is_dir:
        raise InvalidArgument(f'cannot overwrite non-directory "{target}" with directory')


# --- docker cp's rules --------------------------------------------------------------
@dataclass(frozen=True)
class CopyPlan:
    source: str  # the path to archive
    dest_dir: str  # the existing directory to extract into
    rebase: tuple[str, str] | None  # the archive's top-level name -> the name it gets

    @property
    def arrives(self) -> str:
        """The name that lands in dest_dir ("." for a directory's contents)."""
        return self.rebase[1] if self.rebase else base_name(self.source)


def base_name(path: str) -> str:
    """The name docker's archive of path has: "." when it holds contents only."""
    stripped = path.rstrip("/")
    if stripped in ("", ".") or stripped.endswith("/."):
        return "."
    return os.path.basename(stripped)


def plan_copy(src: str, src_is_dir: bool, dst: str, dst_exists: bool,
              dst_is_dir: bool) -> CopyPlan:
    """Where docker cp puts src (file or directory) given what dst is.

    dst an existing directory: src goes into it (its contents with "src/.");
    otherwise src takes dst's name, in dst's parent, which must exist.
    """
    if dst_exists and dst_is_dir:
        return CopyPlan(src, dst, None)
    if dst_exists and src_is_dir:
        raise InvalidArgument("cannot copy directory")
    if not dst_exists and not src_is_dir and dst.endswith("/"):
        raise NotFound("no such directory")
    stripped = src.rstrip("/")
    if src_is_dir and stripped.endswith("/.") and stripped[:-2]:
        src = stripped[:-2]  # "dir/." to a new name is "dir" renamed: it keeps its mode
    parent, new = os.path.split(dst.rstrip("/") or "/")
    old = base_name(src)
    return CopyPlan(src, parent or ".", (old, new) if old != new else None)
