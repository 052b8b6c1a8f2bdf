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


def run(engine, cid: str, req: ExecRequest) -> int:
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
        import subprocess
        from kade.engine import external
        argv = external.exec_argv(engine, runtime, cid, proc, req.tty, req.detach)
        return subprocess.run(argv, stdin=None if req.interactive else subprocess.DEVNULL
                              ).returncode
    if req.tty:
        return _run_tty(engine, cid, proc, req)
    stdin = 0 if req.interactive else os.open(os.devnull, os.O_RDONLY)
    out = err = os.open(os.devnull, os.O_WRONLY) if req.detach else None
    pid = engine.runtime.exec(cid, proc, stdio=(stdin, out if out is not None else 1,
                                                err if err is not None else 2))
    if req.detach:
        return 0
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _run_tty(engine, cid: str, proc: dict, req: ExecRequest) -> int:
    import select
    from kade.runtime import console_pair, receive_console
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
    if req.detach:
        return 0
    fds = [master] + ([0] if req.interactive else [])
    while True:
        ready, _, _ = select.select(fds, [], [])
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                os.write(master, data)
            else:
                fds.remove(0)
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                break
            os.write(1, data)
    os.close(master)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
