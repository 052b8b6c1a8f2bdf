"""Snapshotter implementations: overlay (layers shared) and copy (fallback)."""

from __future__ import annotations

import os
import time
from collections import namedtuple

from kade.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kade.oci.mount import Mount
from kade.util.fs import du, remove_tree
from kade.util.procs import owner_text, owner_text_alive

TYPE_CHECKING = False  # sqlite3 stays unimported until a database is opened
if TYPE_CHECKING:
    from kade.metadata import DB

DRIVERS = ("overlay", "copy")


# kind is "active" or "committed"; size is known once committed
Info = namedtuple("Info", "key num parent kind created size")


class Snapshotter:
    """Shared bookkeeping; subclasses say how an active snapshot is made and mounted."""

    driver = ""
    # how apply_layer should treat whiteouts in this driver's upper dirs
    whiteouts = "overlay"

    def __init__(self, root: str, db: DB):
        self.root = os.path.join(root, "snapshots", self.driver)
        self.db = db
        os.makedirs(self.root, exist_ok=True)

    # --- queries -------------------------------------------------------------
    def stat(self, key: str) -> Info:
        row = self.db.q1("SELECT key, num, parent, kind, created, size FROM snapshots"
                         " WHERE key=?", key)
        if not row:
            raise NotFound(f'snapshot "{key}" not found')
        return Info(*row)

    def exists(self, key: str) -> bool:
        return self.db.q1("SELECT 1 FROM snapshots WHERE key=?", key) is not None

    def walk(self) -> list[Info]:
        return [Info(*r) for r in self.db.q(
            "SELECT key, num, parent, kind, created, size FROM snapshots ORDER BY num")]

    def dir_of(self, key: str) -> str:
        return os.path.join(self.root, str(self.stat(key).num))

    def upper_dir(self, key: str) -> str:
        return os.path.join(self.dir_of(key), "fs")

    def chain(self, key: str | None) -> list[Info]:
        """The snapshot and its parents, top first."""
        out: list[Info] = []
        while key:
            info = self.stat(key)
            out.append(info)
            key = info.parent
        return out

    # --- changes -------------------------------------------------------------
    def prepare(self, key: str, parent: str | None = None) -> list[Mount]:
        if parent is not None and self.stat(parent).kind != "committed":
            raise FailedPrecondition(f'parent snapshot "{parent}" is not committed')
        num = self.db.next_counter("snapshot")
        try:
            with self.db.tx() as c:
                c.execute("INSERT INTO snapshots(key, num, parent, kind, created)"
                          " VALUES(?,?,?,?,?)", (key, num, parent, "active", time.time()))
        except Exception as e:
            if "UNIQUE" in str(e):
                raise AlreadyExists(f'snapshot "{key}" already exists') from None
            raise
        try:
            self._make_active(os.path.join(self.root, str(num)), parent)
        except BaseException:
            self._drop(key, num)
            raise
        return self.mounts(key)

    def commit(self, name: str, key: str) -> Info:
        info = self.stat(key)
        if info.kind != "active":
            raise FailedPrecondition(f'snapshot "{key}" is not active')
        base = os.path.join(self.root, str(info.num))
        size = du(os.path.join(base, "fs"))
        remove_tree(os.path.join(base, "work"))
        try:
            with self.db.tx() as c:  # owned by this unpack until an image records it
                c.execute("UPDATE snapshots SET key=?, kind='committed', size=?, owner=?"
                          " WHERE key=?", (name, size, owner_text(os.getpid()), key))
        except Exception as e:
            if "UNIQUE" in str(e):
                raise AlreadyExists(f'snapshot "{name}" already exists') from None
            raise
        return self.stat(name)

    def remove(self, key: str) -> None:
        info = self.stat(key)
        if self.db.q1("SELECT 1 FROM snapshots WHERE parent=?", key):
            raise FailedPrecondition(f'snapshot "{key}" has children')
        self._drop(key, info.num)

    def _drop(self, key: str, num: int) -> None:
        """Rename to <num>.removing, remove, then forget the row. Safe against a
        concurrent drop of the same snapshot and against a dead one's leftovers:
        what is already gone is not an error."""
        path = os.path.join(self.root, str(num))
        trash = f"{path}.removing"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            pass  # removed by another process, or by one that died half-way
        if os.path.lexists(trash):
            import shutil  # here: the supervisor, which rarely comes here, saves ~0.4 MB
            shutil.rmtree(trash, onerror=_unless_gone)
        with self.db.tx() as c:
            c.execute("DELETE FROM snapshots WHERE key=?", (key,))

    def usage(self, key: str) -> int:
        info = self.stat(key)
        return info.size if info.size is not None else du(self.upper_dir(key))

    def cleanup(self) -> list[str]:
        """Remove directories no row knows and half-done `.removing` trees."""
        gone = self.strays()
        for name in gone:
            remove_tree(os.path.join(self.root, name))
        return gone

    def strays(self) -> list[str]:
        """Directory names no row knows: half-done `.removing` trees, left by a
        process killed while it removed a snapshot."""
        # listed before the rows are read: a row is inserted before its directory
        # is made, so a directory seen here has its row in the read that follows
        names = os.listdir(self.root)
        known = {str(i.num) for i in self.walk()}
        return [name for name in names if name not in known]

    # --- layers: owned by their unpack until an image records them ----------------
    def claim(self, key: str) -> None:
        """An unpack reuses a committed layer no image may reference yet (one a killed
        unpack left): owned by this one now, so no prune takes it meanwhile."""
        with self.db.tx() as c:
            c.execute("UPDATE snapshots SET owner=? WHERE key=? AND owner IS NOT NULL",
                      (owner_text(os.getpid()), key))

    def release(self, keys) -> None:
        """The image using these layers is recorded (call inside its transaction)."""
        with self.db.tx() as c:
            c.executemany("UPDATE snapshots SET owner=NULL WHERE key=? AND owner IS NOT NULL",
                          [(k,) for k in keys])

    def orphans(self, referenced: set[str]) -> list[Info]:
        """Committed layers that nothing uses: not in referenced (the images' chains),
        no parent of a snapshot kept, and their unpack dead (or unnamed: legacy).
        Children first, the order they can be removed in."""
        rows = self.db.q("SELECT key, num, parent, kind, created, size, owner FROM snapshots")
        by_key = {r[0]: r for r in rows}
        kept = [r[0] for r in rows if r[0] in referenced or r[3] != "committed"
                or (r[6] and owner_text_alive(r[6]))]
        seen: set[str] = set()
        while kept:
            key = kept.pop()
            if key in seen or key not in by_key:
                continue
            seen.add(key)
            kept.append(by_key[key][2])
        return [Info(*r[:6]) for r in sorted(rows, key=lambda r: -r[1]) if r[0] not in seen]

    def remove_orphans(self, referenced: set[str]) -> int:
        """Remove orphans (see orphans()); returns the bytes freed."""
        freed = 0
        for info in self.orphans(referenced):
            owner = self.db.q1("SELECT owner FROM snapshots WHERE key=?", info.key)
            if owner and owner[0] and owner_text_alive(owner[0]):
                continue  # an unpack claimed it to reuse since orphans() looked
            try:
                self.remove(info.key)
            except (NotFound, FailedPrecondition):
                continue  # another process removed it, or a new snapshot stands on it
            freed += info.size or 0
        return freed

    # --- extractions: `extract-<pid>-<random>` until committed under a chain id --
    @staticmethod
    def extraction_key() -> str:
        return f"{EXTRACT}{os.getpid()}-{os.urandom(4).hex()}"

    def abandoned(self) -> list[Info]:
        """Extractions whose process is dead (killed in a load, pull, import or build)."""
        rows = self.db.q("SELECT key, num, parent, kind, created, size FROM snapshots"
                         " WHERE key >= ? AND key < ?", EXTRACT, EXTRACT[:-1] + ".")
        return [Info(*r) for r in rows if not extraction_alive(r[0])]

    def reap(self, strays: bool = False) -> int:
        """Remove abandoned extractions (and, with strays, directories no row knows);
        what the next command to find them does. Returns the bytes freed."""
        freed = 0
        for info in sorted(self.abandoned(), key=lambda i: -i.num):  # children first
            path = os.path.join(self.root, str(info.num))
            freed += du(path) if os.path.isdir(path) else 0
            try:
                self.remove(info.key)
            except (NotFound, FailedPrecondition):
                continue  # another process reaped it, or a live one stands on it
        for name in self.strays() if strays else ():
            path = os.path.join(self.root, name)
            freed += du(path)
            remove_tree(path)
        return freed

    # --- driver-specific -----------------------------------------------------
    def mounts(self, key: str) -> list[Mount]:
        raise NotImplementedError

    def _make_active(self, path: str, parent: str | None) -> None:
        raise NotImplementedError


class OverlaySnapshotter(Snapshotter):
    driver = "overlay"

    def _make_active(self, path: str, parent: str | None) -> None:
        os.mkdir(path, 0o755)  # the snapshot root exists (__init__): three mkdirs, no stats
        os.mkdir(os.path.join(path, "fs"), 0o755)
        os.mkdir(os.path.join(path, "work"), 0o700)

    def mounts(self, key: str) -> list[Mount]:
        chain = self.chain(key)
        top, parents = chain[0], chain[1:]
        fs = [os.path.join(self.root, str(i.num), "fs") for i in parents]
        if top.kind == "committed":
            fs.insert(0, os.path.join(self.root, str(top.num), "fs"))
            if len(fs) == 1:
                return [Mount("bind", fs[0], ("rbind", "ro"))]
            return [Mount("overlay", "overlay", ("lowerdir=" + ":".join(fs),))]
        upper = os.path.join(self.root, str(top.num))
        if not fs:
            return [Mount("bind", os.path.join(upper, "fs"), ("rbind", "rw"))]
        opts = (f"lowerdir={':'.join(fs)}", f"upperdir={upper}/fs", f"workdir={upper}/work")
        return [Mount("overlay", "overlay", opts + ("index=off",))]


class CopySnapshotter(Snapshotter):
    """Each active snapshot is a full copy of its parent; works on any filesystem."""

    driver = "copy"
    whiteouts = "delete"

    def _make_active(self, path: str, parent: str | None) -> None:
        os.makedirs(path, mode=0o755)
        fs = os.path.join(path, "fs")
        if parent is None:
            os.mkdir(fs, 0o755)
            return
        src = os.path.join(self.root, str(self.stat(parent).num), "fs")
        import subprocess
        # cp -a keeps owners, modes, links, devices and xattrs; reflinks where it can
        subprocess.run(["cp", "-a", "--reflink=auto", src, fs], check=True)

    def mounts(self, key: str) -> list[Mount]:
        info = self.stat(key)
        fs = os.path.join(self.root, str(info.num), "fs")
        return [Mount("bind", fs, ("rbind", "ro" if info.kind == "committed" else "rw"))]



EXTRACT = "extract-"


def extraction_alive(key: str) -> bool:
    """Whether the process named in an extraction's key still runs (never this one's
    own key, which is alive by definition, is judged: callers pass others')."""
    try:
        pid = int(key.split("-")[1])
    except (IndexError, ValueError):
        return False
    return pid == os.getpid() or os.path.exists(f"/proc/{pid}")


def _unless_gone(fn, path, exc_info) -> None:
    """shutil.rmtree's onerror: a file another remover took first is no error."""
    if not issubclass(exc_info[0], FileNotFoundError):
        raise exc_info[1]


def overlay_supported() -> bool:
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        return False


def open_snapshotter(root: str, driver: str, db: DB) -> Snapshotter:
    if driver == "overlay":
        return OverlaySnapshotter(root, db)
    if driver == "copy":
        return CopySnapshotter(root, db)
    raise InvalidArgument(f'unknown storage driver "{driver}" (choose overlay or copy)')


def read_file(snapshotter: Snapshotter, key: str, path: str, limit: int = 1 << 20) -> bytes | None:
    """A small file (/etc/passwd for `-u`) as the snapshot's merged layers show it, or
    None. Symlinks on its way resolve inside the snapshot's root, as docker does,
    never to a file of the host; every open goes through kade.util.inroot."""
    from kade.util import inroot
    chain = snapshotter.chain(key)
    if snapshotter.driver != "overlay":
        chain = chain[:1]  # a copy snapshot holds all of its parents already
    layers = [os.path.join(snapshotter.root, str(info.num), "fs") for info in chain]
    found = _merged_find(layers, path)
    if found is None:
        return None
    try:
        fd = inroot.open_in_root(found[0], found[1], os.O_RDONLY | os.O_NONBLOCK,
                                 follow=False)
    except OSError:
        return None
    try:
        import stat
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _merged_find(layers: list[str], path: str) -> tuple[str, str] | None:
    """(layer directory, real path in it) of path in the merged view of layers (top
    first), its symlinks resolved with the merged root as "/"."""
    from kade.util import inroot
    todo, names, links = path.split("/")[::-1], [], 0
    while todo:
        c = todo.pop()
        if c in ("", ".", ".."):
            if c == ".." and names:
                names.pop()
            continue
        hit = _merged_lookup(layers, names, c)
        if hit is None:
            return None
        layer, is_link = hit
        if not is_link:
            names.append(c)
            continue
        links += 1
        if links > 40:
            return None
        try:
            fd = inroot.open_in_root(layer, "/".join(names + [c]), os.O_PATH, follow=False)
        except OSError:
            return None
        try:
            target = os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)
        if target.startswith("/"):
            names = []
        todo.extend(target.split("/")[::-1])
    return (layers[0], "") if not names else _top_holder(layers, names)


def _top_holder(layers: list[str], names: list[str]) -> tuple[str, str] | None:
    hit = _merged_lookup(layers, names[:-1], names[-1])
    return None if hit is None else (hit[0], "/".join(names))


def _merged_lookup(layers: list[str], names: list[str], name: str) -> tuple[str, bool] | None:
    """(top layer holding name in directory names, whether it is a symlink), as
    overlayfs merges them: whiteouts hide, opaque directories and non-directories
    stop the layers below; None when missing."""
    import stat
    dirs = list(layers)
    for i, n in enumerate(names + [name]):
        below: list[str] = []
        first = None
        for d in dirs:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                break  # a whiteout
            if first is None:
                first = (d, st)
            if not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(first[1].st_mode)):
                break
            below.append(p)
            if _opaque(p):
                break
        if first is None:
            return None
        if i == len(names):
            top = first[0]
            for _ in names:
                top = os.path.dirname(top)
            return top, stat.S_ISLNK(first[1].st_mode)
        if not stat.S_ISDIR(first[1].st_mode):
            return None
        dirs = below
    return None


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
