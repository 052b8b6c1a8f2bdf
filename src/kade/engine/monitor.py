"""The per-container monitor: parent of the container's init, keeper of its state.

`prefork`/`spawn` double-fork a monitor that outlives the command that started
it (no daemon to start by hand); `kade run` forks it first thing, so its imports
overlap the creation of the container. The monitor creates the container through the
runtime, pumps its output into the json-file log (and to the attached
terminal), waits for it, records the exit, applies the restart policy, and
removes the container for --rm. It talks to the caller over one pipe, one JSON
line per message: {"started": {...}}, {"error": ..., "kind": ...}, {"exit": code}.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time

from kade.errors import CommandNotFound, CommandNotInvocable, KadeError

RESTART_BACKOFF_MAX = 60.0


class Preforked:
    """A monitor forked ahead of time, warming up while the caller creates the
    container; `go` hands it the container. Closing `ctrl` without `go` (the
    create failed) makes it exit quietly."""

    def __init__(self, ctrl: int, report: int, child: int):
        self.ctrl, self.report, self.child = ctrl, report, child

    def _reap(self) -> None:
        # the intermediate child exits right after forking the monitor; reaped
        # late so the caller does not wait for that fork
        if self.child:
            os.waitpid(self.child, 0)
            self.child = 0

    def go(self, root: str, driver: str, cid: str, attach: dict | None) -> int:
        msg = {"root": root, "driver": driver, "cid": cid, "attach": attach}
        os.write(self.ctrl, (json.dumps(msg) + "\n").encode())
        os.close(self.ctrl)
        report, self.ctrl, self.report = self.report, -1, -1  # the caller owns it now
        self._reap()
        return report

    def cancel(self) -> None:
        """Release a monitor that was never told to go; a no-op after go()."""
        for fd in (self.ctrl, self.report):
            if fd >= 0:
                os.close(fd)
        self.ctrl = self.report = -1
        self._reap()


def prefork() -> Preforked:
    """Fork the monitor now. Call before any SQLite handle is open (see
    Engine.close_handles): the child must not inherit one."""
    ctrl_r, ctrl_w = os.pipe()
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            os.close(ctrl_w)
            os.close(report_r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _warm_up()
            msg = _read_line(ctrl_r)
            if msg is not None:
                code = _serve(msg, report_w)
        finally:
            os._exit(code)
    os.close(ctrl_r)
    os.close(report_w)
    return Preforked(ctrl_w, report_r, child)


def spawn(engine, cid: str, attach: dict | None) -> int:
    """Fork the monitor for an existing container; returns its report pipe."""
    root, driver = engine.root, engine.driver
    engine.close_handles()  # reopened lazily; see Engine.close_handles
    return prefork().go(root, driver, cid, attach)


def _serve(msg: dict, report: int) -> int:
    try:
        _detach_stdio(msg["attach"])
        return Monitor(msg["root"], msg["driver"], msg["cid"], report, msg["attach"]).run()
    except BaseException as e:  # noqa: BLE001 - report anything to the caller
        _send(report, {"error": f"monitor failed: {e}", "kind": "KadeError"})
        if os.environ.get("KADE_DEBUG"):
            import traceback
            traceback.print_exc()
        return 125


def _warm_up() -> None:
    """What every container start needs: imported and cached while the caller
    is still resolving the image and writing the container record."""
    from kade.engine import lifecycle, logs, spec  # noqa: F401
    from kade.oci import defaults
    from kade.runtime import Runtime  # noqa: F401
    from kade.runtime import seccomp
    try:
        seccomp.prepare(defaults.default_seccomp(defaults.DEFAULT_CAPS))
    except Exception:  # noqa: BLE001 - only a cache warm-up; the real start reports
        pass


def _read_line(fd: int) -> dict | None:
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            return None
        buf += chunk
    os.close(fd)
    return json.loads(buf)


def _detach_stdio(attach: dict | None) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    keep = set()
    if attach:
        keep = {1, 2} | ({0} if attach.get("stdin") else set())
    for fd in (0, 1, 2):
        if fd not in keep and not (fd == 2 and os.environ.get("KADE_DEBUG")):
            os.dup2(null, fd)
    os.close(null)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)


def _send(fd: int, msg: dict) -> None:
    try:
        os.write(fd, (json.dumps(msg) + "\n").encode())
    except OSError:
        pass  # the caller went away; the container goes on


class Monitor:
    def __init__(self, root: str, driver: str, cid: str, report_fd: int, attach: dict | None):
        from kade.engine.core import Engine
        self.engine = Engine(root, driver)  # fresh handles: never share sqlite over fork
        self.cid = cid
        self.report = report_fd
        self.attach = attach
        self.reported = False

    def run(self) -> int:
        from kade.engine import lifecycle
        engine, cid = self.engine, self.cid
        record, _ = engine.containers.get(cid)
        prepared = lifecycle.prepare_run(engine, cid, record)
        restarts = record.get("RestartCount", 0)
        while True:
            code = self._run_once(record, prepared)
            if code is None:
                break
            state = engine.db.container(cid)[1]
            if not lifecycle.should_restart(record, state, code, restarts):
                break
            restarts += 1
            record["RestartCount"] = restarts
            engine.db.save_record(cid, record)
            engine.db.update_state(cid, {"Status": "restarting", "Restarting": True})
            time.sleep(min(0.1 * 2 ** (restarts - 1), RESTART_BACKOFF_MAX))
        final = engine.db.container(cid)[1]
        if record["HostConfig"].get("AutoRemove"):
            engine.containers._destroy(cid, remove_volumes=True)
            from kade.engine.containers import _event_attrs
            engine.emit("container", "destroy", cid, _event_attrs(record))
        _send(self.report, {"exit": final.get("ExitCode", 0)})
        return 0

    def _run_once(self, record: dict, prepared) -> int | None:
        from kade.engine import lifecycle
        engine, cid = self.engine, self.cid
        stdio = lifecycle.Stdio(record, self.attach, engine.containers.bundle(cid))
        try:
            pid = engine.runtime.create(cid, prepared.bundle, spec=prepared.spec,
                                        stdio=stdio.child_fds(), console=stdio.console_slave,
                                        rootfs_mounts=prepared.rootfs_mounts)
            stdio.close_child_ends()
            pidfd = os.pidfd_open(pid)
            engine.runtime.start(cid)
        except KadeError as e:
            stdio.close()
            self._failed_start(e)
            return None
        lifecycle.mark_running(engine, cid, pid)
        if not self.reported:
            _send(self.report, {"started": {"pid": pid, "pty": stdio.pty_name}})
            self.reported = True
        stdio.pump(pidfd)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        stdio.close()
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        try:
            engine.runtime.delete(cid, force=True)
        except KadeError:
            pass
        lifecycle.mark_exited(engine, cid, code)
        return code

    def _failed_start(self, e: KadeError) -> None:
        code = 127 if isinstance(e, CommandNotFound) else (
            126 if isinstance(e, CommandNotInvocable) else 125)
        self.engine.db.update_state(self.cid, {"Status": "created" if code != 125 else "exited",
                                               "Running": False, "ExitCode": code,
                                               "Error": str(e)})
        if not self.reported:
            _send(self.report, {"error": str(e), "kind": type(e).__name__})
            self.reported = True


def poll_readable(fds: list[int], timeout: float | None) -> list[int]:
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in p.poll(None if timeout is None else int(timeout * 1000))]
