"""Starting a container's processes: fork, namespaces, the init's setup, exec.

Process model (the invariant every function here keeps):

    caller (the engine, or `kade runtime`)   waits on the init with os.waitpid
      └─ init, forked by the caller itself, already in the new pid namespace (pid 1),
         sets itself up, then execs the trampoline, which blocks right before the
         user's execve until start()

A new pid namespace only applies to the children of whoever unshares it, so the
calling thread unshares (or setns-es into) CLONE_NEWPID, forks, and setns-es back to
its own pid namespace: afterwards the caller is exactly where it was and can create
the next container. This beats an intermediate process plus PR_SET_CHILD_SUBREAPER:
one fork instead of two, the caller is the init's real parent from the start, and no
process-wide subreaper flag changes how the engine's other orphans are reaped.
Namespace membership is per thread, so create() on other threads is unaffected.

exec() must not show the container a process that is still half the host's (its
root, cwd, credentials, or the host's Python as /proc/<pid>/exe), so it differs:

    caller   waits on the exec'd process with os.waitpid
      ├─ starter, forked in the caller's pid namespace (no container process sees
      │  it): put in the cgroup, joins the container's namespaces, becomes the
      │  spec's user, execs the trampoline, which clones ─┐ and exits
      └─ the exec'd process (CLONE_PARENT: the caller's child), born in the
         container's pid namespace already in its cgroup, mounts, root and cwd,
         with its credentials, running the sealed trampoline; it makes its session
         and execs the user's command

With a user namespace the init is not forked by the caller but cloned with
CLONE_PARENT by a helper that made the user namespace and, inside it, the pid
namespace (so the mapped root may mount /proc); the caller writes the id maps while
the helper waits (_fork_in_user_namespace). The caller is still the init's parent.

Every process here is non-dumpable until the user's execve (runc does the same), and
neither ever execs the user's command from Python: kade.runtime.trampoline says why.

The handshake (pipes close-on-exec; the fifo lives in the state directory):

    go    caller -> child: one byte once the caller has put the child (the init, or
          the exec starter) in its cgroup; EOF instead means the caller gave up
    err   child -> caller: HOOKS (init only, when the spec has prestart/createRuntime
          hooks) after its mounts, before pivot_root: the caller runs them, then
          writes go again; READY once the init is set up (create() returns);
          otherwise b"<ErrorClass>\\n<message>"; it closes when the trampoline starts.
          For exec, the trampoline's records instead (the pid of the process it
          cloned, or errno of a failed clone or execve), until that process execs
    exec.fifo   the set-up init's trampoline blocks opening it for writing; start()
          (any process) opens it for reading, which lets it exec; an exec failure
          is written into it as a record, a successful exec just closes it

Between fork and exec the child makes only system calls (the spec was parsed into
frozen values before fork) and never returns into the caller's code: `_child` ends
in execve or os._exit.
"""

from __future__ import annotations

import _socket  # the console's master is sent over a socket; nothing imports after pivot
import errno
import fcntl
import gc
import os
import resource
import select
import signal
import stat
import struct
import termios
from collections.abc import Callable, Iterable

from kade import errors
from kade.oci.mount import Mount
from kade.runtime import caps as _caps
from kade.runtime import labels as _labels
from kade.runtime import linux as L
from kade.runtime import rootfs
from kade.runtime import seccomp as _seccomp
from kade.runtime import trampoline as _tramp
from kade.runtime.linux import Syscalls, describe, step_failed

TYPE_CHECKING = False  # typing costs the supervisor ~0.4 MB (kade.util.namedtuple)
if TYPE_CHECKING:
    from typing import NamedTuple, NoReturn
else:
    from kade.util.namedtuple import NamedTuple

NAMESPACE_FLAGS = {
    "pid": L.CLONE_NEWPID, "network": L.CLONE_NEWNET, "mount": L.CLONE_NEWNS,
    "ipc": L.CLONE_NEWIPC, "uts": L.CLONE_NEWUTS, "cgroup": L.CLONE_NEWCGROUP,
    "user": L.CLONE_NEWUSER, "time": L.CLONE_NEWTIME,
}
# /proc/<pid>/ns names an exec'd process's starter joins, in order: the user namespace
# first (runc's order: the others may belong to it), the mount namespace after those it
# needs the host's /proc for, the pid namespace (for its child) last. "user" is only
# joined when it is not the caller's (setns refuses one's own), "time" where it exists.
EXEC_NAMESPACES = (("user", L.CLONE_NEWUSER), ("ipc", L.CLONE_NEWIPC),
                   ("uts", L.CLONE_NEWUTS), ("net", L.CLONE_NEWNET),
                   ("cgroup", L.CLONE_NEWCGROUP), ("time", L.CLONE_NEWTIME),
                   ("mnt", L.CLONE_NEWNS), ("pid", L.CLONE_NEWPID))
_OPTIONAL_NAMESPACES = ("user", "time")
ROOT = "root"            # open_namespaces: the init's root, when it chroots (no mount ns)
NEW = -1                 # fork_into: a new pid namespace
READY = b"\0"
HOOKS = b"\2"            # init -> caller: run the prestart and createRuntime hooks now
_MAX_FD = 0x7FFFFFFF
_RLIMITS = {name: getattr(resource, name) for name in dir(resource)
            if name.startswith("RLIMIT_")}
_INFINITY = resource.RLIM_INFINITY
_REPORTABLE = (errors.CommandNotFound, errors.CommandNotInvocable, errors.InvalidArgument,
               errors.NotImplementedYet, errors.NotFound, errors.Forbidden,
               errors.FailedPrecondition, errors.KadeError)
_BY_NAME = {cls.__name__: cls for cls in _REPORTABLE}


class ProcessConfig(NamedTuple):
    """A runtime-spec process object, checked and converted before fork."""
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int = 0o022
    rlimits: tuple[tuple[int, int, int], ...] = ()     # (resource, soft, hard)
    no_new_privileges: bool = False
    capabilities: dict | None = None
    seccomp: tuple[bytes, int] | None = None   # (BPF, flags), compiled before fork
    oom_score_adj: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None      # (rows, columns)
    path: str = ""               # the file to execve when it is not args[0] (a hook's)


class InitConfig(NamedTuple):
    process: ProcessConfig
    rootfs: rootfs.RootfsConfig
    namespaces: dict[str, str | None]        # type -> path to join, or None for a new one
    hostname: str | None = None
    domainname: str | None = None
    sysctl: tuple[tuple[str, str], ...] = ()
    id_maps: tuple[str, str] = ("", "")      # uid_map, gid_map text for a new user namespace
    time_offsets: str = ""                   # timens_offsets text for a new time namespace
    runtime_hooks: bool = False              # the caller runs prestart/createRuntime hooks
    # runs the createContainer hooks in the init (made by the caller, which knows the
    # container's id: kade.runtime.Runtime.create)
    container_hooks: Callable[[], None] | None = None


# -- from spec to config (in the caller) ----------------------------------------

def init_config(spec: dict, bundle: str, rootfs_mounts: Iterable[Mount] = (), *,
                console: bool = False, seccomp_cache: str | None = None) -> InitConfig:
    """console: whether a console socket will take the pty the init makes;
    seccomp_cache: the directory of compiled filters (None: compile every time)."""
    namespaces = parse_namespaces(spec)
    linux = spec.get("linux") or {}
    _check_mount_namespace(linux, namespaces)
    found_hooks = parse_hooks(spec)
    if not spec.get("process"):
        raise errors.InvalidArgument("the spec has no process")
    _labels.check({}, linux)
    profile = linux.get("seccomp")
    process = process_config(spec["process"],
                             seccomp=_seccomp.prepare(profile, seccomp_cache) if profile else None)
    if process.terminal and not console:
        raise errors.InvalidArgument("process.terminal is set but no console was given")
    hostname, domainname = spec.get("hostname") or None, spec.get("domainname") or None
    if (hostname or domainname) and "uts" not in namespaces:
        raise errors.InvalidArgument("setting the hostname needs a uts namespace")
    cfg = rootfs.rootfs_config(spec, bundle, tuple(rootfs_mounts),
                               cgroup_ns="cgroup" in namespaces)
    return InitConfig(
        process=process, namespaces=namespaces, hostname=hostname, domainname=domainname,
        sysctl=tuple((str(k), str(v)) for k, v in (linux.get("sysctl") or {}).items()),
        rootfs=cfg._replace(mount_ns="mount" in namespaces),
        id_maps=parse_id_maps(linux, namespaces),
        time_offsets=parse_time_offsets(linux, namespaces),
        runtime_hooks=bool(found_hooks.get("prestart") or found_hooks.get("createRuntime")))


def parse_hooks(spec: dict) -> dict[str, tuple]:
    """kade.runtime.hooks.parse, imported only for a spec that has hooks."""
    if not any((spec.get("hooks") or {}).values()):
        return {}
    from kade.runtime import hooks
    return hooks.parse(spec)


def parse_namespaces(spec: dict) -> dict[str, str | None]:
    """type -> path to join, or None for a new one; a type not listed is the caller's
    (config-linux.md), the mount namespace included (see _check_mount_namespace)."""
    found: dict[str, str | None] = {}
    for ns in (spec.get("linux") or {}).get("namespaces") or ():
        kind = ns.get("type")
        if kind not in NAMESPACE_FLAGS:
            raise errors.InvalidArgument(f'namespace type "{kind}" is not valid')
        if kind in found:
            raise errors.InvalidArgument(f'namespace "{kind}" is listed twice')
        found[kind] = ns.get("path") or None
    return found


def _check_mount_namespace(linux: dict, namespaces: dict[str, str | None]) -> None:
    """Without a mount namespace the container's mounts are made in the caller's and
    the init chroots (runc 1.1.5); what only a mount namespace can keep from the
    host is refused, as runc refuses it."""
    if "mount" in namespaces:
        return
    if linux.get("maskedPaths") or linux.get("readonlyPaths"):
        raise errors.InvalidArgument("linux.maskedPaths and linux.readonlyPaths need a "
                                     "mount namespace")
    if linux.get("rootfsPropagation"):
        raise errors.InvalidArgument("linux.rootfsPropagation needs a mount namespace")


def parse_id_maps(linux: dict, namespaces: dict[str, str | None]) -> tuple[str, str]:
    """linux.uidMappings/gidMappings -> (uid_map, gid_map) as the kernel reads them."""
    maps = tuple(_id_map(linux, key) for key in ("uidMappings", "gidMappings"))
    if "user" not in namespaces:
        if any(maps):
            raise errors.InvalidArgument("linux.uidMappings and linux.gidMappings need a "
                                         "user namespace")
        return "", ""
    if namespaces["user"] is None and not all(maps):
        raise errors.InvalidArgument("a new user namespace needs linux.uidMappings and "
                                     "linux.gidMappings")
    return maps[0], maps[1]


def _id_map(linux: dict, key: str) -> str:
    lines = []
    for m in linux.get(key) or ():
        try:
            ids = [int(m[name]) for name in ("containerID", "hostID", "size")]
        except (KeyError, TypeError, ValueError):
            raise errors.InvalidArgument(f"linux.{key} entry {m!r} is not valid") from None
        if min(ids) < 0 or ids[2] == 0 or max(ids[0], ids[1]) + ids[2] > 2**32 - 1:
            raise errors.InvalidArgument(f"linux.{key} entry {m!r} is not valid")
        lines.append("{} {} {}\n".format(*ids))
    return "".join(lines)


def map_id(id_map: str, container_id: int) -> int | None:
    """The host id that container_id is in an id_map text; None if unmapped."""
    for line in id_map.splitlines():
        inside, outside, size = map(int, line.split())
        if inside <= container_id < inside + size:
            return outside + container_id - inside
    return None


_CLOCKS = {"monotonic": 1, "boottime": 7}


def parse_time_offsets(linux: dict, namespaces: dict[str, str | None]) -> str:
    """linux.timeOffsets -> /proc/self/timens_offsets text (clock ids, as the kernel
    reads them)."""
    if linux.get("timeOffsets") and not ("time" in namespaces and namespaces["time"] is None):
        raise errors.InvalidArgument("linux.timeOffsets needs a new time namespace")
    lines = []
    for clock, offset in (linux.get("timeOffsets") or {}).items():
        if clock not in _CLOCKS or not isinstance(offset, dict):
            raise errors.InvalidArgument(f'linux.timeOffsets clock "{clock}" is not valid')
        try:
            secs, nanos = int(offset.get("secs", 0)), int(offset.get("nanosecs", 0))
        except (TypeError, ValueError):
            raise errors.InvalidArgument(f'linux.timeOffsets "{clock}" is not valid') from None
        lines.append(f"{_CLOCKS[clock]} {secs} {nanos}\n")
    return "".join(lines)


def process_config(process: dict, *, seccomp: tuple[bytes, int] | None = None
                   ) -> ProcessConfig:
    """seccomp: the container's filter as kade.runtime.seccomp.prepare made it."""
    args = tuple(str(a) for a in process.get("args") or ())
    if not args:
        raise errors.InvalidArgument("process.args must not be empty")
    cwd = process.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise errors.InvalidArgument(f'process.cwd "{cwd}" is not an absolute path')
    user = process.get("user") or {}
    umask = user.get("umask")
    _caps.check_names(process.get("capabilities") or {})
    _labels.check(process)
    return ProcessConfig(
        args=args, env=parse_env(process.get("env") or ()), cwd=cwd,
        uid=int(user.get("uid", 0)), gid=int(user.get("gid", 0)),
        additional_gids=tuple(int(g) for g in user.get("additionalGids") or ()),
        umask=0o022 if umask is None else int(umask),
        rlimits=tuple(parse_rlimit(r) for r in process.get("rlimits") or ()),
        no_new_privileges=bool(process.get("noNewPrivileges")),
        capabilities=process.get("capabilities"),
        seccomp=seccomp,
        oom_score_adj=process.get("oomScoreAdj"), terminal=bool(process.get("terminal")),
        console_size=_console_size(process.get("consoleSize")))


def _console_size(size: dict | None) -> tuple[int, int] | None:
    if not size or not (size.get("height") or size.get("width")):
        return None
    return int(size.get("height", 0)), int(size.get("width", 0))


def parse_env(env: Iterable[str]) -> dict[str, str]:
    """["K=V", ...] -> dict; a later entry wins, entries without "=" are dropped."""
    return dict(e.split("=", 1) for e in env if "=" in e)


def parse_rlimit(r: dict) -> tuple[int, int, int]:
    """One process.rlimits entry, clamped so that it never asks above the caller's hard
    limit (raising it could fail); the soft limit never exceeds the hard one."""
    name = r.get("type", "")
    if name not in _RLIMITS:
        raise errors.InvalidArgument(f'rlimit type "{name}" is not valid')
    which = _RLIMITS[name]
    hard = _lesser(_rlim(r.get("hard")), resource.getrlimit(which)[1])
    return which, _lesser(_rlim(r.get("soft")), hard), hard


def _rlim(value: object) -> int:
    number = int(value) if value is not None else -1    # type: ignore[call-overload]
    return _INFINITY if number < 0 or number >= 2**63 else number


def _lesser(a: int, b: int) -> int:
    if a == _INFINITY:
        return b
    return a if b == _INFINITY else min(a, b)


# -- the caller's side ------------------------------------------------------------

def fd_targets(stdio: tuple[int | None, int | None, int | None] | None,
               extra_fds: Iterable[int] = ()) -> dict[int, int]:
    """Which fd each of the child's fds 0, 1, 2, 3... is a copy of; missing ones inherit
    (with a console, the pty's slave replaces 0, 1 and 2 before exec)."""
    targets = {i: fd for i, fd in enumerate(stdio or ()) if fd is not None}
    targets.update((3 + i, fd) for i, fd in enumerate(extra_fds))
    return targets


def spawn_init(cfg: InitConfig, fifo_path: str, *, add_to_cgroup: Callable[[int], None],
               stdio: tuple | None = None, console_socket: int | None = None,
               extra_fds: Iterable[int] = (), sc: Syscalls | None = None,
               runtime_hooks: Callable[[int], None] | None = None) -> int:
    """Fork the container's init and return its pid once it is set up and waiting on
    the fifo; on any failure the child is killed and reaped before raising. With a
    console_socket, the init makes a pty in the container's devpts and sends its master
    there (runc's --console-socket protocol) before it reports ready. runtime_hooks(pid)
    runs the prestart and createRuntime hooks when cfg.runtime_hooks says the init
    will ask for them (after its mounts, before pivot_root)."""
    sc = sc or Syscalls()
    targets = fd_targets(stdio if console_socket is None else None, extra_fds)
    tramp = _tramp.fd()
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    transient = [go_r, err_w]          # the child's ends, and what only fork needs
    try:
        fifo = os.open(fifo_path, os.O_PATH | os.O_CLOEXEC)
        transient.append(fifo)
        pid_ns = _open_pid_namespace(cfg.namespaces)
        transient.append(pid_ns if pid_ns is not None and pid_ns >= 0 else -1)
        init_args = (sc, cfg, targets, go_r, err_w, fifo, tramp,
                     -1 if console_socket is None else console_socket)
        if "user" in cfg.namespaces:
            pid = _fork_in_user_namespace(sc, cfg, pid_ns, fifo, init_args)
        else:
            pid = fork_into(sc, pid_ns)
            if pid == 0:
                _child(_init_main, *init_args, False)
    except BaseException:
        _close(go_w, err_r)
        raise
    finally:
        _close(*transient)
    report = _handshake(pid, add_to_cgroup, go_w, err_r,
                        runtime_hooks if cfg.runtime_hooks else None)
    if report != READY:
        kill_and_reap(pid)
        report = report[len(READY):] if report.startswith(READY) else report
        if not report:
            raise errors.FailedPrecondition("the container's init exited during setup")
        _raise_reported(report)
    return pid


def spawn_exec(namespaces: dict[str, int], cfg: ProcessConfig, *,
               add_to_cgroup: Callable[[int], None], stdio: tuple | None = None,
               console_socket: int | None = None, sc: Syscalls | None = None) -> int:
    """Start a process in the namespaces of a running container (open_namespaces) and
    return its pid once it has exec'd; failures are raised after reaping it. A
    console_socket gets the master of a pty made in the container, as for spawn_init.

    A starter is forked in the caller's own pid namespace, where no container process
    can see it, is put in the container's cgroup, joins the other namespaces (so root
    and cwd are the container's), becomes the process the spec asks for and execs the
    trampoline, which clones the final process into the container's pid namespace as
    the caller's child. That process is visible to the container only from then on:
    in its cgroup, mount namespace and root, with its credentials, non-dumpable and
    running the sealed trampoline, never the host's Python.
    """
    sc = sc or Syscalls()
    targets = fd_targets(stdio if console_socket is None else None)
    tramp = _tramp.fd()
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    joins = tuple((name, flag) for name, flag in EXEC_NAMESPACES if name in namespaces)
    ns_fds = tuple(namespaces[name] for name, _ in joins) + (namespaces.get(ROOT, -1),)
    try:
        starter = os.fork()
        if starter == 0:
            _child(_exec_main, sc, cfg, targets, go_r, err_w, (joins, ns_fds), tramp,
                   -1 if console_socket is None else console_socket)
    except BaseException:
        _close(go_w, err_r)
        raise
    finally:
        _close(go_r, err_w)
    report = _handshake(starter, add_to_cgroup, go_w, err_r)
    os.waitpid(starter, 0)           # it has exited: the trampoline's clone closed err
    if not _tramp.is_records(report):
        if not report:
            raise errors.FailedPrecondition("the exec'd process exited during setup")
        _raise_reported(report)
    return _started(report, cfg.path or cfg.args[0], namespaces["pid"])


def _started(report: bytes, name: str, pid_ns: int) -> int:
    """The pid the trampoline reported, once it is known to be our child in the
    container's pid namespace (what a hijacked clone might write instead can only
    name processes the container could signal anyway); an exec failure is raised."""
    found: dict[int, int] = {}
    for tag, value in _tramp.records(report):
        found.setdefault(tag, value)
    pid = found.get(_tramp.TAG_PID, 0)
    if _tramp.TAG_CLONE in found or not pid:
        raise step_failed("start the process in the container",
                          OSError(found.get(_tramp.TAG_CLONE, 0), "no process"))
    if not _is_child_in(pid, pid_ns):
        raise errors.FailedPrecondition("the exec'd process could not be identified")
    failed = found.get(_tramp.TAG_EXEC, found.get(_tramp.TAG_TTY))
    if failed is None:
        return pid
    kill_and_reap(pid)
    if _tramp.TAG_EXEC in found:
        raise exec_error(name, OSError(failed, os.strerror(failed)))
    raise step_failed("make the console the controlling terminal",
                      OSError(failed, os.strerror(failed)))


def _is_child_in(pid: int, pid_ns: int) -> bool:
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        found = os.stat(f"/proc/{pid}/ns/pid")   # a zombie still has its pid namespace
    except OSError:
        return False
    ns = os.fstat(pid_ns)
    return (found.st_dev, found.st_ino) == (ns.st_dev, ns.st_ino)


def pid_inside(pid: int) -> int:
    """pid as the processes of its own (innermost) pid namespace see it."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return pid


def open_namespaces(pid: int) -> dict[str, int]:
    """fds of a process's namespaces, for spawn_exec; the caller closes them. A
    container sharing the caller's mount namespace is chrooted: its root comes too."""
    opened: dict[str, int] = {}
    try:
        for name, _ in EXEC_NAMESPACES:
            path = f"/proc/{pid}/ns/{name}"
            if name in _OPTIONAL_NAMESPACES and not _differs(path, f"/proc/self/ns/{name}"):
                continue
            opened[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        if not _differs(f"/proc/{pid}/ns/mnt", "/proc/self/ns/mnt"):
            opened[ROOT] = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except BaseException:
        _close(*opened.values())
        raise
    return opened


def _differs(path: str, ours: str) -> bool:
    """Whether two namespace files name different namespaces (False if path's is gone:
    the open that follows reports that)."""
    try:
        theirs = os.stat(path)
    except FileNotFoundError:
        return not path.endswith("/time")      # a kernel without time namespaces
    mine = os.stat(ours)
    return (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino)


def release(fifo_path: str, pidfd: int, command: Callable[[], str] = lambda: "") -> None:
    """start(): let the created init exec, and raise whatever its exec reported
    (command names what it ran, for the message; only asked on a failure).

    The fifo is renamed first, so of two concurrent starts exactly one proceeds.
    """
    claimed = fifo_path + ".starting"
    try:
        os.rename(fifo_path, claimed)
    except FileNotFoundError:
        raise errors.Conflict("the container is already started") from None
    fd = os.open(claimed, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)   # never blocks
    try:
        os.unlink(claimed)
        report = _await_exec(fd, pidfd)
    finally:
        os.close(fd)
    if report is None:
        raise errors.FailedPrecondition("the container's init exited before it was started")
    for tag, code in _tramp.records(report) if _tramp.is_records(report) else ():
        if tag == _tramp.TAG_EXEC:
            raise exec_error(command(), OSError(code, os.strerror(code)))
    if report:
        _raise_reported(report)


def _await_exec(fifo: int, pidfd: int) -> bytes | None:
    """Wait until the init has opened the fifo and then closed it (by exec-ing) or
    written an error into it. None: the init died without ever opening the fifo.

    A fifo read end reports POLLHUP only after a writer has come and gone, so poll
    does not wake early; the pidfd covers an init that dies before opening it.
    """
    poller = select.poll()
    poller.register(fifo, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    report = b""
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if fifo in ready:
            try:
                chunk = os.read(fifo, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                return report
            report += chunk
        elif pidfd in ready:
            return None


_own_pid_ns: list[int] = []


def fork_into(sc: Syscalls, pid_ns: int | None) -> int:
    """os.fork() with the child in a new pid namespace (NEW), in the one open as fd
    pid_ns, or in ours (None). In the parent, the calling thread's pid namespace for
    children is put back before returning, whatever happens."""
    if pid_ns is None:
        return os.fork()
    if not _own_pid_ns:
        _own_pid_ns.append(os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    try:
        if pid_ns == NEW:
            sc.unshare(L.CLONE_NEWPID)
        else:
            sc.setns(pid_ns, L.CLONE_NEWPID)
    except OSError as e:
        raise step_failed("enter the pid namespace", e) from None
    try:
        pid = os.fork()
    except BaseException:
        sc.setns(_own_pid_ns[0], L.CLONE_NEWPID)
        raise
    if pid:
        sc.setns(_own_pid_ns[0], L.CLONE_NEWPID)
    return pid


def _open_pid_namespace(namespaces: dict[str, str | None]) -> int | None:
    if "pid" not in namespaces:
        return None
    path = namespaces["pid"]
    if path is None:
        return NEW
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise step_failed(f'open pid namespace "{path}"', e) from None


def _handshake(pid: int, add_to_cgroup: Callable[[int], None], go: int, err: int,
               runtime_hooks: Callable[[int], None] | None = None) -> bytes:
    """Put the child in its cgroup, let it go on and return all it reported before its
    end of err closed (by exec-ing, or exiting); on failure it is killed and reaped.
    With runtime_hooks, an init that asks for them (HOOKS) waits on go until they ran."""
    try:
        add_to_cgroup(pid)
        _go(go)
        if runtime_hooks is not None:
            first = os.read(err, 1)
            if first != HOOKS:
                return first + _read_all(err) if first else b""
            runtime_hooks(pid)
            _go(go)
        _close(go)
        go = -1
        return _read_all(err)
    except BaseException:
        kill_and_reap(pid)
        raise
    finally:
        _close(go, err)


def _go(go: int) -> None:
    try:
        os.write(go, b"\1")
    except BrokenPipeError:
        pass                       # the child is gone; err says why, or nothing does


def _fork_in_user_namespace(sc: Syscalls, cfg: InitConfig, pid_ns: int | None, fifo: int,
                            init_args: tuple) -> int:
    """The init, born in the container's user namespace (and, if new, a pid namespace
    made inside it): its pid, our child.

    A pid namespace belongs to the user namespace its creator was in, and /proc can
    only be mounted by root of that one, so the user namespace comes first; a
    multithreaded caller cannot unshare one, and an empty pid namespace cannot be
    entered. So, as runc's nsexec does, a helper child joins the pid namespace given
    by path, makes (or joins) the user namespace, then the new pid namespace, waits
    while the caller writes the id maps (privileged: no setgroups "deny") and clones
    the init with CLONE_PARENT, so the caller is its parent; the helper then exits.
    The exec fifo goes to the container's user, as the host sees it.
    """
    path = cfg.namespaces["user"]
    joined = -1
    if path:
        try:
            joined = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise step_failed(f'open user namespace "{path}"', e) from None
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    try:
        helper = os.fork()
        if helper == 0:
            _close(ready_r, hold_w)        # or the helper would never see hold's EOF
            _child(_userns_helper, sc, cfg, pid_ns, joined, ready_w, hold_r, init_args)
        _close(ready_w, hold_r)
        ready_w = hold_r = -1
        try:
            if os.read(ready_r, 1) != READY:
                raise errors.FailedPrecondition("cannot create the user namespace")
            _adopt_user_namespace(cfg, helper, path is not None, fifo)
            os.write(hold_w, READY)
            pid = int.from_bytes(os.read(ready_r, 4), "little")
            if not pid:
                raise errors.FailedPrecondition("cannot start the init in the user namespace")
            return pid
        finally:
            os.waitpid(helper, 0)
    finally:
        _close(joined, ready_r, ready_w, hold_r, hold_w)


def _userns_helper(sc: Syscalls, cfg: InitConfig, pid_ns: int | None, joined: int,
                   ready: int, hold: int, init_args: tuple) -> None:
    try:
        if pid_ns is not None and pid_ns >= 0:
            sc.setns(pid_ns, L.CLONE_NEWPID)          # while we may: before the user ns
        if joined >= 0:
            sc.setns(joined, L.CLONE_NEWUSER)
        else:
            sc.unshare(L.CLONE_NEWUSER)
        if pid_ns == NEW:
            sc.unshare(L.CLONE_NEWPID)
        os.write(ready, READY)
        if os.read(hold, 1) != READY:
            os._exit(1)                                # the caller gave up
        pid = L.clone_parent()
    except OSError:
        os._exit(1)
    if pid == 0:
        _init_main(*init_args, True)
    os.write(ready, pid.to_bytes(4, "little"))
    os._exit(0)


def _adopt_user_namespace(cfg: InitConfig, helper: int, joined: bool, fifo: int) -> None:
    uid_map, gid_map = cfg.id_maps
    if not joined:
        for name, text in (("uid_map", uid_map), ("gid_map", gid_map)):
            with _Step(f"write the user namespace's {name}"):
                L.write_proc(f"/proc/{helper}/{name}", text)
    else:
        uid_map, gid_map = (L.read_proc(f"/proc/{helper}/{name}")
                            for name in ("uid_map", "gid_map"))
    uid, gid = map_id(uid_map, cfg.process.uid), map_id(gid_map, cfg.process.gid)
    if uid is None or gid is None:
        raise errors.InvalidArgument(f"user {cfg.process.uid}:{cfg.process.gid} is not mapped "
                                     "in the container's user namespace")
    with _Step("hand the exec fifo to the container's user"):
        os.chown(f"/proc/self/fd/{fifo}", uid, gid)


def _raise_reported(report: bytes) -> NoReturn:
    kind, _, message = report.decode(errors="replace").partition("\n")
    raise _BY_NAME.get(kind, errors.KadeError)(message)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def kill_and_reap(pid: int) -> None:
    """Only for our own unreaped child, whose pid therefore cannot have been reused."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


# -- the child's side: only system calls from here on ----------------------------

def _child(main: Callable[..., None], *args: object) -> NoReturn:
    gc.disable()         # a collection would touch, and so copy, every page of the caller
    try:
        main(*args)
    finally:
        os._exit(1)      # main reports its own failures; nothing may return to the caller


def _init_main(sc: Syscalls, cfg: InitConfig, targets: dict[int, int], go: int, err: int,
               fifo: int, tramp: int, console: int, in_userns: bool) -> NoReturn:
    _nondumpable(sc)
    go, err, fifo, tramp, *rest = _arrange_fds(targets, (go, err, fifo, tramp, *_given(console)))
    console = rest[0] if rest else -1
    try:
        if in_userns:
            _become_namespace_root()
        _set_oom_score_adj(cfg.process.oom_score_adj)
        # every namespace but the cgroup one while the caller makes our cgroup (a new
        # network namespace alone takes ~0.5 ms); a cgroup namespace is rooted where
        # its creator is, so it waits until the caller has put us in our cgroup
        cgroup_ns = {k: v for k, v in cfg.namespaces.items() if k == "cgroup"}
        enter_namespaces(sc, {k: v for k, v in cfg.namespaces.items() if k != "cgroup"},
                         time_offsets=cfg.time_offsets)
        _await_go(go, keep=cfg.runtime_hooks)
        enter_namespaces(sc, cgroup_ns)
        _new_session()
        os.umask(0)                                 # device and directory modes as given
        rootfs.prepare(sc, cfg.rootfs, before_pivot=lambda: _create_hooks(cfg, go, err))
        if console >= 0:  # in the container's devpts, as runc does: `tty` is /dev/pts/0
            _make_console(sc, console, cfg.process.console_size, init=True)
        _set_names(sc, cfg.hostname, cfg.domainname)
        _write_sysctls(sc, cfg.sysctl)
        rootfs.finish(sc, cfg.rootfs)
        _change_cwd(cfg.process.cwd, create=True)   # as root, like docker's WorkingDir
        if cfg.process.uid:         # the trampoline opens it with the user's credentials
            with _Step("hand the exec fifo to the container's user"):
                os.chown(f"/proc/self/fd/{fifo}", cfg.process.uid, -1)
        _become(sc, cfg.process)
        path = lookup(cfg.process.args[0], cfg.process.env.get("PATH"))
        os.write(err, READY)
    except BaseException as exc:  # noqa: BLE001 - the child must report, never unwind
        _report(err, exc)
        os._exit(1)
    # the trampoline blocks opening the fifo for writing until start() opens it for
    # reading (/proc is the container's now), then execs; err closes as it starts
    _exec(cfg.process, path, err, tramp, _tramp.FIFO, fifo, f"/proc/self/fd/{fifo}")


def _exec_main(sc: Syscalls, cfg: ProcessConfig, targets: dict[int, int], go: int, err: int,
               namespaces: tuple[tuple[tuple[str, int], ...], tuple[int, ...]], tramp: int,
               console: int) -> NoReturn:
    """The starter of spawn_exec: outside the container's pid namespace until the
    trampoline it execs clones the final process (which makes its own session and,
    with a console, takes it as its controlling terminal). Once in the container's
    mount namespace, /proc/self does not name it: that /proc is of the container's
    pid namespace."""
    _nondumpable(sc)
    joins, ns_fds = namespaces
    internal = (go, err, tramp, *(fd for fd in ns_fds if fd >= 0), *_given(console))
    go, err, tramp, *rest = _arrange_fds(targets, internal)
    console = rest.pop() if console >= 0 else -1
    root = rest.pop() if ns_fds[-1] >= 0 else -1
    try:
        _await_go(go)
        _set_oom_score_adj(cfg.oom_score_adj)    # while /proc/self is still ours
        for (name, flag), fd in zip(joins, rest, strict=True):
            with _Step(f"join the container's {name} namespace"):
                sc.setns(fd, flag)
            os.close(fd)
        if root >= 0:                  # the container chroots in the caller's mount ns
            with _Step("enter the container's root"):
                os.fchdir(root)
                sc.chroot(".")
            os.close(root)
        if console >= 0:
            _make_console(sc, console, cfg.console_size, init=False)
        _change_cwd(cfg.cwd, create=False)
        _become(sc, cfg)
        path = lookup(cfg.path or cfg.args[0], cfg.env.get("PATH"))
    except BaseException as exc:  # noqa: BLE001 - the child must report, never unwind
        _report(err, exc)
        os._exit(1)
    _exec(cfg, path, err, tramp, _tramp.EXEC_TTY if console >= 0 else _tramp.EXEC, err, "")


class _Step:
    """Turns an unexpected failure inside it into a one-line error naming the step."""
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, errors.KadeError):
            raise step_failed(self.what, exc) from None


def _arrange_fds(targets: dict[int, int], internal: tuple[int, ...]) -> list[int]:
    """Put each target in place, keep the internal fds (close-on-exec, renumbered above
    every target) and close everything else; returns the internal fds' new numbers."""
    floor = max([2, *targets]) + 1
    staged = {dst: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, floor) for dst, src in targets.items()}
    kept = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in internal]
    for dst, src in staged.items():
        os.dup2(src, dst)
    low = floor
    for fd in sorted(kept):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAX_FD)
    return kept


def _await_go(go: int, keep: bool = False) -> None:
    """Wait for the caller to have put us in the cgroup, then drop the caller's signal
    setup: its handlers (and wakeup fd) mean nothing here, and ignored signals and the
    signal mask would survive execve. keep: go is read again (_create_hooks)."""
    if not os.read(go, 1):
        os._exit(1)                 # the caller gave up on us
    if not keep:
        os.close(go)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    L.reset_signal_dispositions()


def _create_hooks(cfg: InitConfig, go: int, err: int) -> None:
    """After the mounts, before pivot_root (runc's moment): the caller runs prestart
    and createRuntime hooks while we wait, then we run createContainer ones here, in
    the container's namespaces with the rootfs as their cwd."""
    if cfg.runtime_hooks:
        os.write(err, HOOKS)
        if not os.read(go, 1):
            os._exit(1)             # a hook failed: the caller kills us anyway
        os.close(go)
    if cfg.container_hooks is not None:
        os.chdir(cfg.rootfs.root)
        cfg.container_hooks()


def _become_namespace_root() -> None:
    """Become root of the container's user namespace, so what setup creates belongs to
    the mapped root (root outside, unmapped there, could create nothing)."""
    with _Step("become root of the user namespace"):
        try:
            os.setgroups([])
        except PermissionError:
            pass                    # setgroups is "deny" in a joined namespace
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)


def enter_namespaces(sc: Syscalls, namespaces: dict[str, str | None],
                     time_offsets: str = "") -> None:
    """Join the namespaces given by path, then unshare the others in one call. The pid
    and user namespaces are not here: the caller's business before fork. A new time
    namespace takes its offsets before anything enters it (at the trampoline's exec)."""
    joins = [(kind, path) for kind, path in namespaces.items()
             if path and kind not in ("pid", "user")]
    opened = []
    for kind, path in joins:        # all opened first: a joined namespace may hide the path
        with _Step(f'open {kind} namespace "{path}"'):
            opened.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    for kind, fd in sorted(opened, key=lambda item: item[0] == "mount"):
        with _Step(f"join the {kind} namespace"):
            sc.setns(fd, NAMESPACE_FLAGS[kind])
        os.close(fd)
    flags = 0
    for kind, where in namespaces.items():
        if where is None and kind not in ("pid", "user"):
            flags |= NAMESPACE_FLAGS[kind]
    if flags:
        with _Step("create namespaces"):
            sc.unshare(flags)
    if time_offsets:
        with _Step("set the time namespace's offsets"):
            sc.write_file("/proc/self/timens_offsets", time_offsets)


def _new_session() -> None:
    with _Step("create a session"):
        os.setsid()


def _given(fd: int) -> tuple[int, ...]:
    return (fd,) if fd >= 0 else ()


def _make_console(sc: Syscalls, sock: int, size: tuple[int, int] | None, init: bool) -> None:
    """A pty from the container's own devpts (after pivot_root, or setns into its mount
    namespace): its slave becomes fds 0-2 and, for an init, /dev/console and the
    controlling terminal (an exec'd process's trampoline takes it after its setsid);
    its master goes to the caller over sock (SCM_RIGHTS, the slave's name as the
    payload), as runc's --console-socket does."""
    with _Step("make the console in the container's /dev/pts"):
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, L.TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, L.TIOCGPTN, b"\0" * 4))[0]
        name = f"/dev/pts/{number}"
        slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if size:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    if init:
        rootfs.bind_console(sc, "/", name)
    with _Step("make the console the controlling terminal"):
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(slave)
        if init:
            fcntl.ioctl(0, L.TIOCSCTTY, 0)
    with _Step("send the console to the caller"):
        conn = _socket.socket(fileno=sock)
        try:
            conn.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                             struct.pack("i", master))])
        finally:
            conn.close()
            os.close(master)


def _set_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    with _Step(f"set oom_score_adj to {value}"):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)


def _set_names(sc: Syscalls, hostname: str | None, domainname: str | None) -> None:
    if hostname:
        with _Step(f'set hostname "{hostname}"'):
            sc.sethostname(hostname)
    if domainname:
        with _Step(f'set domainname "{domainname}"'):
            sc.setdomainname(domainname)


def _write_sysctls(sc: Syscalls, sysctl: tuple[tuple[str, str], ...]) -> None:
    for key, value in sysctl:
        with _Step(f'write sysctl "{key}"'):
            sc.write_file("/proc/sys/" + key.replace(".", "/"), value)


def _change_cwd(cwd: str, *, create: bool) -> None:
    with _Step(f'change to cwd "{cwd}"'):
        try:
            os.chdir(cwd)
        except FileNotFoundError:
            if not create:
                raise
            os.makedirs(cwd, 0o755, exist_ok=True)
            os.chdir(cwd)


def _become(sc: Syscalls, p: ProcessConfig) -> None:
    """Limits, signals, user, no_new_privs and capabilities, in the order that works.

    Installing a seccomp filter needs CAP_SYS_ADMIN or no_new_privs: without the
    latter, it goes in here, before the capabilities are dropped (runc does the
    same); with it, it goes in last, right before execve (see _exec).
    """
    with _Step("set rlimits"):
        for which, soft, hard in p.rlimits:
            resource.setrlimit(which, (soft, hard))
    if p.seccomp and not p.no_new_privileges:
        _install_seccomp(p.seccomp)
    os.umask(p.umask)
    with _Step(f"switch to user {p.uid}:{p.gid}"):
        _caps.set_user(p.uid, p.gid, p.additional_gids)
    if p.no_new_privileges:
        with _Step("set no_new_privs"):
            sc.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    if p.capabilities is not None:
        with _Step("apply capabilities"):
            _caps.apply(p.capabilities)
    _nondumpable(sc)        # a new uid or fewer caps reset it to fs.suid_dumpable


def _nondumpable(sc: Syscalls) -> None:
    """Until exec, no process of the container may ptrace us or open our /proc files
    (fds, memory, exe) without CAP_SYS_PTRACE: runc does the same."""
    with _Step("make the process non-dumpable"):
        sc.prctl(L.PR_SET_DUMPABLE, 0)


def _install_seccomp(prepared: tuple[bytes, int]) -> None:
    with _Step("install the seccomp filter"):
        _seccomp.install_bpf(*prepared)


def lookup(name: str, path_env: str | None) -> str:
    """args[0] -> the file to execve, the way runc (Go's exec.LookPath) finds it."""
    if "/" in name:
        _check_executable(name)
        return name
    for directory in path_env.split(":") if path_env else ():
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise errors.CommandNotFound(f'exec: "{name}": executable file not found in $PATH')


def _check_executable(name: str) -> None:
    try:
        st = os.stat(name)
    except OSError as e:
        raise _exec_error_class(e.errno)(f'exec: "{name}": stat {name}: {describe(e)}') from None
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        raise errors.CommandNotInvocable(f'exec: "{name}": permission denied')


def exec_error(name: str, err: OSError) -> errors.KadeError:
    """What a failed execve of name means to the user (docker: 127 or 126)."""
    return _exec_error_class(err.errno)(f'exec: "{name}": {describe(err)}')


def _exec_error_class(code: int | None) -> type[errors.KadeError]:
    if code in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        return errors.CommandNotFound
    if code in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
        return errors.CommandNotInvocable
    return errors.FailedPrecondition


def _exec(p: ProcessConfig, path: str, err: int, tramp: int, mode: str, handed: int,
          fifo: str) -> NoReturn:
    """Exec the trampoline (kade.runtime.trampoline), handing it fd handed to report
    into; only a failure to do so comes back here, and goes to err."""
    error: BaseException
    try:
        if p.seccomp and p.no_new_privileges:
            _install_seccomp(p.seccomp)
        os.set_inheritable(handed, True)
        os.execve(tramp, _tramp.argv(mode, handed, fifo, path, p.args), p.env)
    except OSError as exc:
        error = step_failed("exec kade's trampoline", exc)
    except BaseException as exc:  # noqa: BLE001 - the child must report, never unwind
        error = exc
    _report(err, error)
    os._exit(1)


def _report(fd: int, exc: BaseException) -> None:
    """Tell the caller why we stopped: b"<ErrorClass>\\n<message>", in one write."""
    if isinstance(exc, errors.KadeError):
        kind = next(cls.__name__ for cls in _REPORTABLE if isinstance(exc, cls))
        message = str(exc)
    else:
        kind, message = "KadeError", f"container init failed: {type(exc).__name__}: {exc}"
    try:
        os.write(fd, f"{kind}\n{message}".encode()[:select.PIPE_BUF])
    except OSError:
        pass
