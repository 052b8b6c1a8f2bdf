"""A small HTTP/1.1 server made for a registry: keep-alive, streamed bodies,
sendfile(2), TLS.

Two kinds of thread. One *waiting room* thread accepts connections and, with
epoll, reads request heads without blocking: a connection costs no thread
until its head is complete. Then a *worker* (from a pool of at most
`max_requests`) serves it with plain blocking calls, which are fastest for
registry traffic: recv_into() a reused 1 MiB buffer that the handler hashes
and writes (hashlib and os.write drop the GIL, so connections overlap), and
os.sendfile() from the blob's file to the socket for GETs. After the response
the connection goes back to the waiting room (keep-alive), or is closed.

Slow clients cannot lock others out (slowloris): a request head must be
complete `head_timeout` seconds after the connection was accepted or its
first byte arrived, however it trickles in; an idle keep-alive connection is
closed after `idle_timeout`; when the waiting room is full its oldest
connection is dropped. Only requests with a complete head count toward
`max_requests`, past which a request is answered 429.

What the server does for the handler:
- request bodies framed by Content-Length or chunked Transfer-Encoding (both at
  once is refused), and `Expect: 100-continue` answered when the handler first
  reads the body (a handler that answers without reading makes the server
  close the connection rather than read a body nobody wants);
- keep-alive by HTTP/1.1 rules (HTTP/1.0 only on request); a body or a
  response that makes no progress for `stall_timeout` ends the connection
  (SO_RCVTIMEO/SO_SNDTIMEO);
- a body the handler left unread is drained when small, else the connection
  is closed after the response.

Handler contract: `handler(request) -> Response`; an exception becomes a 500.
Two kinds of response besides bytes and files (for the Docker Engine API,
kade.api): `stream`, an iterator of bytes sent chunked (HTTP/1.0: until close;
the iterator is closed when the client goes, so its `finally` runs), and
`hijack(sock, buffered)`, called with the raw socket after the head (a 101 or
200 without a length); the connection is then the hijacker's and is closed
when it returns.
Listeners: `bind` (TCP), `bind_unix`, or `use_socket` (an inherited listener,
as systemd's socket activation passes).
"""

from __future__ import annotations

import errno
import os
import queue
import select
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    import ssl
    from typing import BinaryIO, Iterator

MAX_HEAD = 64 << 10
BODY_BUFFER = 1 << 20
# bytes gathered before handing a piece of a body to the handler: fewer, larger writes
GATHER = 512 << 10
DRAIN_LIMIT = 8 << 20
IDLE_TIMEOUT = 120.0
# a request head must be whole this long after its connection or first byte
HEAD_TIMEOUT = 20.0
# a request body or a response that moves no byte for this long ends the connection
STALL_TIMEOUT = 120.0
MAX_REQUESTS = 1024
MAX_WAITING = 16384
# an idle worker thread waits this long for work before it ends
WORKER_IDLE = 30.0
# after refusing a body we did not read: how long, and how much, to keep reading
# it before closing, so the client sees our answer rather than a reset (RFC 9112 §9.6)
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 << 20

REASONS = {100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
           206: "Partial Content", 301: "Moved Permanently", 307: "Temporary Redirect",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable",
           429: "Too Many Requests", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The peer closed the connection or stalled past the timeout mid-request."""


class Response:
    """A status, headers and either bytes or a slice of a file (sent with sendfile)."""

    __slots__ = ("status", "headers", "body", "file", "offset", "length", "stream", "hijack")

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
                 file: "BinaryIO | None" = None, offset: int = 0, length: int | None = None,
                 stream: "Iterator[bytes] | None" = None,
                 hijack: "Callable[[socket.socket, bytes], None] | None" = None):
        self.status = status
        self.stream = stream
        self.hijack = hijack
        self.headers = headers if headers is not None else {}
        self.body = body
        self.file = file
        self.offset = offset
        self.length = len(body) if length is None else length


class _Stream:
    """Buffered reads on a socket: the head through a buffer, bodies straight in."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError as e:  # reset, timeout (EAGAIN from SO_RCVTIMEO), TLS errors
            raise ClientGone(str(e)) from None
        if not data:
            return False
        self.buf += data
        return True

    def fill_nowait(self) -> bool | None:
        """Reads what has arrived without blocking: True some bytes, None nothing
        yet, False the peer closed (or the connection failed)."""
        got = None
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError as e:
                if _want_io(e):  # a partial TLS record, or a renegotiation
                    return got
                return False
            if not data:
                return False
            self.buf += data
            got = True
            if len(self.buf) > MAX_HEAD or not getattr(self.sock, "pending", None) \
                    or not self.sock.pending():
                return got

    def head_ready(self) -> bool:
        """Whether read_head() can answer without reading: a whole head, or one
        it will refuse."""
        buf = self.buf
        return b"\r\n\r\n" in buf or len(buf) > MAX_HEAD or buf[:1] == b"\x16"

    def read_head(self) -> bytes | None:
        """Bytes up to the blank line ending a request head; None on a clean close."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end > MAX_HEAD:
                raise BadRequest("request head too large", 431)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("request head too large", 431)
            if self.buf[:1] == b"\x16":
                # a TLS ClientHello: clients probing https first (containers/image with
                # tls-verify off) must fail fast and fall back to http, not time out
                raise BadRequest("this registry speaks plain HTTP, not TLS")
            start = max(len(self.buf) - 3, 0)
            if not self._fill():
                if self.buf.strip():
                    raise ClientGone("connection closed inside a request head")
                return None

    def readline(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > 8192:
                raise BadRequest("chunk header too long")
            if not self._fill():
                raise ClientGone("connection closed inside a chunked body")

    def readinto(self, view: memoryview) -> int:
        if self.buf:
            n = min(len(self.buf), len(view))
            view[:n] = self.buf[:n]
            del self.buf[:n]
            return n
        try:
            n = self.sock.recv_into(view)
        except OSError as e:  # reset, timeout (EAGAIN from SO_RCVTIMEO), TLS errors
            raise ClientGone(str(e)) from None
        if n == 0:
            raise ClientGone("connection closed inside a request body")
        return n


def _want_io(e: OSError) -> bool:
    """SSLWantReadError/SSLWantWriteError, without importing ssl for plain HTTP."""
    return type(e).__name__ in ("SSLWantReadError", "SSLWantWriteError")


class Body:
    """A request's body, read once: `pieces()` streams it, `read(limit)` takes it whole."""

    def __init__(self, conn: "_Connection", length: int | None, chunked: bool, expect: bool):
        self._conn = conn
        self.length = length      # None when chunked
        self.chunked = chunked
        self._expect = expect
        self.started = False
        self.done = not chunked and not length

    @property
    def present(self) -> bool:
        return self.chunked or bool(self.length)

    def pieces(self) -> "Iterator[memoryview]":
        """The body in pieces; each is a view of a reused buffer, valid until the next."""
        if self.done:
            return
        self._start()
        buf = self._conn.body_buffer()
        if self.chunked:
            yield from self._chunked(buf)
        else:
            yield from self._sized(buf, self.length or 0)
        self.done = True

    def _start(self) -> None:
        if self.started:
            raise RuntimeError("request body read twice")
        self.started = True
        if self._expect:
            self._conn.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _sized(self, buf: memoryview, remaining: int) -> "Iterator[memoryview]":
        stream = self._conn.stream
        while remaining:
            want = min(remaining, len(buf))
            filled = 0
            while filled < want and (filled < GATHER or filled == 0):
                filled += stream.readinto(buf[filled:want])
            remaining -= filled
            yield buf[:filled]

    def _chunked(self, buf: memoryview) -> "Iterator[memoryview]":
        stream = self._conn.stream
        while True:
            line = stream.readline().split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise BadRequest(f"bad chunk size {line[:20]!r}") from None
            if size < 0:
                raise BadRequest("bad chunk size")
            if size == 0:
                while stream.readline():  # trailers, up to the blank line
                    pass
                return
            yield from self._sized(buf, size)
            if stream.readline():
                raise BadRequest("chunk data not followed by CRLF")

    def read(self, limit: int) -> bytes:
        """The whole body; BadRequest(413) past `limit` bytes."""
        if self.length is not None and self.length > limit:
            raise BadRequest(f"body over {limit} bytes", 413)
        out = bytearray()
        for piece in self.pieces():
            out += piece
            if len(out) > limit:
                raise BadRequest(f"body over {limit} bytes", 413)
        return bytes(out)

    def drain(self) -> bool:
        """Reads and drops an unread body when cheap; False means close instead."""
        if self.done:
            return True
        if self.started or self._expect or self.chunked \
                or (self.length or 0) > DRAIN_LIMIT:
            return False
        for _ in self.pieces():
            pass
        return True


class Request:
    __slots__ = ("method", "target", "path", "raw_query", "version", "headers", "body",
                 "peer", "_query", "scheme")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 peer: str, scheme: str):
        self.method = method
        self.target = target
        path, _, self.raw_query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        self.path = unquote(path) if "%" in path else path
        self.version = version
        self.headers = headers
        self.peer = peer
        self.scheme = scheme
        self._query: dict[str, list[str]] | None = None
        self.body: Body

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.raw_query, keep_blank_values=True)
        return self._query

    def arg(self, key: str) -> str | None:
        values = self.query.get(key) if self.raw_query else None
        return values[0] if values else None


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:  # RFC 9112: ignore blank lines before a request
        lines.pop(0)
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:80] if lines else ''!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t" or line[0] in " \t":
            raise BadRequest(f"bad header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return parts[0], parts[1], parts[2], headers


class _Date:
    """The Date header, formatted once a second."""

    def __init__(self):
        self._second = 0
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


_date = _Date()


class _Connection:
    def __init__(self, server: "Server", sock, peer: str):
        self.server = server
        self.sock = sock
        self.peer = peer
        self.stream = _Stream(sock)
        self._buffer: memoryview | None = None
        self.tls = server.tls is not None
        self.linger = False
        self.fd = sock.fileno()
        # in the waiting room: when it is dropped, whether the TLS handshake is
        # still going, whether its fd is in the epoll set
        self.deadline = 0.0
        self.handshaking = False
        self.registered = False

    def body_buffer(self) -> memoryview:
        if self._buffer is None:
            self._buffer = memoryview(bytearray(BODY_BUFFER))
        return self._buffer

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ClientGone(str(e)) from None

    def serve(self) -> None:
        """Serves requests until the connection ends, blocking (serve_connection)."""
        try:
            while self._one():
                pass
        except ClientGone:
            pass
        except BadRequest as e:
            self._send_error(e.status, str(e))
            self.linger = True
        self.close()

    def run(self, room: "_WaitingRoom") -> None:
        """Serves the requests whose heads are buffered (a worker's turn), then
        hands the connection back to the waiting room, or closes it."""
        keep = False
        try:
            self.sock.setblocking(True)  # SO_RCVTIMEO/SO_SNDTIMEO bound each call
            keep = self._one()
            while keep and self.stream.head_ready():
                keep = self._one()
        except ClientGone:
            keep = False
        except BadRequest as e:
            self._send_error(e.status, str(e))
            self.linger, keep = True, False
        except OSError:
            keep = False
        if keep:
            self.sock.setblocking(False)
            room.wait(self, bool(self.stream.buf))
        else:
            self.close()

    def close(self) -> None:
        if self.linger:
            self._linger()
        try:
            self.sock.close()
        except OSError:
            pass

    def time_out(self) -> None:
        """The head did not come in time: 408 (best effort), then close."""
        if self.stream.buf.strip():
            try:
                self.sock.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                               b"Connection: close\r\n\r\n")
            except OSError:
                pass
        self.close()

    def _linger(self) -> None:
        """Half-closes, then reads and drops what the client still sends, for a while."""
        try:
            if not self.tls:
                self.sock.shutdown(socket.SHUT_WR)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                 struct.pack("ll", 0, 200_000))
            deadline, total = time.monotonic() + LINGER_SECONDS, 0
            buf = self.body_buffer()
            while time.monotonic() < deadline and total < LINGER_BYTES:
                n = self.sock.recv_into(buf)
                if not n:
                    return
                total += n
        except OSError:
            pass

    def _one(self) -> bool:
        head = self.stream.read_head()
        if head is None:
            return False
        method, target, version, headers = _parse_head(head)
        req = Request(method, target, version, headers, self.peer,
                      "https" if self.tls else "http")
        req.body = self._body(req)
        keep = self._keep_alive(req)
        started = time.perf_counter()
        try:
            resp = self.server.handler(req)
        except (ClientGone, BadRequest):
            raise
        except Exception as e:  # a bug, not the client's fault: answer, log, go on
            self.server.log_exception(req, e)
            resp = Response(500, {"Content-Type": "text/plain"}, b"internal server error\n")
        if resp.hijack is not None:
            keep = False  # the hijacker owns the connection from here on
        elif not (req.body.drain() if keep else req.body.done):
            keep = False
            self.linger = True
        if resp.stream is not None and req.version == "HTTP/1.0":
            keep = False  # no chunked encoding: the end of the stream is the close
        self._send(req, resp, keep)
        self.server.log_request(req, resp, time.perf_counter() - started)
        return keep

    def _body(self, req: Request) -> Body:
        h = req.headers
        te = h.get("transfer-encoding")
        cl = h.get("content-length")
        if te is not None:
            if cl is not None or te.lower() != "chunked":
                raise BadRequest(f"unsupported transfer-encoding {te!r}", 501
                                 if cl is None else 400)
            length, chunked = None, True
        else:
            chunked = False
            if cl is None:
                length = 0
            elif cl.isdigit():
                length = int(cl)
            else:
                raise BadRequest(f"bad content-length {cl!r}")
        expect = h.get("expect", "").lower() == "100-continue" and req.version == "HTTP/1.1"
        return Body(self, length, chunked, expect)

    @staticmethod
    def _keep_alive(req: Request) -> bool:
        conn = req.headers.get("connection", "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    def _send(self, req: Request, resp: Response, keep: bool) -> None:
        lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Unknown')}\r\n"]
        for key, value in resp.headers.items():
            lines.append(f"{key}: {value}\r\n")
        if resp.stream is not None:
            if req.version != "HTTP/1.0":
                lines.append("Transfer-Encoding: chunked\r\n")
        elif resp.hijack is None and resp.status >= 200 and resp.status not in (204, 304):
            lines.append(f"Content-Length: {resp.length}\r\n")
        lines.append(f"Date: {_date()}\r\n")
        if resp.hijack is not None:
            pass  # the handler's headers say what the connection becomes
        elif not keep:
            lines.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        if resp.hijack is not None:
            self._hand_over(head, resp.hijack)
        elif resp.stream is not None:
            self._send_stream(head, resp.stream, req.method != "HEAD",
                              req.version != "HTTP/1.0")
        elif req.method == "HEAD" or resp.status in (204, 304):
            if resp.file is not None:
                resp.file.close()
            self.send_raw(head)
        elif resp.file is not None:
            self._send_file(head, resp)
        else:
            self.send_raw(head + resp.body if len(resp.body) < 65536 else head)
            if len(resp.body) >= 65536:
                self.send_raw(resp.body)

    def _hand_over(self, head: bytes, hijack: "Callable[[socket.socket, bytes], None]"
                   ) -> None:
        try:
            self.send_raw(head)
        except ClientGone:
            abandon = getattr(hijack, "close", None)
            if abandon is not None:
                abandon()  # it will never run: let its owner know
            raise
        buffered, self.stream.buf = bytes(self.stream.buf), bytearray()
        # a hijacked stream may idle for hours (a quiet shell): no receive timeout
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
        hijack(self.sock, buffered)

    def _send_stream(self, head: bytes, stream: "Iterator[bytes]", body: bool,
                     chunked: bool) -> None:
        try:
            self.send_raw(head)
            for piece in stream if body else ():
                if piece:
                    self.send_raw(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            if chunked and body:
                self.send_raw(b"0\r\n\r\n")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # a client gone mid-stream: the generator's finally runs now

    def _send_file(self, head: bytes, resp: Response) -> None:
        f, offset, remaining = resp.file, resp.offset, resp.length
        assert f is not None
        try:
            fileno = f.fileno() if not self.tls else -1
        except (AttributeError, OSError, ValueError):
            fileno = -1
        try:
            if fileno < 0:
                self.send_raw(head)
                f.seek(offset)
                while remaining:
                    data = f.read(min(remaining, BODY_BUFFER))
                    if not data:
                        raise ClientGone("blob shorter than its size")
                    self.send_raw(data)
                    remaining -= len(data)
                return
            try:
                self.sock.sendall(head, socket.MSG_MORE)
            except OSError as e:
                raise ClientGone(str(e)) from None
            out = self.sock.fileno()
            while remaining:
                try:
                    sent = os.sendfile(out, fileno, offset, min(remaining, 1 << 30))
                except OSError as e:
                    raise ClientGone(str(e)) from None
                if sent == 0:
                    raise ClientGone("blob shorter than its size")
                offset += sent
                remaining -= sent
        finally:
            f.close()

    def _send_error(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        try:
            self.sock.sendall(head + body)
        except OSError:
            pass


class _Workers:
    """At most `limit` threads serving requests; idle ones wait for the next."""

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, conn: "_Connection", room: "_WaitingRoom") -> bool:
        """False when `limit` requests are already being served."""
        with self._lock:
            if self._busy >= self.limit:
                return False
            self._busy += 1
            if self._idle:
                self._idle -= 1
                self._queue.put(conn)
                return True
        threading.Thread(target=self._loop, args=(conn, room), daemon=True).start()
        return True

    def _loop(self, conn: "_Connection | None", room: "_WaitingRoom") -> None:
        while conn is not None:
            try:
                conn.run(room)
            except Exception as e:  # a bug: lose the connection, not the worker
                sys.stderr.write(f"error: connection {conn.peer}: {e!r}\n")
                conn.close()
            with self._lock:
                self._busy -= 1
                self._idle += 1
            conn = self._next()

    def _next(self) -> "_Connection | None":
        try:
            return self._queue.get(timeout=WORKER_IDLE)
        except queue.Empty:
            pass
        with self._lock:  # submit() puts under this lock: nothing is missed
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                self._idle -= 1
                return None


class _WaitingRoom:
    """The thread that accepts connections and reads request heads, with epoll.

    A connection is here while no request of it is being served: new, idle
    between keep-alive requests, or with a head partly received. Each has a
    deadline (`head_timeout` after its accept or its first byte, `idle_timeout`
    when idle) checked every `sweep` seconds. A whole head sends it to a worker.
    Only this thread reads, times out or evicts these connections; workers only
    hand connections back (`wait`).
    """

    def __init__(self, server: "Server", listener: socket.socket):
        self.server = server
        self.listener = listener
        self.epoll = select.epoll()
        self._lock = threading.Lock()
        self._conns: dict[int, _Connection] = {}  # fd -> connection, oldest first
        self.sweep = max(0.05, min(1.0, server.head_timeout / 4))
        self.limit = _waiting_limit(server.max_waiting, server.max_requests)

    def run(self) -> None:
        listen_fd = self.listener.fileno()
        self.epoll.register(listen_fd, select.EPOLLIN)
        next_sweep = time.monotonic() + self.sweep
        try:
            while not self.server._closed:
                for fd, _ in self.epoll.poll(max(0.0, next_sweep - time.monotonic())):
                    if fd == listen_fd:
                        self._accept()
                    else:
                        self._ready(fd)
                if time.monotonic() >= next_sweep:
                    self._expire()
                    next_sweep = time.monotonic() + self.sweep
        finally:
            self._close_all()

    def wait(self, conn: _Connection, started: bool) -> None:
        """Takes a connection in (any thread) until its next head is whole."""
        conn.deadline = time.monotonic() + (self.server.head_timeout if started
                                            else self.server.idle_timeout)
        with self._lock:
            self._conns[conn.fd] = conn
        self._arm(conn, select.EPOLLIN)

    def _arm(self, conn: _Connection, events: int) -> None:
        events |= select.EPOLLONESHOT
        try:
            if conn.registered:
                self.epoll.modify(conn.fd, events)
            else:
                self.epoll.register(conn.fd, events)
                conn.registered = True
        except (OSError, ValueError):  # closed by the server shutting down
            self._drop(conn)

    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    if self._evict():
                        continue  # out of descriptors: the oldest waiting one makes room
                    time.sleep(0.01)  # all held by requests: do not spin on the listener
                return
            if len(self._conns) >= self.limit:
                self._evict()
            self._admit(sock, peer)

    def _admit(self, sock: socket.socket, peer) -> None:
        server = self.server
        try:
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _set_timeouts(sock, server.stall_timeout)
            if server.tls is not None:
                sock = server.tls.wrap_socket(sock, server_side=True,
                                              do_handshake_on_connect=False)
        except OSError:
            sock.close()
            return
        conn = _Connection(server, sock, f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple)
                           else "unix")
        conn.handshaking = server.tls is not None
        self.wait(conn, True)

    def _ready(self, fd: int) -> None:
        with self._lock:
            conn = self._conns.get(fd)
        if conn is None:
            return
        if conn.handshaking:
            self._handshake(conn)
            return
        got = conn.stream.fill_nowait()
        if got is False:
            self._drop(conn)
        elif conn.stream.head_ready():
            with self._lock:
                del self._conns[fd]
            if not self.server._workers.submit(conn, self):
                self.server._refuse(conn)
        else:
            if got and conn.deadline - time.monotonic() > self.server.head_timeout:
                # an idle keep-alive connection began a head: it has head_timeout
                conn.deadline = time.monotonic() + self.server.head_timeout
            self._arm(conn, select.EPOLLIN)

    def _handshake(self, conn: _Connection) -> None:
        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except OSError as e:
            if type(e).__name__ == "SSLWantWriteError":
                self._arm(conn, select.EPOLLOUT)
            elif _want_io(e):
                self._arm(conn, select.EPOLLIN)
            else:
                self._drop(conn)
            return
        conn.handshaking = False
        self._ready(conn.fd)  # the request may have come with the handshake

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [c for c in self._conns.values() if c.deadline <= now]
            for conn in late:
                del self._conns[conn.fd]
        for conn in late:
            conn.time_out()

    def _evict(self) -> bool:
        with self._lock:
            if not self._conns:
                return False
            conn = self._conns.pop(next(iter(self._conns)))
        conn.close()
        return True

    def _drop(self, conn: _Connection) -> None:
        with self._lock:
            if self._conns.get(conn.fd) is conn:
                del self._conns[conn.fd]
        conn.close()

    def _close_all(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        self.epoll.close()


def _waiting_limit(wanted: int, max_requests: int) -> int:
    """At most `wanted`, and fewer than the descriptors left after the workers'."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - 2 * max_requests - 64))


def raise_nofile_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one, as Go programs do at start: every
    waiting connection is a descriptor."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _set_timeouts(sock, seconds: float) -> None:
    timeout = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)


class Server:
    """Serves requests with `handler`: see the module's docstring.

    `bind` then `serve_forever` for a listening socket; `serve_connection` serves
    one already connected socket (a test's socketpair) in the calling thread,
    blocking, where only `idle_timeout` bounds each read.
    """

    def __init__(self, handler: Callable[[Request], Response],
                 tls: "ssl.SSLContext | None" = None, access_log: bool = False,
                 idle_timeout: float = IDLE_TIMEOUT, head_timeout: float = HEAD_TIMEOUT,
                 stall_timeout: float = STALL_TIMEOUT, max_requests: int = MAX_REQUESTS,
                 max_waiting: int = MAX_WAITING):
        self.handler = handler
        self.tls = tls
        self.access_log = access_log
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.stall_timeout = stall_timeout
        self.max_requests = max_requests
        self.max_waiting = max_waiting
        self._workers = _Workers(max_requests)
        self.sock: socket.socket | None = None
        self.address: tuple[str, int] = ("", 0)
        self._closed = False

    def bind(self, addr: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(addr)
        self.sock.listen(1024)
        self.address = self.sock.getsockname()[:2]

    def bind_unix(self, path: str, mode: int = 0o600, gid: int = -1) -> None:
        """Listens on a unix socket at path (a stale socket file is replaced),
        with the mode and group set before any client can connect."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o777)  # nobody may connect before chmod/chown
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chown(path, -1, gid)
        os.chmod(path, mode)
        sock.listen(1024)
        self.use_socket(sock)

    def use_socket(self, sock: socket.socket) -> None:
        """Serves on a socket that listens already (systemd's LISTEN_FDS)."""
        self.sock = sock
        name = sock.getsockname()
        self.address = name[:2] if isinstance(name, tuple) else (name, 0)

    def serve_forever(self) -> None:
        assert self.sock is not None, "bind() first"
        self.sock.setblocking(False)
        _WaitingRoom(self, self.sock).run()

    def close(self) -> None:
        self._closed = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def _refuse(self, conn: _Connection) -> None:
        """Too many requests at once: the spec's 429 TOOMANYREQUESTS, then close."""
        body = (b'{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests"}]}')
        try:
            conn.sock.send(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
                           b"Content-Type: application/json\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        conn.close()

    def serve_connection(self, sock, peer: str = "-") -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _set_timeouts(sock, self.idle_timeout)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except OSError:
                sock.close()
                return
        _Connection(self, sock, peer).serve()

    def log_request(self, req: Request, resp: Response, seconds: float) -> None:
        if self.access_log:
            sys.stderr.write(f'{req.peer} "{req.method} {req.target} {req.version}" '
                             f"{resp.status} {resp.length} {seconds * 1000:.1f}ms\n")

    def log_exception(self, req: Request, exc: BaseException) -> None:
        import traceback
        sys.stderr.write(f"error: {req.method} {req.target}: {exc!r}\n")
        traceback.print_exception(exc, file=sys.stderr)
