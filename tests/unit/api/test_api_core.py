"""kade.api without an engine: routing, versions, the error map, framing, HTTP bodies.

Requests go through the real HTTP core (httpd.Server.serve_connection) over a
socketpair, to an App whose routers get fake backends."""

import json
import socket
import threading

import pytest

from kade import errors
from kade.api import httpstatus, streams, versions
from kade.api.router import App, Route, json_response, load_routes, stream_response
from kade.registry.httpd import Server


class FakeContainers:
    """The containers router's backend, as far as these tests reach."""

    def __init__(self):
        self.created = []

    def resolve(self, ref):
        if ref != "box":
            raise errors.NotFound(f"no such container: {ref}")
        return "c" * 64

    def create(self, opts):
        self.created.append(opts)
        return "c" * 64

    def state(self, cid):
        return {"Running": True, "Status": "running"}

    def pause(self, cid):
        raise errors.Conflict(f"container {cid} is already paused")

    def kill(self, cid, sig):
        raise RuntimeError("a bug")


def call(app, raw: bytes) -> bytes:
    server = Server(app.handle, idle_timeout=5)
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=server.serve_connection, args=(theirs,))
    t.start()
    ours.sendall(raw)
    ours.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := ours.recv(65536):
        out += chunk
    t.join()
    ours.close()
    return out


def get(app, method, path, body=b"", headers=""):
    raw = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    head, _, payload = call(app, raw).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), hdrs, payload


@pytest.fixture
def fake():
    return FakeContainers()


@pytest.fixture
def app(fake):
    return App("/nonexistent", load_routes(), backends={"containers": fake},
               log_errors=False)


def test_ping_answers_dockerd_headers(app):
    for method in ("GET", "HEAD"):
        status, headers, body = get(app, method, "/_ping")
        assert status == 200 and body == (b"OK" if method == "GET" else b"")
        assert headers["Api-Version"] == "1.50"
        assert headers["Ostype"] == "linux"
        assert headers["Docker-Experimental"] == "false"
        assert headers["Builder-Version"] == "1"


def test_versioned_and_bare_paths_reach_one_route(app):
    bare = get(app, "GET", "/version")
    prefixed = get(app, "GET", "/v1.24/version")
    assert bare[0] == prefixed[0] == 200
    assert json.loads(bare[2]) == json.loads(prefixed[2])
    assert json.loads(bare[2])["MinAPIVersion"] == "1.24"


@pytest.mark.parametrize("path,words", [("/v1.51/version", "too new"),
                                        ("/v1.23/_ping", "too old")])
def test_versions_out_of_range_are_400(app, path, words):
    status, _, body = get(app, "GET", path)
    assert status == 400 and words in json.loads(body)["message"]


def test_split_path():
    assert versions.split_path("/v1.43/containers/json") == ((1, 43), "/containers/json")
    assert versions.split_path("/containers/json") == (versions.MAX_VERSION,
                                                       "/containers/json")
    assert versions.split_path("/vx/y") == (versions.MAX_VERSION, "/vx/y")


def test_unknown_path_and_method_are_docker_404(app):
    for method, path in (("GET", "/nope"), ("DELETE", "/_ping"), ("GET", "/v1.43/x/y")):
        status, headers, body = get(app, method, path)
        assert (status, json.loads(body)) == (404, {"message": "page not found"})
        assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("exc,status", [
    (errors.NotFound("x"), 404), (errors.Conflict("x"), 409),
    (errors.AlreadyExists("x"), 409), (errors.InvalidArgument("x"), 400),
    (errors.Forbidden("x"), 403), (errors.NotImplementedYet("x"), 501),
    (errors.CommandNotFound("x"), 400), (errors.Unavailable("x"), 503),
    (errors.KadeError("x"), 500), (RuntimeError("x"), 500)])
def test_error_map(exc, status):
    assert httpstatus.status_of(exc) == status


def test_errors_answer_status_and_message(app):
    status, _, body = get(app, "GET", "/containers/nosuch/json")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    status, _, body = get(app, "POST", "/containers/box/pause")
    assert status == 409 and "already paused" in json.loads(body)["message"]
    status, _, body = get(app, "POST", "/containers/box/kill")
    assert (status, json.loads(body)) == (500, {"message": "a bug"})


def test_bad_json_and_wrong_types_are_400(app, fake):
    status, _, body = get(app, "POST", "/containers/create", b"{nope")
    assert status == 400 and "invalid JSON" in json.loads(body)["message"]
    status, _, body = get(app, "POST", "/containers/create",
                          json.dumps({"Image": "busybox", "Env": "A=1"}).encode())
    assert (status, json.loads(body)) == (400, {"message": "Env must be a list of strings"})
    assert fake.created == []


def test_create_body_becomes_create_options(app, fake):
    body = {"Image": "busybox", "Cmd": ["echo", "hi"], "Tty": True, "OpenStdin": True,
            "Env": ["A=1"], "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"AutoRemove": True, "Binds": ["/tmp:/data:ro"],
                           "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1",
                                                        "HostPort": "8080"}]},
                           "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                           "Memory": 1 << 20, "CapAdd": ["NET_ADMIN"]}}
    status, _, out = get(app, "POST", "/containers/create?name=web",
                         json.dumps(body).encode())
    assert (status, json.loads(out)) == (201, {"Id": "c" * 64, "Warnings": []})
    opts = fake.created[0]
    assert (opts.image, opts.command, opts.name, opts.tty, opts.interactive) == (
        "busybox", ["echo", "hi"], "web", True, True)
    assert (opts.auto_remove, opts.restart, opts.memory, opts.cap_add) == (
        True, "on-failure:3", 1 << 20, ["NET_ADMIN"])
    assert opts.publish == ["127.0.0.1:8080:80/tcp"] and opts.expose == ["80/tcp"]
    assert (opts.mounts[0]["target"], opts.mounts[0]["readonly"]) == ("/data", True)
    assert opts.pull == "never"  # the client pulls on a 404, as with dockerd


def test_unsupported_host_config_is_refused(app, fake):
    body = {"Image": "busybox", "HostConfig": {"CpusetCpus": "0-1"}}
    status, _, out = get(app, "POST", "/containers/create", json.dumps(body).encode())
    assert status == 400 and "CpusetCpus" in json.loads(out)["message"]
    assert fake.created == []


def test_chunked_request_body_is_read(fake):
    seen = []

    def echo(ctx):
        seen.append(ctx.json())
        return json_response({"ok": True})
    app = App(None, [Route("POST", "/echo", echo)])
    payload = json.dumps({"a": [1, 2, 3]}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:5], payload[5:]))
    raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n")
    assert call(app, raw).startswith(b"HTTP/1.1 200 ")
    assert seen == [{"a": [1, 2, 3]}]


def test_bad_chunking_and_huge_bodies_are_refused(app):
    raw = (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"\r\nzz\r\n")
    assert call(app, raw).startswith(b"HTTP/1.1 400 ")
    raw = (b"POST /containers/create HTTP/1.1\r\nHost: x\r\n"
           b"Content-Length: 999999999999\r\n\r\n{")
    out = call(app, raw)
    assert out.startswith(b"HTTP/1.1 413 ")
    assert b'"message"' in out


def test_streams_are_chunked_and_closed_when_done(fake):
    closed = []

    def gen():
        try:
            yield b"one\n"
            yield b"two\n"
        finally:
            closed.append(True)
    app = App(None, [Route("GET", "/s", lambda ctx: stream_response(gen()))])
    out = call(app, b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"4\r\none\n\r\n4\r\ntwo\n\r\n0\r\n\r\n"
    assert closed == [True] and app.active == 0


def test_hijack_gets_the_raw_socket(fake):
    from kade.api.router import hijack_response

    def run(sock, buffered):
        sock.sendall(b"<" + buffered + sock.recv(10) + b">")
    app = App(None, [Route("POST", "/h", lambda ctx: hijack_response(ctx, run, False))])
    out = call(app, b"POST /h HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                    b"Upgrade: tcp\r\n\r\nearly")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and b"Upgrade: tcp" in head
    assert b"Content-Length" not in head
    assert body.startswith(b"<early")
    assert app.active == 0


def test_multiplexed_frames():
    data = streams.frame(streams.STDERR, b"oops")
    assert data == b"\x02\x00\x00\x00\x00\x00\x00\x04oops"
    big = b"".join(streams.frames(streams.STDOUT, b"x" * (streams.MAX_FRAME + 1)))
    frames, rest = streams.parse(big + b"\x01\x00\x00")
    assert [(s, len(d)) for s, d in frames] == [(1, streams.MAX_FRAME), (1, 1)]
    assert rest == b"\x01\x00\x00"


def test_pump_frames_outputs_and_feeds_stdin():
    import os
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe()
    ours, theirs = socket.socketpair()
    os.write(out_w, b"hello")
    os.write(err_w, b"bad")
    os.close(out_w)
    os.close(err_w)
    ours.sendall(b"typed")
    ours.shutdown(socket.SHUT_WR)
    streams.pump(theirs, {out_r: streams.STDOUT, err_r: streams.STDERR}, in_w, True,
                 buffered=b"early-")
    theirs.close()
    got = b""
    while chunk := ours.recv(4096):
        got += chunk
    frames, rest = streams.parse(got)
    assert sorted(frames) == [(1, b"hello"), (2, b"bad")] and rest == b""
    assert os.read(in_r, 100).startswith(b"early-")
    for fd in (out_r, err_r, in_r):
        os.close(fd)


def test_idle_clock_counts_requests_in_flight():
    app = App(None, [Route("GET", "/x", lambda ctx: json_response(app.active))])
    status, _, body = get(app, "GET", "/x")
    assert json.loads(body) == 1 and app.active == 0 and app.idle_for() >= 0
