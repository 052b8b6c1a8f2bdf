"""The HTTP/1.1 server over a socketpair: framing, keep-alive, 100-continue, files."""

from __future__ import annotations

import http.client
import socket
import tempfile
import threading
import time

import pytest

from kade.registry.httpd import Response, Server


class Echo:
    """Answers with what it read; `/file` with a temporary file; `/noread` without reading."""

    def __init__(self):
        self.seen = []

    def __call__(self, req):
        self.seen.append(req)
        if req.path == "/noread":
            return Response(401, {"X": "no"}, b"denied")
        if req.path == "/boom":
            raise RuntimeError("handler bug")
        if req.path == "/file":
            f = tempfile.TemporaryFile()
            f.write(b"0123456789" * 1000)
            f.flush()
            return Response(206, {}, file=f, offset=5, length=20)
        body = b"".join(bytes(p) for p in req.body.pieces())
        return Response(200, {"X-Method": req.method, "X-Query": req.raw_query}, body)


@pytest.fixture
def pair():
    _pending.clear()
    handler = Echo()
    server_sock, client_sock = socket.socketpair()
    server = Server(handler, idle_timeout=10)
    t = threading.Thread(target=server.serve_connection, args=(server_sock,), daemon=True)
    t.start()
    client_sock.settimeout(10)
    yield client_sock, handler
    client_sock.close()
    t.join(timeout=10)


_pending: dict[int, bytes] = {}


def read_response(sock) -> tuple[bytes, bytes]:
    """One response; bytes past it are kept for the next call on the same socket."""
    data = _pending.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += sock.recv(65536)
    _pending[sock.fileno()] = rest[length:]
    return head, rest[:length]


def client(sock) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("localhost")
    conn.sock = sock
    return conn


def test_keep_alive_with_http_client(pair):
    sock, handler = pair
    conn = client(sock)
    for i in range(3):
        conn.request("PUT", f"/x?i={i}", body=b"payload %d" % i)
        r = conn.getresponse()
        assert (r.status, r.read(), r.getheader("X-Query")) == (200, b"payload %d" % i, f"i={i}")
    assert len(handler.seen) == 3


def test_chunked_request_body(pair):
    sock, handler = pair
    sock.sendall(b"PATCH /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and body == b"hello world"


def test_large_sized_body_arrives_whole(pair):
    sock, handler = pair
    payload = bytes(range(256)) * 20000
    conn = client(sock)
    conn.request("PUT", "/big", body=payload)
    assert conn.getresponse().read() == payload


def test_expect_100_continue_is_answered_when_the_body_is_read(pair):
    sock, _ = pair
    sock.sendall(b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"abc")
    head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and body == b"abc"


def test_expect_without_reading_closes_the_connection(pair):
    sock, _ = pair
    sock.sendall(b"PUT /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 401") and b"Connection: close" in head
    assert sock.recv(10) == b""


def test_small_unread_body_is_drained_and_the_connection_kept(pair):
    sock, handler = pair
    sock.sendall(b"PUT /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345"
                 b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    head1, _ = read_response(sock)
    head2, _ = read_response(sock)
    assert head1.startswith(b"HTTP/1.1 401") and head2.startswith(b"HTTP/1.1 200")
    assert [r.path for r in handler.seen] == ["/noread", "/next"]


def test_head_has_length_but_no_body(pair):
    sock, _ = pair
    sock.sendall(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while data.count(b"HTTP/1.1 200") < 2:
        data += sock.recv(65536)
    first, _, second = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 0" in first and second.startswith(b"HTTP/1.1 200")


def test_file_responses_use_the_slice(pair):
    sock, _ = pair
    conn = client(sock)
    conn.request("GET", "/file")
    r = conn.getresponse()
    assert (r.status, r.read()) == (206, b"5678901234567890123" + b"4")


def test_http10_closes_unless_keep_alive(pair):
    sock, _ = pair
    sock.sendall(b"GET /a HTTP/1.0\r\n\r\n")
    head, _ = read_response(sock)
    assert b"Connection: close" in head
    assert sock.recv(10) == b""


def test_connection_close(pair):
    sock, _ = pair
    sock.sendall(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _ = read_response(sock)
    assert b"Connection: close" in head and sock.recv(10) == b""


@pytest.mark.parametrize("raw,status", [
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
    (b"GET / HTTP/1.1\r\n folded: header\r\n\r\n", b"400"),
    (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
])
def test_bad_requests(pair, raw, status):
    sock, _ = pair
    sock.sendall(raw)
    head, _ = read_response(sock)
    assert head.split(b" ")[1] == status
    assert sock.recv(10) == b""


def test_oversized_head(pair):
    sock, _ = pair
    try:
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * (70 << 10) + b"\r\n\r\n")
    except OSError:
        pass
    head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 431")


def test_handler_errors_are_500_and_the_connection_lives(pair):
    sock, _ = pair
    conn = client(sock)
    conn.request("GET", "/boom")
    r = conn.getresponse()
    assert r.status == 500 and r.read() == b"internal server error\n"
    conn.request("GET", "/after")
    assert conn.getresponse().status == 200


def test_absolute_form_and_percent_decoding(pair):
    sock, handler = pair
    sock.sendall(b"GET http://host:5000/v2/a%3Ab?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    read_response(sock)
    assert handler.seen[0].path == "/v2/a:b" and handler.seen[0].arg("q") == "1"


class Gate(Echo):
    """Echo, but `/slow` waits until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, req):
        if req.path == "/slow":
            self.entered.set()
            assert self.gate.wait(10)
        return super().__call__(req)


@pytest.fixture
def listening():
    """A server on 127.0.0.1 with one worker and short head deadlines."""
    handler = Gate()
    server = Server(handler, max_requests=1, head_timeout=0.5, idle_timeout=5)
    server.bind(("127.0.0.1", 0))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server, handler
    handler.gate.set()
    server.close()
    t.join(timeout=10)


def test_too_many_requests_at_once_get_429(listening):
    server, handler = listening
    first = socket.create_connection(server.address, timeout=10)
    first.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert handler.entered.wait(10)
    second = socket.create_connection(server.address, timeout=10)
    second.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = read_response(second)
    assert head.startswith(b"HTTP/1.1 429") and b"TOOMANYREQUESTS" in body
    handler.gate.set()
    assert read_response(first)[0].startswith(b"HTTP/1.1 200")
    first.close()
    second.close()


def test_connections_without_a_whole_head_do_not_count(listening):
    server, _ = listening
    idle = [socket.create_connection(server.address, timeout=10) for _ in range(5)]
    for s in idle[1:]:
        s.sendall(b"GET /a HTTP/1.1\r\nHo")
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    for _ in range(3):  # one worker, reused across keep-alive requests
        conn.request("GET", "/x")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()
    for s in idle:
        s.close()


def test_a_head_trickling_in_is_cut_at_its_deadline(listening):
    server, _ = listening
    sock = socket.create_connection(server.address, timeout=10)
    answer = None
    for byte in b"GET /a HTTP/1.1\r\nX-Slow: " + b"a" * 1000:  # 20 s at 50 bytes/s
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(100, socket.MSG_DONTWAIT)
            break  # the 408, or b"" for a close
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:  # reset: the server closed with our bytes unread
            answer = b""
            break
    sock.close()
    assert answer is not None, "a head trickled in for 20 s and was never cut"
    assert answer.startswith(b"HTTP/1.1 408") or answer == b""


def test_pipelined_requests_are_answered_in_order(listening):
    server, _ = listening
    sock = socket.create_connection(server.address, timeout=10)
    sock.sendall(b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
                 b"abcGET /3 HTTP/1.1\r\n\r\n")
    bodies = [read_response(sock)[1] for _ in range(3)]
    assert bodies == [b"", b"abc", b""]
    sock.close()


def test_idle_connections_are_closed():
    server_sock, client_sock = socket.socketpair()
    server = Server(Echo(), idle_timeout=0.3)
    t = threading.Thread(target=server.serve_connection, args=(server_sock,), daemon=True)
    t.start()
    client_sock.settimeout(10)
    client_sock.sendall(b"GET /a HTTP/1.1\r\n\r\n")
    assert read_response(client_sock)[0].startswith(b"HTTP/1.1 200")
    assert client_sock.recv(10) == b""  # closed by the server after 0.3 s idle
    t.join(timeout=5)
    assert not t.is_alive()
    client_sock.close()
