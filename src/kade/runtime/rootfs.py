"""The container's root file system: mounts, /dev, pivot_root, masked and read-only paths.

It runs in the container's init, inside its own mount namespace, in two halves around
the hostname and sysctl steps (runtime-spec config.md "Mounts", config-linux.md):

    prepare(sc, cfg)  make "/" private first, so nothing mounted here reaches the host;
                      mount the rootfs `Mount` values, then the spec's mounts in order;
                      fill /dev; pivot_root into the rootfs
    finish(sc, cfg)   readonlyPaths, maskedPaths, then root.readonly

Before pivot_root every destination is resolved inside cfg.root by kade.util.inroot
and mounted on through its descriptor (`_target`), so no symlink of an image or a
shared volume can aim a mount, a device or a /dev link at the host. After pivot_root
paths are container paths: "/" is the rootfs, so symlinks cannot leave it.

The parsing half (`rootfs_config`, `parse_mount`) runs in the caller before fork and
turns the spec into frozen values, so the child only makes system calls.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kade import errors
from kade.oci.mount import Mount
from kade.runtime import linux as L
from kade.runtime.linux import Syscalls, step_failed

TYPE_CHECKING = False  # typing costs the supervisor ~0.4 MB (kade.util.namedtuple)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from kade.util.namedtuple import NamedTuple

_CGROUP_ROOT = "/sys/fs/cgroup"

# option -> (sets the flag?, flag); the table of mount(8) and runc's libcontainer.
_FLAGS = {
    "defaults": (True, 0),
    "ro": (True, L.MS_RDONLY), "rw": (False, L.MS_RDONLY),
    "nosuid": (True, L.MS_NOSUID), "suid": (False, L.MS_NOSUID),
    "nodev": (True, L.MS_NODEV), "dev": (False, L.MS_NODEV),
    "noexec": (True, L.MS_NOEXEC), "exec": (False, L.MS_NOEXEC),
    "sync": (True, L.MS_SYNCHRONOUS), "async": (False, L.MS_SYNCHRONOUS),
    "dirsync": (True, L.MS_DIRSYNC), "remount": (True, L.MS_REMOUNT),
    "mand": (True, L.MS_MANDLOCK), "nomand": (False, L.MS_MANDLOCK),
    "noatime": (True, L.MS_NOATIME), "atime": (False, L.MS_NOATIME),
    "nodiratime": (True, L.MS_NODIRATIME), "diratime": (False, L.MS_NODIRATIME),
    "relatime": (True, L.MS_RELATIME), "norelatime": (False, L.MS_RELATIME),
    "strictatime": (True, L.MS_STRICTATIME), "nostrictatime": (False, L.MS_STRICTATIME),
    "lazytime": (True, L.MS_LAZYTIME), "nolazytime": (False, L.MS_LAZYTIME),
    "iversion": (True, L.MS_I_VERSION), "noiversion": (False, L.MS_I_VERSION),
    "nosymfollow": (True, L.MS_NOSYMFOLLOW), "symfollow": (False, L.MS_NOSYMFOLLOW),
    "silent": (True, L.MS_SILENT), "loud": (False, L.MS_SILENT),
    "bind": (True, L.MS_BIND), "rbind": (True, L.MS_BIND | L.MS_REC),
}
_PROPAGATION = {
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC,
    "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
    "shared": L.MS_SHARED, "rshared": L.MS_SHARED | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE, "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}
# recursive options (mount_setattr(2) with AT_RECURSIVE): option -> (set, clear)
_RECURSIVE = {
    "rro": (L.MOUNT_ATTR_RDONLY, 0), "rrw": (0, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (L.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, L.MOUNT_ATTR_NOSUID),
    "rnodev": (L.MOUNT_ATTR_NODEV, 0), "rdev": (0, L.MOUNT_ATTR_NODEV),
    "rnoexec": (L.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, L.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (L.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, L.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (L.MOUNT_ATTR_RELATIME, L.MOUNT_ATTR__ATIME),
    "rnoatime": (L.MOUNT_ATTR_NOATIME, L.MOUNT_ATTR__ATIME),
    "rstrictatime": (L.MOUNT_ATTR_STRICTATIME, L.MOUNT_ATTR__ATIME),
    "rnosymfollow": (L.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, L.MOUNT_ATTR_NOSYMFOLLOW),
}
_IGNORED = {"tmpcopyup", "notmpcopyup"}   # crun extensions docker/podman may pass
_UNSUPPORTED = {"idmap", "ridmap"}


class MountEntry(NamedTuple):
    """One mount, parsed: what mount(2) needs, then what is applied after it."""
    destination: str
    type: str
    source: str
    flags: int = 0
    data: str = ""
    propagation: tuple[int, ...] = ()
    attr_set: int = 0
    attr_clr: int = 0

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & L.MS_BIND)


class Device(NamedTuple):
    path: str
    kind: str          # "c", "u" (both character), "b" or "p"
    major: int = 0
    minor: int = 0
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


class Hierarchy(NamedTuple):
    """One cgroup hierarchy of the host, as a "cgroup" mount recreates it."""
    name: str                 # directory under /sys/fs/cgroup; "" for a pure cgroup2 host
    fstype: str               # "cgroup" or "cgroup2"
    options: str              # mount data: "memory", "name=systemd", ""
    controllers: frozenset[str]   # as /proc/self/cgroup names them (empty for cgroup2)


class RootfsConfig(NamedTuple):
    root: str                                  # absolute host path of the rootfs
    readonly: bool = False
    propagation: int = L.MS_PRIVATE | L.MS_REC
    rootfs_mounts: tuple[MountEntry, ...] = ()
    mounts: tuple[MountEntry, ...] = ()
    setup_dev: bool = True                     # false when /dev is bound from the host
    devices: tuple[Device, ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    cgroup_ns: bool = False
    cgroups: tuple[Hierarchy, ...] = ()
    mount_ns: bool = True                      # false: the caller's; chroot, no pivot_root
    root_propagation: int = 0                  # for "/" after pivot_root (shared, unbindable)
    private_parent: str = ""                   # the rootfs's parent mount, made private first


DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3), Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7), Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9), Device("/dev/tty", "c", 5, 0),
)
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)
_NODE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


# -- parsing (in the caller, before fork) ------------------------------------------

def parse_options(options: list[str] | tuple[str, ...]) -> tuple[int, str, tuple[int, ...],
                                                                  int, int]:
    """Mount options -> (flags, data, propagation, attr_set, attr_clr)."""
    flags, data, propagation, attr_set, attr_clr = 0, [], [], 0, 0
    for opt in options:
        if opt in _FLAGS:
            sets, flag = _FLAGS[opt]
            flags = flags | flag if sets else flags & ~flag
        elif opt in _PROPAGATION:
            propagation.append(_PROPAGATION[opt])
        elif opt in _RECURSIVE:
            add, clear = _RECURSIVE[opt]
            attr_set = (attr_set & ~clear) | add
            attr_clr = (attr_clr & ~add) | clear
        elif opt in _UNSUPPORTED:
            raise errors.NotImplementedYet(f'mount option "{opt}" is not supported yet')
        elif opt not in _IGNORED:
            data.append(opt)
    return flags, ",".join(data), tuple(propagation), attr_set, attr_clr


def parse_mount(m: dict, bundle: str) -> MountEntry:
    """A runtime-spec mount object -> MountEntry; relative bind sources are bundle-relative."""
    destination = m.get("destination") or ""
    if not destination:
        raise errors.InvalidArgument(f"mount {m!r} has no destination")
    kind = m.get("type") or ""
    flags, data, propagation, attr_set, attr_clr = parse_options(m.get("options") or ())
    if kind == "bind":
        flags |= L.MS_BIND
    source = m.get("source") or ""
    if flags & L.MS_BIND and not os.path.isabs(source):
        source = os.path.join(bundle, source)
    return MountEntry(os.path.normpath("/" + destination.lstrip("/")), kind, source, flags, data,
                      propagation, attr_set, attr_clr)


def entry_from_mount(m: Mount) -> MountEntry:
    """A snapshotter's Mount (target relative to the rootfs) -> MountEntry."""
    return parse_mount({"destination": m.target or "/", "type": m.type, "source": m.source,
                        "options": list(m.options)}, "/")


def parse_device(d: dict) -> Device:
    kind = d.get("type", "")
    if kind not in _NODE_TYPES or not str(d.get("path", "")).startswith("/"):
        raise errors.InvalidArgument(f"linux.devices entry {d!r} is not valid")
    return Device(d["path"], kind, int(d.get("major", 0)), int(d.get("minor", 0)),
                  int(d.get("fileMode", 0o666)) & 0o7777, int(d.get("uid", 0)),
                  int(d.get("gid", 0)))


def rootfs_config(spec: dict, bundle: str, rootfs_mounts: tuple[Mount, ...] | list[Mount] = (),
                  *, cgroup_ns: bool = False) -> RootfsConfig:
    root = _root_path(spec, bundle)
    linux = spec.get("linux") or {}
    mounts = tuple(parse_mount(m, bundle) for m in spec.get("mounts") or ())
    setup_dev = not any(m.is_bind and m.destination == "/dev" for m in mounts)
    devices = {d.path: d for d in DEFAULT_DEVICES} if setup_dev else {}
    devices.update((d.path, d) for d in map(parse_device, linux.get("devices") or ()))
    needs_cgroups = any(m.type == "cgroup" for m in mounts)
    propagation, root_propagation = _root_propagation(linux.get("rootfsPropagation") or "")
    return RootfsConfig(
        root=root, readonly=bool((spec.get("root") or {}).get("readonly")),
        propagation=propagation, root_propagation=root_propagation,
        private_parent=_mount_point_of(root) if propagation & L.MS_SHARED else "",
        rootfs_mounts=tuple(entry_from_mount(m) for m in rootfs_mounts), mounts=mounts,
        setup_dev=setup_dev, devices=tuple(devices.values()),
        masked_paths=tuple(linux.get("maskedPaths") or ()),
        readonly_paths=tuple(linux.get("readonlyPaths") or ()),
        cgroup_ns=cgroup_ns, cgroups=host_cgroup_layout() if needs_cgroups else ())


def _root_path(spec: dict, bundle: str) -> str:
    path = (spec.get("root") or {}).get("path") or ""
    if not path:
        raise errors.InvalidArgument("the spec has no root.path")
    root = os.path.normpath(os.path.join(bundle, path))
    if not os.path.isdir(root):
        raise errors.NotFound(f'rootfs "{root}" is not a directory')
    return root


def _root_propagation(name: str) -> tuple[int, int]:
    """(for the whole tree before the rootfs is mounted, for "/" after pivot_root).

    The tree gets shared or slave propagation, as runc gives it, so bind mounts stay
    peers or slaves of the host's; otherwise (and for unbindable, which no bind of
    the rootfs could be made from) it is private. The container's own "/" then gets
    shared or unbindable propagation itself, so its mountinfo shows what was asked.
    """
    if not name:
        return L.MS_PRIVATE | L.MS_REC, 0
    if name not in _PROPAGATION:
        raise errors.InvalidArgument(f'linux.rootfsPropagation "{name}" is not valid')
    if "shared" in name:
        return L.MS_SHARED | L.MS_REC, _PROPAGATION[name]
    if "unbindable" in name:
        return L.MS_PRIVATE | L.MS_REC, _PROPAGATION[name]
    return _PROPAGATION[name] | L.MS_REC, 0


def _mount_point_of(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The mount point of the mount holding path (the longest one above it)."""
    path = os.path.realpath(path)
    best = "/"
    with open(mountinfo) as f:
        for line in f:
            point = _unescape(line.split()[4])
            if (path == point or path.startswith(point.rstrip("/") + "/")) \
                    and len(point) > len(best):
                best = point
    return best


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space) undone."""
    if "\\" not in field:
        return field
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


@functools.lru_cache(maxsize=1)
def host_cgroup_layout(mountinfo: str = "/proc/self/mountinfo") -> tuple[Hierarchy, ...]:
    """The cgroup hierarchies under /sys/fs/cgroup that a container gets to see.

    On a hybrid host only the v1 ones, as runc (and so docker) does: the unified
    hierarchy there is the host's business.
    """
    found = []
    with open(mountinfo) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            point = pre.split()[4]
            fstype, _, super_opts = post.split()[:3]
            if fstype not in ("cgroup", "cgroup2") or not point.startswith(_CGROUP_ROOT):
                continue
            name = point[len(_CGROUP_ROOT):].lstrip("/")
            controllers = [o for o in super_opts.split(",") if _is_controller(o)]
            found.append(Hierarchy(name, fstype, ",".join(controllers),
                                   frozenset(controllers)))
    v1 = tuple(h for h in found if h.fstype == "cgroup")
    return v1 or tuple(found)


def _is_controller(option: str) -> bool:
    return option not in ("rw", "ro", "noprefix", "clone_children", "xattr", "nsdelegate",
                          "cpuset_v2_mode", "favordynmods", "memory_recursiveprot",
                          "memory_localevents", "memory_hugetlb_accounting") \
        and not option.startswith("release_agent=")


# -- mount targets ---------------------------------------------------------------

@contextmanager
def _target(sc: Syscalls, root: str, path: str, kind: str | None = None) -> Iterator[str]:
    """The path to give mount(2) for path resolved inside root: /proc/self/fd/N of
    a descriptor (kade.util.inroot), as runc mounts, so no symlink met or swapped
    in, even in a volume another container shares, aims a mount at the host.
    kind "dir" or "file" makes what is missing; None opens what is there now (after
    a mount: the new mount's root, for a remount or a propagation change)."""
    if kind == "dir":
        fd = sc.mkdir_in_root(root, path)
    elif kind == "file":
        fd = sc.touch_in_root(root, path)
    else:
        fd = sc.open_in_root(root, path)
    try:
        yield sc.fd_path(fd)
    finally:
        sc.close(fd)


@contextmanager
def _parent(sc: Syscalls, root: str, path: str) -> Iterator[tuple[str, str]]:
    """(directory, name) for a node the runtime creates (a device, a /dev symlink):
    the directory resolved inside root, the name never followed."""
    head, name = os.path.split(path.rstrip("/"))
    with _target(sc, root, head or "/", "dir") as where:
        yield where, name


# -- the first half: before and up to pivot_root -----------------------------------

def prepare(sc: Syscalls, cfg: RootfsConfig,
            before_pivot: Callable[[], None] | None = None) -> None:
    """before_pivot runs once everything is mounted (the createRuntime and
    createContainer hooks' moment). Without a mount namespace of its own the tree's
    propagation is the caller's business and the init chroots (runc 1.1.5)."""
    if cfg.mount_ns:
        _set_tree_propagation(sc, cfg)
    _mount_rootfs(sc, cfg)
    for m in cfg.mounts:
        mount_entry(sc, cfg, m)
    if cfg.setup_dev:
        _populate_dev(sc, cfg)
    for d in () if cfg.setup_dev else cfg.devices:
        _create_device(sc, cfg.root, d)
    if before_pivot is not None:
        before_pivot()
    if not cfg.mount_ns:
        chroot(sc, cfg.root)
        return
    pivot_root(sc, cfg.root)
    if cfg.root_propagation:
        try:
            sc.mount(None, "/", None, cfg.root_propagation)
        except OSError as e:
            raise step_failed("set the rootfs's propagation", e) from None


def _set_tree_propagation(sc: Syscalls, cfg: RootfsConfig) -> None:
    try:
        sc.mount(None, "/", None, cfg.propagation)
        if cfg.private_parent:
            # a rootfs bound inside a shared mount would show up in its peers (the
            # host's, too), and pivot_root refuses a shared parent: runc does the same
            sc.mount(None, cfg.private_parent, None, L.MS_PRIVATE)
    except OSError as e:
        raise step_failed("set the mount tree's propagation", e) from None


def _mount_rootfs(sc: Syscalls, cfg: RootfsConfig) -> None:
    """Make the rootfs a mount point (pivot_root needs one), from the Mount values if any."""
    if not any(m.destination == "/" for m in cfg.rootfs_mounts):
        try:
            sc.mount(cfg.root, cfg.root, None, L.MS_BIND | L.MS_REC)
        except OSError as e:
            raise step_failed(f'bind rootfs "{cfg.root}"', e) from None
    for m in cfg.rootfs_mounts:
        mount_entry(sc, cfg, m)


def mount_entry(sc: Syscalls, cfg: RootfsConfig, m: MountEntry) -> None:
    try:
        if m.type == "cgroup":
            _mount_cgroup(sc, cfg, m)
        elif m.is_bind:
            _mount_bind(sc, cfg.root, m)
        elif not _mount_new(sc, cfg, m):
            # sysfs belongs to the network namespace: in a user namespace without a
            # network namespace of its own only the host's can be bound (runc)
            _mount_bind(sc, cfg.root, m._replace(source="/sys",
                                                 flags=m.flags | L.MS_BIND | L.MS_REC))
        if m.propagation or m.attr_set or m.attr_clr:
            with _target(sc, cfg.root, m.destination) as dest:   # the new mount
                for propagation in m.propagation:
                    sc.mount(None, dest, None, propagation)
                if m.attr_set or m.attr_clr:
                    sc.mount_setattr(dest, m.attr_set, m.attr_clr)
    except OSError as e:
        raise step_failed(f'mount "{m.source or m.type}" to rootfs at "{m.destination}"',
                          e) from None


def _mount_new(sc: Syscalls, cfg: RootfsConfig, m: MountEntry) -> bool:
    """Mount a file system; False for a sysfs that the kernel refused (EPERM)."""
    with _target(sc, cfg.root, m.destination, "dir") as dest:
        try:
            sc.mount(m.source or m.type, dest, m.type, m.flags, m.data or None)
        except PermissionError:
            if m.type != "sysfs":
                raise
            return False
    return True


def _mount_bind(sc: Syscalls, root: str, m: MountEntry) -> None:
    is_dir = sc.is_dir(m.source)
    if is_dir is None:
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), m.source)
    with _target(sc, root, m.destination, "dir" if is_dir else "file") as dest:
        sc.mount(m.source, dest, None, m.flags & (L.MS_BIND | L.MS_REC))
    if m.flags & ~(L.MS_BIND | L.MS_REC | L.MS_REMOUNT):
        # a bind mount ignores every flag but MS_REC until it is remounted
        with _target(sc, root, m.destination) as dest:
            sc.mount(m.source, dest, None, m.flags | L.MS_REMOUNT)


def _mount_cgroup(sc: Syscalls, cfg: RootfsConfig, m: MountEntry) -> None:
    """/sys/fs/cgroup as the host has it, rooted at the container's own cgroup.

    With a cgroup namespace a fresh mount of each hierarchy shows the container's
    cgroup as its root; without one, the container's directories are bound.
    """
    own = None if cfg.cgroup_ns else _own_cgroups()
    base = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
    with _target(sc, cfg.root, m.destination, "dir") as dest:
        if len(cfg.cgroups) == 1 and not cfg.cgroups[0].name:        # a pure cgroup2 host
            _mount_hierarchy(sc, cfg.cgroups[0], dest, m.flags, own)
            return
        sc.mount("tmpfs", dest, "tmpfs", base, "mode=755")
    with _target(sc, cfg.root, m.destination) as dest:   # our new tmpfs: nobody else's
        for h in cfg.cgroups:
            sub = os.path.join(dest, h.name)
            sc.makedirs(sub)
            _mount_hierarchy(sc, h, sub, m.flags | base, own)
            for alias in h.name.split(",") if "," in h.name else ():
                sc.symlink(h.name, os.path.join(dest, alias))
        if m.flags & L.MS_RDONLY:
            sc.mount("tmpfs", dest, "tmpfs", base | L.MS_REMOUNT | L.MS_RDONLY, "mode=755")


def _mount_hierarchy(sc: Syscalls, h: Hierarchy, dest: str, flags: int,
                     own: dict[frozenset[str], str] | None) -> None:
    if own is None:
        sc.mount(h.fstype, dest, h.fstype, flags & ~L.MS_BIND, h.options or None)
        return
    source = os.path.join(_CGROUP_ROOT, h.name) + own.get(h.controllers, "/")
    sc.mount(source, dest, None, L.MS_BIND)
    sc.mount(source, dest, None, L.MS_BIND | L.MS_REMOUNT | (flags & ~L.MS_BIND))


def _own_cgroups() -> dict[frozenset[str], str]:
    """/proc/self/cgroup: controllers of each hierarchy -> this process's path in it."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[frozenset(c for c in controllers.split(",") if c)] = path.rstrip("/")
    return paths


def _populate_dev(sc: Syscalls, cfg: RootfsConfig) -> None:
    for d in cfg.devices:
        _create_device(sc, cfg.root, d)
    for target, link in DEV_SYMLINKS:
        try:
            with _parent(sc, cfg.root, link) as (where, name):
                sc.symlink(target, f"{where}/{name}")
        except FileExistsError:
            pass
        except OSError as e:
            raise step_failed(f'create symlink "{link}"', e) from None


def _create_device(sc: Syscalls, root: str, d: Device) -> None:
    """mknod the device; where that is not allowed, bind the host's node instead."""
    try:
        with _parent(sc, root, d.path) as (where, name):
            dest = f"{where}/{name}"    # mknod, chown and touch never follow name
            try:
                sc.mknod(dest, _NODE_TYPES[d.kind] | d.mode, os.makedev(d.major, d.minor))
            except FileExistsError:
                return
            except PermissionError:
                sc.touch(dest)
                _bind_node(sc, root, d.path, d.path)
                return
            if d.uid or d.gid:
                sc.chown(dest, d.uid, d.gid)
    except OSError as e:
        raise step_failed(f'create device "{d.path}"', e) from None


def _bind_node(sc: Syscalls, root: str, source: str, path: str) -> None:
    """Bind source on the node at path, never through a symlink there."""
    fd = sc.open_in_root(root, path, follow=False)
    try:
        sc.mount(source, sc.fd_path(fd), None, L.MS_BIND)
    finally:
        sc.close(fd)


def bind_console(sc: Syscalls, root: str, console: str) -> None:
    """Bind the console pty slave (a path in our own mount namespace) at /dev/console."""
    try:
        with _parent(sc, root, "/dev/console") as (where, name):
            sc.touch(f"{where}/{name}", 0o600)
        _bind_node(sc, root, console, "/dev/console")
    except OSError as e:
        raise step_failed('bind the console at "/dev/console"', e) from None


def pivot_root(sc: Syscalls, root: str) -> None:
    """Make root the new "/" and drop the host's tree.

    pivot_root(".", ".") stacks the old root on top of the new one, so no put_old
    directory is needed; the old root is then made a slave (its unmount must not
    propagate anywhere: with shared propagation its mounts have peers on the host)
    and detached. Both through a descriptor of the old root, as runc does: what "."
    names after pivot_root is the new root, whose propagation is the spec's.
    """
    try:
        old = sc.open_in_root("/", "/")
        try:
            sc.chdir(root)
            sc.pivot_root(".", ".")
            sc.fchdir(old)
            sc.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
            sc.umount2(".", L.MNT_DETACH)
            sc.chdir("/")
        finally:
            sc.close(old)
    except OSError as e:
        raise step_failed(f'pivot_root to "{root}"', e) from None


def chroot(sc: Syscalls, root: str) -> None:
    """The jail of a container without a mount namespace of its own (runc's)."""
    try:
        sc.chdir(root)
        sc.chroot(".")
        sc.chdir("/")
    except OSError as e:
        raise step_failed(f'chroot to "{root}"', e) from None


# -- the second half: after pivot_root, in container paths -------------------------

def finish(sc: Syscalls, cfg: RootfsConfig) -> None:
    for path in cfg.readonly_paths:
        _readonly_path(sc, path)
    for path in cfg.masked_paths:
        _mask_path(sc, path)
    if cfg.readonly:
        try:
            sc.mount(None, "/", None,
                     L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | sc.mount_flags("/"))
        except OSError as e:
            raise step_failed("make the rootfs read-only", e) from None


def _readonly_path(sc: Syscalls, path: str) -> None:
    try:
        if sc.is_dir(path) is None:
            return
        sc.mount(path, path, None, L.MS_BIND | L.MS_REC)
        sc.mount(path, path, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_REC
                 | sc.mount_flags(path))
    except OSError as e:
        raise step_failed(f'make "{path}" read-only', e) from None


def _mask_path(sc: Syscalls, path: str) -> None:
    """A file is hidden under /dev/null, a directory under an empty read-only tmpfs."""
    try:
        is_dir = sc.is_dir(path)
        if is_dir is None:
            return
        if is_dir:
            sc.mount("tmpfs", path, "tmpfs", L.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", path, None, L.MS_BIND)
    except OSError as e:
        raise step_failed(f'mask "{path}"', e) from None
