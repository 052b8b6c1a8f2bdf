"""`exec`: a process joining a running container, with the container's confinement."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from kade.errors import Conflict


@dataclass
class ExecRequest:
    argv: list[str]
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    privileged: bool = False
    tty: bool = False
    interactive: bool = False
    detach: bool = False


def process_for(engine, cid: str, req: ExecRequest) -> dict:
    """The container's own process spec, with the exec's overrides."""
    from kade.engine import records, users
    from kade.oci import defaults
    from kade.snapshots import read_file
    with open(os.path.join(engine.containers.bundle(cid), "config.json")) as f:
        base = json.load(f)["process"]
    proc = dict(base, args=list(req.argv), terminal=req.tty)
    records.check_env(req.env)
    proc["env"] = records.merge_env(base["env"], ["TERM=xterm"] * req.tty + req.env)  # docker's -t
    if req.workdir:
        proc["cwd"] = req.workdir
    if req.user is not None:
        snaps = engine.snapshots
        uid, gid, extra = users.resolve(req.user, read_file(snaps, cid, "/etc/passwd"),
                                        read_file(snaps, cid, "/etc/group"))
        proc["user"] = {"uid": uid, "gid": gid, "additionalGids": extra}
    if req.privileged:
        proc["capabilities"] = defaults.capabilities_spec(defaults.ALL_CAPS)
    return proc


def run(engine, cid: str, req: ExecRequest, stdio: tuple[int, int, int] = (0, 1, 2),
        size: tuple[int, int] | None = None, on_start=None) -> int:
    """Run the exec to its end (or start it, detached); its exit code.

    The process gets pipes (or a pty of its own), never the caller's fds (`stdio`:
    this process's by default, the API's pipes): see kade.util.pipes. Detached, it
    gets /dev/null, as docker discards its output. `size` (rows, columns) is its
    terminal's; `on_start(pid, pty master or -1)` runs once the process exists."""
    state = engine.containers.state(cid)
    if not state["Running"]:
        raise Conflict(f"container {cid} is not running")
    if state["Paused"]:
        raise Conflict(f"container {cid} is paused, unpause the container before exec")
    proc = process_for(engine, cid, req)
    engine.emit("container", f"exec_start: {' '.join(req.argv)}", cid)
    from kade.engine.lifecycle import external_runtime
    runtime = external_runtime(engine.containers.get(cid)[0])
    if runtime:
        return _run_external(engine, runtime, cid, proc, req)
    if req.tty:
        return _run_tty(engine, cid, proc, req, stdio, size, on_start)

    def spawn(child: tuple[int, int, int]) -> int:
        pid = engine.runtime.exec(cid, proc, stdio=child)
        if on_start is not None:
            on_start(pid, -1)
        return pid

    if req.detach:
        _with_devnull(spawn)
        return 0
    return _piped(spawn, req.interactive, stdio=stdio)


def _run_external(engine, runtime: str, cid: str, proc: dict, req: ExecRequest) -> int:
    """runc's exec hands its stdio to the process when detached, and else copies it
    through pipes until the process and all that holds its output have ended: it
    gets pipes of ours, and we watch the process itself (its pid file) to stop the
    input at its exit. With -t it makes a pty in the container and copies our stdio."""
    from kade.engine import external
    pid_file = os.path.join(engine.containers.bundle(cid), f"exec-{os.getpid()}.pid")
    argv = external.exec_argv(engine, runtime, cid, proc, req.tty, req.detach,
                              None if req.detach or req.tty else pid_file)

    def spawn(stdio: tuple[int, int, int]) -> int:
        return _spawn_argv(argv, stdio)

    if req.detach:  # runc returns once the process has started
        return _exit_code(_with_devnull(spawn))
    if not req.tty:
        _unlink(pid_file)  # a stale one of a process that had our pid
        try:
            return _piped(spawn, req.interactive, lambda runc: _runc_process(pid_file, runc))
        finally:
            _unlink(pid_file)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = spawn((0 if req.interactive else null, 1, 2))
    finally:
        os.close(null)
    return _exit_code(pid)


def _runc_process(pid_file: str, runc: int) -> int:
    """A pidfd of the process runc started, once it wrote its pid file; of runc
    itself when it ended first (it failed, or the process was that quick)."""
    from kade.engine.monitorclient import poll_readable
    runc_fd = os.pidfd_open(runc)
    while not poll_readable([runc_fd], 0.001):
        try:
            with open(pid_file) as f:  # runc writes it whole: a temp file renamed
                pid = int(f.read())
        except FileNotFoundError:
            continue
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already: runc ends next
            return runc_fd
        os.close(runc_fd)
        return fd
    return runc_fd


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _with_devnull(spawn) -> int:
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        return spawn((null, null, null))
    finally:
        os.close(null)


def _spawn_argv(argv: list[str], stdio: tuple[int, int, int]) -> int:
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)]
    return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)


def _piped(spawn, interactive: bool, watch=os.pidfd_open,
           stdio: tuple[int, int, int] = (0, 1, 2)) -> int:
    """spawn(stdio) with pipes made for it, copied to and from our 0, 1 and 2 until
    the process watch(pid) gives a pidfd of has exited; the exit code of pid.
    Without -i its stdin is /dev/null."""
    from kade.util.pipes import Drain, Feed
    if interactive:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = spawn((in_r, out_w, err_w))
    except BaseException:
        _close(in_w, out_r, err_r)
        raise
    finally:
        _close(in_r, out_w, err_w)
    feed = Feed(stdio[0], in_w) if interactive else None
    try:
        _copy(watch(pid), feed, [Drain(out_r, stdio[1]), Drain(err_r, stdio[2])])
    finally:
        if feed is not None:
            feed.close()
        _close(out_r, err_r)
    return _exit_code(pid)


def _copy(pidfd: int, feed, drains: list) -> None:
    from kade.util.pipes import copy_until_exit
    try:
        copy_until_exit(pidfd, feed, drains)
    finally:
        os.close(pidfd)


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _run_tty(engine, cid: str, proc: dict, req: ExecRequest,
             stdio: tuple[int, int, int] = (0, 1, 2), size: tuple[int, int] | None = None,
             on_start=None) -> int:
    from kade.runtime import console_pair, receive_console
    from kade.util.pipes import Drain, Feed
    if size is None and stdio[0] == 0:
        from kade.util.terminal import window_size
        size = window_size()
    if size:
        proc = dict(proc, consoleSize={"height": size[0], "width": size[1]})
    ours, theirs = console_pair()  # the pty is made in the container: its /dev/pts/N
    try:
        pid = engine.runtime.exec(cid, proc, console_socket=theirs)
    except BaseException:
        ours.close()
        raise
    finally:
        os.close(theirs)
    master, _ = receive_console(ours)
    if on_start is not None:
        on_start(pid, master)
    if req.detach:
        return 0
    # input goes in through a copy of the master: the pump polls each end alone
    feed = Feed(stdio[0], os.dup(master)) if req.interactive else None
    try:
        _copy(os.pidfd_open(pid), feed, [Drain(master, stdio[1])])
    finally:
        if feed is not None:
            feed.close()
        os.close(master)
    return _exit_code(pid)
