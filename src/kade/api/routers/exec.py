"""Exec: create, start (hijacked, or detached), resize, inspect.

An exec is a record kept in the service's memory (docker's too): created by
`POST /containers/{id}/exec`, run by `POST /exec/{id}/start`. Its process gets
pipes or a pty of its own (kade.engine.execs); a thread runs it while the
hijacked connection's worker copies between those and the socket.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

from kade.api import streams
from kade.api.router import Context, Route, hijack_response, json_response
from kade.errors import Conflict, InvalidArgument, NotFound
from kade.registry.httpd import Response


class Backend(Protocol):
    def resolve(self, ref: str) -> str: ...
    def state(self, cid: str) -> dict: ...
    def run(self, cid: str, req, stdio: tuple[int, int, int],
            size: tuple[int, int] | None, on_start) -> int: ...


class EngineBackend:
    def __init__(self, engine):
        self.engine = engine

    def resolve(self, ref):
        return self.engine.containers.resolve(ref)

    def state(self, cid):
        return self.engine.containers.state(cid)

    def run(self, cid, req, stdio, size, on_start):
        from kade.engine import execs
        return execs.run(self.engine, cid, req, stdio, size, on_start)


backend = EngineBackend


def routes() -> list[Route]:
    return [
        Route("POST", "/containers/{id}/exec", create),
        Route("POST", "/exec/{id}/start", start),
        Route("POST", "/exec/{id}/resize", resize),
        Route("GET", "/exec/{id}/json", inspect),
    ]


class Exec:
    def __init__(self, exec_id: str, cid: str, body: dict):
        from kade.engine.execs import ExecRequest
        self.id, self.cid = exec_id, cid
        self.attach_stdin = bool(body.get("AttachStdin"))
        self.attach_stdout = bool(body.get("AttachStdout"))
        self.attach_stderr = bool(body.get("AttachStderr"))
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not all(isinstance(c, str) for c in cmd):
            raise InvalidArgument("No exec command specified")
        self.req = ExecRequest(argv=list(cmd), env=list(body.get("Env") or []),
                               workdir=body.get("WorkingDir") or None,
                               user=body.get("User") or None,
                               privileged=bool(body.get("Privileged")),
                               tty=bool(body.get("Tty")), interactive=self.attach_stdin)
        self.detach_keys = body.get("DetachKeys") or ""
        self.size = _size(body.get("ConsoleSize"))
        self.running = False
        self.started = False
        self.exit_code: int | None = None
        self.pid = 0
        self.master = -1
        self.lock = threading.Lock()

    def on_start(self, pid: int, master: int) -> None:
        with self.lock:
            self.pid, self.running = pid, True
            if master >= 0:
                self.master = os.dup(master)
                if self.size:
                    _set_size(self.master, *self.size)

    def finished(self, code: int) -> None:
        with self.lock:
            self.exit_code, self.running = code, False
            if self.master >= 0:
                os.close(self.master)
                self.master = -1


def _size(value) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1]) if value[0] and value[1] else None
    return None


def _set_size(fd: int, height: int, width: int) -> None:
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _execs(ctx: Context) -> dict[str, Exec]:
    with ctx.app._lock:
        return ctx.app.state.setdefault("execs", {})


def _get(ctx: Context) -> Exec:
    found = _execs(ctx).get(ctx.params["id"])
    if found is None:
        raise NotFound(f"No such exec instance: {ctx.params['id']}")
    return found


def _check_running(b: Backend, cid: str) -> None:
    state = b.state(cid)
    if not state["Running"]:
        raise Conflict(f"Container {cid} is not running")
    if state.get("Paused"):
        raise Conflict(f"Container {cid} is paused, unpause the container before exec")


def create(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = b.resolve(ctx.params["id"])
    body = ctx.json(default={})
    if not isinstance(body, dict):
        raise InvalidArgument("exec config must be a JSON object")
    _check_running(b, cid)
    exec_id = os.urandom(32).hex()
    _execs(ctx)[exec_id] = Exec(exec_id, cid, body)
    return json_response({"Id": exec_id}, 201)


def start(ctx: Context) -> Response:
    ex = _get(ctx)
    body = ctx.json(default={}) or {}
    b: Backend = ctx.backend
    with ex.lock:
        if ex.started:
            raise Conflict(f"Error: Exec command {ex.id} is already running")
        ex.started = True
    _check_running(b, ex.cid)
    ex.size = _size(body.get("ConsoleSize")) or ex.size
    if body.get("Detach"):
        threading.Thread(target=_run_detached, args=(ctx.app, ex), daemon=True).start()
        return Response(200)
    return hijack_response(ctx, lambda sock, buf: _run_attached(ctx.app, ex, sock, buf),
                           not ex.req.tty)


def _run_detached(app, ex: Exec) -> None:
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    ex.req.interactive = False
    try:
        ex.finished(_backend(app).run(ex.cid, ex.req, (null, null, null), ex.size,
                                      ex.on_start))
    except Exception:  # noqa: BLE001 - nobody to answer: docker's code for a failed exec
        ex.finished(126)
    finally:
        os.close(null)


def _backend(app) -> Backend:
    return app.backends.get("exec") or EngineBackend(app.engine())


def _run_attached(app, ex: Exec, sock, buffered: bytes) -> None:
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if ex.attach_stdin else (-1, -1)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = (out_r, out_w) if ex.req.tty else os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    stdio = (in_r if in_r >= 0 else null, out_w, err_w)

    def work() -> None:
        code = 126
        try:
            code = _backend(app).run(ex.cid, ex.req, stdio, ex.size, ex.on_start)
        except Exception as e:  # noqa: BLE001 - the client sees it on its stderr
            msg = f"exec failed: {e}\n".encode()
            os.write(err_w, b"".join(streams.frames(streams.STDERR, msg))
                     if not ex.req.tty else msg)
        finally:
            ex.finished(code)  # before the stream ends: the client inspects next
            for fd in {out_w, err_w, in_r, null}:
                if fd >= 0:
                    os.close(fd)
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    outputs = {out_r: streams.STDOUT if ex.attach_stdout else -1}
    if not ex.req.tty:
        outputs[err_r] = streams.STDERR if ex.attach_stderr else -1
    try:
        streams.pump(sock, outputs, in_w if in_w >= 0 else None, not ex.req.tty, buffered)
    finally:
        for fd in {out_r, err_r}:
            os.close(fd)


def resize(ctx: Context) -> Response:
    ex = _get(ctx)
    height, width = ctx.query_int("h", 0) or 0, ctx.query_int("w", 0) or 0
    with ex.lock:
        if ex.master >= 0 and height and width:
            _set_size(ex.master, height, width)
    return Response(200, {"Content-Type": "text/plain"})


def inspect(ctx: Context) -> Response:
    ex = _get(ctx)
    req = ex.req
    return json_response({
        "ID": ex.id, "Running": ex.running, "ExitCode": ex.exit_code,
        "ProcessConfig": {"tty": req.tty, "entrypoint": req.argv[0],
                          "arguments": req.argv[1:], "privileged": req.privileged,
                          "user": req.user or ""},
        "OpenStdin": ex.attach_stdin, "OpenStderr": ex.attach_stderr,
        "OpenStdout": ex.attach_stdout, "CanRemove": not ex.running and ex.started,
        "ContainerID": ex.cid, "DetachKeys": ex.detach_keys, "Pid": ex.pid})
