"""Containers: create, list, inspect, the lifecycle, logs, attach, wait, archive..."""

from __future__ import annotations

import time
from typing import Iterator

from kade.api import streams
from kade.api.attach import Attachment, Attachments
from kade.api.router import (Context, Route, hijack_response, json_response, no_content,
                             stream_response)
from kade.api.routers.containers_backend import Backend, EngineBackend
from kade.errors import InvalidArgument, NotImplementedYet
from kade.registry.httpd import Response

backend = EngineBackend
__all__ = ["Backend", "backend", "routes"]


def routes() -> list[Route]:
    return [
        Route("POST", "/containers/create", create),
        Route("GET", "/containers/json", list_),
        Route("POST", "/containers/prune", prune),
        Route("GET", "/containers/{id}/json", inspect),
        Route("POST", "/containers/{id}/start", start),
        Route("POST", "/containers/{id}/stop", stop),
        Route("POST", "/containers/{id}/restart", restart),
        Route("POST", "/containers/{id}/kill", kill),
        Route("POST", "/containers/{id}/pause", pause),
        Route("POST", "/containers/{id}/unpause", unpause),
        Route("POST", "/containers/{id}/wait", wait),
        Route("DELETE", "/containers/{id}", remove),
        Route("POST", "/containers/{id}/rename", rename),
        Route("GET", "/containers/{id}/logs", logs),
        Route("POST", "/containers/{id}/attach", attach),
        Route("POST", "/containers/{id}/resize", resize),
        Route("GET", "/containers/{id}/top", top),
        Route("GET", "/containers/{id}/changes", changes),
        Route("HEAD", "/containers/{id}/archive", archive_head),
        Route("GET", "/containers/{id}/archive", archive_get),
        Route("PUT", "/containers/{id}/archive", archive_put),
        Route("GET", "/containers/{id}/export", export),
        Route("GET", "/containers/{id}/stats", stats),
        Route("POST", "/containers/{id}/update", update),
    ]


def _cid(ctx: Context) -> str:
    b: Backend = ctx.backend
    return b.resolve(ctx.params["id"])


def attachments(ctx: Context) -> Attachments:
    with ctx.app._lock:
        return ctx.app.state.setdefault("attachments", Attachments())


def status_text(state: dict, now: float) -> str:
    """Docker's Status of a listed container ("Up 3 seconds", "Exited (0) 2 minutes
    ago"): the same words as `kade ps` (kade.cli.ps), which this row cannot import."""
    from kade.util.ids import parse_rfc3339
    from kade.util.units import human_duration
    s = state["Status"]
    if s in ("running", "paused"):
        up = "Up " + human_duration(now - parse_rfc3339(state["StartedAt"]))
        health = (state.get("Health") or {}).get("Status")
        if s == "paused":
            return up + " (Paused)"
        return up + ((" (health: starting)" if health == "starting" else f" ({health})")
                     if health else "")
    if s in ("restarting", "exited"):
        return (f"{s.capitalize()} ({state['ExitCode']}) "
                f"{human_duration(now - parse_rfc3339(state['FinishedAt']))} ago")
    return s.capitalize()


# --- create, list, inspect ---------------------------------------------------------
def create(ctx: Context) -> Response:
    from kade.api.routers import createbody
    opts = createbody.options(ctx.json(), ctx.query("name"))
    b: Backend = ctx.backend
    return json_response({"Id": b.create(opts), "Warnings": []}, 201)


def list_(ctx: Context) -> Response:
    b: Backend = ctx.backend
    limit = ctx.query_int("limit", -1)
    items = b.listing(ctx.query_bool("all") or (limit or 0) > 0, ctx.filters(),
                   limit if limit and limit > 0 else -1, ctx.query_bool("size"))
    return json_response([_summary(c) for c in items])


def _summary(c) -> dict:
    from kade.engine.netview import network_settings
    settings = network_settings(c.record, c.state)
    ports = []
    for key, hosts in (settings.get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        for h in hosts or [None]:
            entry = {"PrivatePort": int(port), "Type": proto}
            if h:
                entry.update(IP=h.get("HostIp", ""), PublicPort=int(h.get("HostPort") or 0))
            ports.append(entry)
    out = {"Id": c.id, "Names": ["/" + c.name], "Image": c.image, "ImageID": c.image_id,
           "Command": c.command, "Created": int(c.created), "Ports": ports,
           "Labels": c.labels, "State": c.state["Status"],
           "Status": status_text(c.state, time.time()),
           "HostConfig": {"NetworkMode": c.record["HostConfig"].get("NetworkMode", "default")},
           "NetworkSettings": {"Networks": settings.get("Networks", {})}, "Mounts": c.mounts}
    if c.size_rw is not None:
        out.update(SizeRw=c.size_rw, SizeRootFs=c.size_root_fs or 0)
    return out


def inspect(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    body = b.inspect(cid)
    host = body.setdefault("HostConfig", {})
    host.setdefault("LogConfig", {"Type": "json-file", "Config": {}})  # docker-py reads it
    if ctx.query_bool("size"):
        body.setdefault("SizeRw", 0)
        body.setdefault("SizeRootFs", 0)
    return json_response(body)


# --- lifecycle ----------------------------------------------------------------------
def start(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    att = attachments(ctx).take(cid)
    if att is None:
        if b.state(cid)["Running"]:
            return Response(304)
        b.start(cid)
        return no_content()
    try:
        started = b.start(cid, {"stdin": att.stdin, "tty": att.tty}, att.child_fds())
    except BaseException as e:
        att.started_with(None, e)
        raise
    att.started_with(started)
    return no_content()


def _signal(ctx: Context, default: str | None) -> int | None:
    from kade.engine.signals import parse_signal
    value = ctx.query("signal", default)
    return parse_signal(value) if value else None


def _timeout(ctx: Context) -> int | None:
    return ctx.query_int("t", ctx.query_int("timeout"))


def stop(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    state = b.state(cid)
    if not state["Running"] and state["Status"] != "restarting":
        return Response(304)
    b.stop(cid, _timeout(ctx), _signal(ctx, None))
    return no_content()


def restart(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.restart(_cid(ctx), _timeout(ctx), _signal(ctx, None))
    return no_content()


def kill(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.kill(_cid(ctx), _signal(ctx, "KILL") or 9)
    return no_content()


def pause(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.pause(_cid(ctx))
    return no_content()


def unpause(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.unpause(_cid(ctx))
    return no_content()


WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def wait(ctx: Context) -> Response:
    condition = ctx.query("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise InvalidArgument(f'invalid condition: "{condition}"')
    b: Backend = ctx.backend
    cid = _cid(ctx)  # a 404 now; then the head goes out at once, as dockerd's: clients
    # start the container only once their wait is known to be in place

    def body() -> Iterator[bytes]:
        import json
        code = b.wait(cid, condition)
        yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"
    return stream_response(body())


def remove(ctx: Context) -> Response:
    b: Backend = ctx.backend
    if ctx.query_bool("link"):
        raise NotImplementedYet("links are not removable separately in Kade")
    b.remove(ctx.params["id"], ctx.query_bool("force"), ctx.query_bool("v"))
    return no_content()


def rename(ctx: Context) -> Response:
    name = ctx.query("name")
    if not name:
        raise InvalidArgument("Neither old nor new names may be empty")
    b: Backend = ctx.backend
    b.rename(ctx.params["id"], name)
    return no_content()


def prune(ctx: Context) -> Response:
    b: Backend = ctx.backend
    raw = [f"{k}={v}" for k, values in ctx.filters().items() for v in values]
    removed, space = b.prune(raw)
    return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": space})


# --- logs, attach ----------------------------------------------------------------------
def logs(ctx: Context) -> Response:
    stdout, stderr = ctx.query_bool("stdout"), ctx.query_bool("stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    since, until = _time_arg(ctx, "since"), _time_arg(ctx, "until")
    tail_text = ctx.query("tail") or "all"
    try:
        tail = -1 if tail_text == "all" else int(tail_text)
    except ValueError:
        raise InvalidArgument(f'invalid value for "tail": "{tail_text}"') from None
    b: Backend = ctx.backend
    cid = _cid(ctx)
    tty = bool(b.record(cid)["Config"].get("Tty"))
    entries = b.logs(cid, since, until, tail, ctx.query_bool("follow"))
    wanted = {"stdout": stdout, "stderr": stderr}
    chunks = _log_chunks(entries, wanted, ctx.query_bool("timestamps"), tty)
    ctype = ("application/vnd.docker.raw-stream" if tty or not ctx.at_least(1, 42)
             else "application/vnd.docker.multiplexed-stream")
    return stream_response(chunks, ctype)


def _time_arg(ctx: Context, name: str) -> float:
    """since/until as `kade logs` reads them; absent, "" and "0" mean no bound."""
    from kade.util.units import parse_timestamp
    value = ctx.query(name)
    return parse_timestamp(value, time.time()) if value and value != "0" else 0.0


def _log_chunks(entries: Iterator[dict], wanted: dict, timestamps: bool,
                tty: bool) -> Iterator[bytes]:
    try:
        for e in entries:
            if not wanted.get(e["stream"], False):
                continue
            line = e["log"].encode()
            if timestamps:
                line = e["time"].encode() + b" " + line
            if tty:
                yield line
            else:
                yield b"".join(streams.frames(2 if e["stream"] == "stderr" else 1, line))
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()


def attach(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    record = b.record(cid)
    tty = bool(record["Config"].get("Tty"))
    if b.state(cid)["Running"]:
        if not ctx.query_bool("stream"):
            return hijack_response(ctx, lambda sock, buf: None, not tty)
        return _attach_running(ctx, b, cid, tty)
    att = Attachment(cid, ctx.query_bool("stdin") and bool(record["Config"].get("OpenStdin")),
                     ctx.query_bool("stdout"), ctx.query_bool("stderr"), tty)
    attachments(ctx).park(att)

    parked = attachments(ctx)

    def run(sock, buffered: bytes) -> None:
        try:
            att.serve(sock, buffered, parked)
        finally:
            if parked.drop(att):  # never served (the head could not be sent)
                att.close()
    return hijack_response(ctx, run, not tty)


def _attach_running(ctx: Context, b: Backend, cid: str, tty: bool) -> Response:
    """A running container's output from now on, from its log (Kade's supervisor takes
    terminals only at start): stdin is not connected."""
    wanted = {"stdout": ctx.query_bool("stdout"), "stderr": ctx.query_bool("stderr")}
    entries = b.logs(cid, time.time(), 0.0, -1, True)

    def run(sock, buffered: bytes) -> None:
        for chunk in _log_chunks(entries, wanted, False, tty):
            if not streams.send_all(sock, chunk):
                return
    return hijack_response(ctx, run, not tty)


def resize(ctx: Context) -> Response:
    height, width = ctx.query_int("h", 0) or 0, ctx.query_int("w", 0) or 0
    b: Backend = ctx.backend
    cid = _cid(ctx)
    state = b.state(cid)
    if not state["Running"]:
        from kade.errors import Conflict
        raise Conflict(f"Container {cid} is not running")
    if b.record(cid)["Config"].get("Tty") and height and width:
        _resize_pty(f"/proc/{state['Pid']}/root/dev/console", height, width)
    return Response(200, {"Content-Type": "text/plain"})


def _resize_pty(path: str, height: int, width: int) -> None:
    import fcntl
    import os
    import struct
    import termios
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if os.isatty(fd):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    finally:
        os.close(fd)


# --- processes and files -----------------------------------------------------------------
def top(ctx: Context) -> Response:
    import shlex
    b: Backend = ctx.backend
    args = ctx.query("ps_args")
    titles, rows = b.top(_cid(ctx), shlex.split(args) if args else None)
    return json_response({"Titles": titles, "Processes": rows})


CHANGE_KINDS = {"C": 0, "A": 1, "D": 2}


def changes(ctx: Context) -> Response:
    b: Backend = ctx.backend
    return json_response([{"Path": path, "Kind": CHANGE_KINDS[kind]}
                          for kind, path in b.changes(_cid(ctx))] or None)


def _path(ctx: Context) -> str:
    path = ctx.query("path")
    if not path:
        raise InvalidArgument("path is required: ?path=")
    return path


def _stat_header(stat) -> str:
    """X-Docker-Container-Path-Stat: base64 of the stat's JSON, mtime in RFC 3339."""
    import base64
    import json
    body = dict(stat.to_json())
    secs = float(body["mtime"])
    body["mtime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + \
        f".{int(secs % 1 * 1e9):09d}Z"
    return base64.b64encode(json.dumps(body).encode()).decode()


def archive_head(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    stat = b.stat_path(cid, _path(ctx), ctx.params["id"])
    return Response(200, {"X-Docker-Container-Path-Stat": _stat_header(stat),
                          "Content-Type": "application/x-tar"})


def archive_get(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    opened = b.open_archive(cid, _path(ctx), ctx.params["id"])
    stat, tar = opened.__enter__()  # errors (404) before the head goes out
    return Response(200, {"X-Docker-Container-Path-Stat": _stat_header(stat),
                          "Content-Type": "application/x-tar"},
                    stream=_file_chunks(tar, opened))


def _file_chunks(f, opened) -> Iterator[bytes]:
    """A tar from an engine context manager, closed however the stream ends (a client
    gone mid-stream stops the helper that writes it: nothing is left running)."""
    error: BaseException | None = None
    try:
        while data := f.read(1 << 16):
            yield data
    except BaseException as e:  # GeneratorExit when the client left
        error = e
        raise
    finally:
        if error is None:
            opened.__exit__(None, None, None)
        else:
            try:
                opened.__exit__(type(error), error, error.__traceback__)
            except BaseException:  # noqa: BLE001 - the first error is the one to tell
                pass


def archive_put(ctx: Context) -> Response:
    b: Backend = ctx.backend
    cid = _cid(ctx)
    body = ctx.req.body

    def produce(out) -> None:
        for piece in body.pieces():
            out.write(piece)
    b.put_archive(cid, _path(ctx), produce, ctx.params["id"])
    return Response(200)


def export(ctx: Context) -> Response:
    b: Backend = ctx.backend
    opened = b.export(_cid(ctx))
    tar = opened.__enter__()
    return Response(200, {"Content-Type": "application/x-tar"},
                    stream=_file_chunks(tar, opened))


def stats(ctx: Context) -> Response:
    raise NotImplementedYet("container stats are not served by the API yet; use kade stats")


def update(ctx: Context) -> Response:
    raise NotImplementedYet("container update is not supported by Kade yet")
