"""Kade's OCI runtime: a runtime-spec bundle in, an isolated process out.

    rt = Runtime("/var/lib/kade/runtime")
    pid = rt.create("web", "/path/to/bundle", stdio=(0, 1, 2))  # set up, blocked before exec
    rt.start("web")                                              # now it execs
    _, status = os.waitpid(pid, 0)                               # the caller is its parent
    rt.delete("web")

Lifecycle (runtime-spec runtime.md): creating -> created -> running -> stopped, with
paused beside running. create() and start() may come from different processes: all
that links them is the state directory (see kade.runtime.state). The process model
and the create/start handshake are described in kade.runtime.process.

The runtime consumes `kade.oci.mount.Mount` values for the rootfs and never looks at
images. Cgroups, capabilities and seccomp are delegated to kade.runtime.cgroups, caps
and seccomp; the spec's hooks to kade.runtime.hooks (which says when each kind runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence

from kade import errors
from kade.oci.mount import Mount
from kade.runtime import process as _proc
from kade.runtime.cgroups import Cgroup, open_cgroup
from kade.runtime.linux import Syscalls
from kade.runtime.state import (
    OCI_VERSION,
    Record,
    StateDir,
    process_start_time,
    status,
    write_pid_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

__all__ = ["Runtime", "load_spec"]

_KILL_TIMEOUT_MS = 10_000
HOOKS_FILE = "hooks.json"
HOST_MOUNTS = "host-mounts"


def load_spec(bundle: str) -> dict:
    """The bundle's config.json."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise errors.NotFound(f'bundle "{bundle}" has no config.json') from None
    except ValueError as e:
        raise errors.InvalidArgument(f'"{path}" is not valid JSON: {e}') from None


# under the state root, named so that it can never be a container id (ids begin with
# a letter or digit): compiled seccomp filters, one file per profile (runtime.seccomp)
SECCOMP_CACHE = ".seccomp"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Runtime:
    def __init__(self, state_root: str, seccomp_cache: str | None = None,
                 warn: Callable[[str], None] = _warn) -> None:
        """seccomp_cache: where compiled filters are kept (<state_root>/.seccomp);
        warn: where a failed poststart or poststop hook is reported."""
        self.state_root = state_root
        self.seccomp_cache = seccomp_cache or os.path.join(state_root, SECCOMP_CACHE)
        self.warn = warn
        self._sc = Syscalls()

    # -- lifecycle -------------------------------------------------------------

    def create(self, id: str, bundle: str, *, spec: dict | None = None,
               stdio: tuple[int | None, int | None, int | None] | None = None,
               rootfs_mounts: Sequence[Mount] = (), pid_file: str | None = None,
               console_socket: int | None = None, extra_fds: Iterable[int] = ()) -> int:
        """Set up the container and return its init's pid, blocked right before exec.

        The caller is the init's parent and reaps it. rootfs_mounts are mounted at
        root.path inside the container's mount namespace. With console_socket (a
        connected unix socket), the init makes its pty in the container's devpts and
        sends the master there before this returns (runc's protocol; receive_console).
        On failure nothing is left: no process, cgroup or state directory.
        """
        bundle = os.path.abspath(bundle)
        spec = load_spec(bundle) if spec is None else spec
        linux = spec.get("linux") or {}
        cfg = _proc.init_config(spec, bundle, rootfs_mounts, console=console_socket is not None,
                                seccomp_cache=self.seccomp_cache)
        sd = StateDir(self.state_root, id)
        cgroups_path = linux.get("cgroupsPath") or f"/kade/{id}"
        cgroup = open_cgroup(cgroups_path)
        version = spec.get("ociVersion") or OCI_VERSION
        annotations = dict(spec.get("annotations") or {})
        found_hooks = _proc.parse_hooks(spec)
        if found_hooks.get("createContainer"):
            cfg = cfg._replace(container_hooks=_container_hooks(
                found_hooks["createContainer"], version, id, bundle, annotations))
        mounted_before = None if cfg.rootfs.mount_ns else _mounts_at(cfg.rootfs.root)
        sd.claim()
        pid = 0

        def runtime_hooks(child: int) -> None:
            from kade.runtime import hooks
            # prestart (deprecated) sees "created", as crun shows it and runtime-tools'
            # hooks_stdin checks; createRuntime runs while the runtime is still creating
            hooks.run_all("prestart", found_hooks["prestart"],
                          hooks.state(version, id, "created", child, bundle, annotations))
            hooks.run_all("createRuntime", found_hooks["createRuntime"],
                          hooks.state(version, id, "creating", child, bundle, annotations))

        def join_cgroup(child: int) -> None:
            # made while the child is still coming out of fork: the two overlap
            cgroup.create(linux.get("resources") or {})
            cgroup.add(child)

        try:
            pid = _proc.spawn_init(cfg, sd.fifo, add_to_cgroup=join_cgroup, stdio=stdio,
                                   console_socket=console_socket, extra_fds=extra_fds,
                                   sc=self._sc, runtime_hooks=runtime_hooks)
            if cfg.process.seccomp:
                sd.save_seccomp(cfg.process.seccomp)
            if found_hooks:
                sd.write(HOOKS_FILE, json.dumps({"hooks": spec["hooks"],
                                                 "process": spec["process"]}).encode())
            if mounted_before is not None:
                added = [i for i in _mounts_at(cfg.rootfs.root) if i not in mounted_before]
                sd.write(HOST_MOUNTS, json.dumps([cfg.rootfs.root, added]).encode())
            sd.save(Record(
                id=id, bundle=bundle, pid=pid, pid_start=process_start_time(pid) or 0,
                cgroups_path=cgroups_path, created=_now(), rootfs=cfg.rootfs.root,
                oci_version=version, annotations=annotations))
            if pid_file:
                write_pid_file(pid_file, pid)
        except BaseException:
            _abandon(sd, cgroup, pid)
            if mounted_before is not None:
                _unmount_added(cfg.rootfs.root, mounted_before, None)
            if found_hooks.get("poststop"):      # runtime.md: destroyed, then poststop
                self._poststop(found_hooks["poststop"], version, id, bundle, annotations)
            raise
        return pid

    def start(self, id: str) -> None:
        """Let a created container's init exec; raises its exec error, if any. Its
        startContainer hooks run first, in the container; a failure kills it."""
        sd, rec = self._load(id)
        current = self._status(sd, rec)
        if current != "created":
            raise errors.Conflict(f'cannot start container "{id}": it is {current}')
        stored = _stored_hooks(sd)
        pidfd = self._pidfd(rec)
        try:
            if stored and stored[0]["startContainer"]:
                try:
                    self._start_hooks(sd, rec, *stored)
                except BaseException:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    raise
            _proc.release(sd.fifo, pidfd, command=lambda: _command(rec.bundle))
        finally:
            os.close(pidfd)
        if stored and stored[0]["poststart"]:
            from kade.runtime import hooks
            hooks.run_warning("poststart", stored[0]["poststart"],
                              hooks.state(rec.oci_version, id, "running", rec.pid, rec.bundle,
                                          rec.annotations), self.warn)

    def _start_hooks(self, sd: StateDir, rec: Record, found: dict, process: dict) -> None:
        """startContainer hooks: each exec'd into the created container like `exec`
        (its namespaces, root, cgroup, user and seccomp filter), so the hook's path
        resolves in the container and no host binary or descriptor gets in."""
        from kade.runtime import hooks
        state = hooks.state(rec.oci_version, rec.id, "created", _proc.pid_inside(rec.pid),
                            rec.bundle, rec.annotations)
        base = _proc.process_config({**process, "terminal": False},
                                    seccomp=sd.load_seccomp())
        for i, hook in enumerate(found["startContainer"]):
            env = base.env if hook.env is None else _proc.parse_env(hook.env)
            cfg = base._replace(args=hook.args, env=env, path=hook.path)
            hooks.run_spawned("startContainer", i, hook, state,
                              lambda stdio, cfg=cfg: self._spawn_in(rec, cfg, stdio))

    def state(self, id: str) -> dict:
        sd = StateDir(self.state_root, id)
        rec = sd.load()
        if rec is None:
            return {"ociVersion": OCI_VERSION, "id": id, "status": "creating", "pid": 0,
                    "bundle": "", "annotations": {}}
        return rec.oci_state(self._status(sd, rec))

    def kill(self, id: str, sig: int = signal.SIGTERM, all: bool = False) -> None:
        sd, rec = self._load(id)
        if self._status(sd, rec) == "stopped":
            raise errors.Conflict(f'container "{id}" is not running')
        if all:
            open_cgroup(rec.cgroups_path).kill_all(sig)
            return
        pidfd = self._pidfd(rec)
        try:
            signal.pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)

    def oom_killed(self, id: str) -> bool:
        """Whether the kernel's OOM killer killed a process of the container: ask
        once its init has exited and before delete() removes the cgroup."""
        _, rec = self._load(id)
        try:
            return open_cgroup(rec.cgroups_path).oom_killed()
        except OSError:
            return False  # the cgroup is gone: nothing left to tell

    def delete(self, id: str, force: bool = False) -> None:
        """Remove a stopped (or never started) container; force kills a running one."""
        sd = StateDir(self.state_root, id)
        rec = sd.load()
        if rec is None:
            if not force:
                raise errors.Conflict(f'container "{id}" is still being created')
            sd.remove()
            return
        current = self._status(sd, rec)
        if current in ("running", "paused") and not force:
            raise errors.Conflict(f'cannot delete container "{id}" that is {current}: '
                                  "stop it first or force the deletion")
        cgroup = open_cgroup(rec.cgroups_path)
        if current != "stopped":
            self._kill_and_wait(rec, cgroup)
        stored = _stored_hooks(sd)
        cgroup.destroy()
        mounted = sd.read(HOST_MOUNTS)
        if mounted:
            root, added = json.loads(mounted)
            _unmount_added(root, (), added)
        sd.remove()
        if stored and stored[0]["poststop"]:
            self._poststop(stored[0]["poststop"], rec.oci_version, id, rec.bundle,
                           rec.annotations)

    def _poststop(self, found: tuple, version: str, id: str, bundle: str,
                  annotations: dict[str, str]) -> None:
        from kade.runtime import hooks
        hooks.run_warning("poststop", found,
                          hooks.state(version, id, "stopped", 0, bundle, annotations), self.warn)

    def pause(self, id: str) -> None:
        sd, rec = self._load(id)
        current = self._status(sd, rec)
        if current != "running":
            raise errors.Conflict(f'cannot pause container "{id}": it is {current}')
        open_cgroup(rec.cgroups_path).freeze()

    def resume(self, id: str) -> None:
        sd, rec = self._load(id)
        current = self._status(sd, rec)
        if current != "paused":
            raise errors.Conflict(f'cannot resume container "{id}": it is {current}')
        open_cgroup(rec.cgroups_path).thaw()

    def exec(self, id: str, process: dict, *,
             stdio: tuple[int | None, int | None, int | None] | None = None,
             console_socket: int | None = None, detach: bool = False) -> int:
        """Run a runtime-spec process object inside a running container; returns its pid.

        The caller is its parent and reaps it, detached or not; detach only gives it
        /dev/null for stdio when none is given (it always gets its own session).
        """
        sd, rec = self._load(id)
        current = self._status(sd, rec)
        if current not in ("running", "created"):
            raise errors.Conflict(f'cannot exec in container "{id}": it is {current}')
        cfg = _proc.process_config(process, seccomp=sd.load_seccomp())
        if cfg.terminal and console_socket is None:
            raise errors.InvalidArgument("process.terminal is set but no console was given")
        devnull = -1
        try:
            if detach and stdio is None and console_socket is None:
                devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                stdio = (devnull, devnull, devnull)
            return self._spawn_in(rec, cfg, stdio, console_socket)
        finally:
            if devnull >= 0:
                os.close(devnull)

    def _spawn_in(self, rec: Record, cfg: _proc.ProcessConfig,
                  stdio: tuple[int | None, int | None, int | None] | None,
                  console_socket: int | None = None) -> int:
        """Start cfg in the container's namespaces and cgroup: its pid (our child)."""
        try:
            namespaces = _proc.open_namespaces(rec.pid)
        except FileNotFoundError:
            raise errors.Conflict(f'container "{rec.id}" is not running') from None
        try:
            # checked after opening: if the init is still the same process now, it
            # already was when its namespaces were opened
            if process_start_time(rec.pid) != rec.pid_start:
                raise errors.Conflict(f'container "{rec.id}" is not running')
            add = open_cgroup(rec.cgroups_path).add
            return _proc.spawn_exec(namespaces, cfg, add_to_cgroup=add, stdio=stdio,
                                    console_socket=console_socket, sc=self._sc)
        finally:
            for fd in namespaces.values():
                os.close(fd)

    def list(self) -> list[dict]:
        try:
            names = sorted(os.listdir(self.state_root))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            try:
                found.append(self.state(name))
            except (errors.NotFound, errors.InvalidArgument):
                continue
        return found

    # -- internals -------------------------------------------------------------

    def _load(self, id: str) -> tuple[StateDir, Record]:
        sd = StateDir(self.state_root, id)
        rec = sd.load()
        if rec is None:
            raise errors.Conflict(f'container "{id}" is still being created')
        return sd, rec

    def _status(self, sd: StateDir, rec: Record) -> str:
        return status(rec, has_fifo=sd.has_fifo(), frozen=lambda: _is_frozen(rec))

    def _pidfd(self, rec: Record) -> int:
        """A pidfd for the init, checked to be the very process create() started."""
        try:
            pidfd = os.pidfd_open(rec.pid)
        except ProcessLookupError:
            raise errors.Conflict(f'container "{rec.id}" is not running') from None
        if process_start_time(rec.pid) != rec.pid_start:
            os.close(pidfd)
            raise errors.Conflict(f'container "{rec.id}" is not running')
        return pidfd

    def _kill_and_wait(self, rec: Record, cgroup: Cgroup) -> None:
        try:
            pidfd = self._pidfd(rec)
        except errors.Conflict:
            return
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            cgroup.kill_all(signal.SIGKILL)          # thaws a frozen cgroup, too
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(_KILL_TIMEOUT_MS):
                raise errors.Unavailable(f'container "{rec.id}" did not die after SIGKILL')
        finally:
            os.close(pidfd)


def _is_frozen(rec: Record) -> bool:
    try:
        return open_cgroup(rec.cgroups_path).is_frozen()
    except (OSError, errors.KadeError):      # already gone, or no freezer on this host
        return False


def _abandon(sd: StateDir, cgroup: Cgroup, pid: int) -> None:
    """Undo a create() that failed part way: kill the init, drop cgroup and state."""
    if pid:
        _proc.kill_and_reap(pid)
    with contextlib.suppress(errors.KadeError, OSError):   # report the first error
        cgroup.destroy()                                   # (a missing one is fine)
    sd.remove()


def _container_hooks(found: tuple, version: str, id: str, bundle: str,
                     annotations: dict[str, str]) -> Callable[[], None]:
    """What the init calls to run the createContainer hooks (kade.runtime.hooks is
    imported here, in the caller: the init imports nothing). The pid in their state
    is the init's own, as the container sees it."""
    from kade.runtime import hooks

    def run() -> None:
        hooks.run_all("createContainer", found,
                      hooks.state(version, id, "creating", os.getpid(), bundle, annotations))
    return run


def _stored_hooks(sd: StateDir) -> tuple[dict, dict] | None:
    """(kind -> hooks, the spec's process) as create() kept them, if the spec had any."""
    data = sd.read(HOOKS_FILE)
    if not data:
        return None
    from kade.runtime import hooks
    stored = json.loads(data)
    return hooks.parse(stored), stored["process"]


def _mounts_at(path: str) -> list[int]:
    """Ids of the mounts on path in our mount namespace, bottom first."""
    from kade.runtime.rootfs import _unescape
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if _unescape(fields[4]) == path:
                found.append(int(fields[0]))
    return found


def _unmount_added(root: str, before: Iterable[int], added: Iterable[int] | None) -> None:
    """Undo what a container without a mount namespace mounted at its rootfs in ours:
    the mounts added (or, with None, every one not there before), subtrees and all."""
    keep = set(before)
    ours = set(added) if added is not None else None
    for _ in range(64):
        top = _mounts_at(root)
        mine = [i for i in top if i not in keep and (ours is None or i in ours)]
        if not mine:
            return
        try:
            Syscalls().umount2(root, 2)       # MNT_DETACH: the top one and its subtree
        except OSError:
            return


def _command(bundle: str) -> str:
    """args[0] of a created container's process, for an exec error's message."""
    try:
        return str(load_spec(bundle)["process"]["args"][0])
    except (errors.KadeError, KeyError, IndexError, TypeError):
        return ""


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def console_pair() -> tuple[_socket.socket, int]:
    """(our end, the fd to pass as console_socket): a connected unix socket pair. Close
    the fd once create() or exec() returned; read the pty with receive_console."""
    import _socket
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return ours, theirs.detach()


def receive_console(sock) -> tuple[int, str]:
    """The pty master a container's init or exec sent (SCM_RIGHTS) and its slave's name
    inside the container; closes sock."""
    import _socket
    import struct
    try:
        data, ancillary, _, _ = sock.recvmsg(256, _socket.CMSG_SPACE(4),
                                             _socket.MSG_CMSG_CLOEXEC)
    finally:
        sock.close()
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(payload) >= 4:
            fd = struct.unpack("i", payload[:4])[0]
            return fd, data.decode(errors="replace")
    raise errors.KadeError("the container sent no console")
