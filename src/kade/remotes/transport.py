"""The HTTP seam of the registry client.

Everything above this module speaks `Transport.request(method, url, headers,
body) -> Response`; tests swap in a fake that is an in-memory registry. The
real transport is http.client with one keep-alive pool per scheme://host and
TLS trust taken from docker's /etc/docker/certs.d/<host>/ layout:

    /etc/docker/certs.d/<host[:port]>/
      *.crt            extra certificate authorities for that registry
      *.cert + *.key   a client certificate (same base name)

A Response body is a stream; read it, then close it (or use `with`), which
returns the connection to the pool when the body was read to its end.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO, Protocol

from kade.errors import Unavailable

CERTS_DIR = "/etc/docker/certs.d"
TIMEOUT = 60.0
BLOCK = 1 << 20  # http.client sends file bodies in blocks of this size (its default is 8 KiB)


class TransportError(Unavailable):
    """The request never got an HTTP answer: refused, reset, TLS, timeout."""


class TLSError(TransportError):
    """The server does not speak TLS or its certificate is not trusted."""


class Response:
    """Status, headers (lower-case names) and a body stream."""

    def __init__(self, status: int, headers: dict[str, str], body: BinaryIO,
                 reason: str = "", release=None):
        self.status = status
        self.headers = headers
        self.reason = reason or http.client.responses.get(status, "")
        self._body = body
        self._release = release

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n)

    def readinto(self, buf) -> int:
        return self._body.readinto(buf)  # type: ignore[attr-defined]

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
        else:
            self._body.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *_) -> None:
        self.close()


class Transport(Protocol):
    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None) -> Response: ...


class HTTPTransport:
    """http.client with keep-alive pools, safe to share between threads."""

    def __init__(self, certs_dir: str = CERTS_DIR, timeout: float = TIMEOUT,
                 insecure: Callable[[str], bool] = lambda host: False):
        self.certs_dir = certs_dir
        self.timeout = timeout
        self.insecure = insecure  # host -> TLS without verification (docker's insecure)
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._contexts: dict[str, object] = {}

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None) -> Response:
        scheme, host, path = split_url(url)
        start = body.tell() if body is not None and not isinstance(body, bytes) \
            and hasattr(body, "seek") else None
        conn = self._take(scheme, host)
        while True:
            fresh = conn is None
            conn = conn or self._connect(scheme, host)
            try:
                resp = self._send(conn, method, path, dict(headers or {}), body)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                # a kept-alive connection the server has closed meanwhile: once more
                if fresh or not (body is None or isinstance(body, bytes) or start is not None):
                    raise _transport_error(method, url, e) from None
                if start is not None:
                    body.seek(start)  # type: ignore[union-attr]
                conn = None
                continue
            return self._wrap(scheme, host, conn, resp)

    def _send(self, conn, method, path, headers, body) -> http.client.HTTPResponse:
        if body is not None and not isinstance(body, bytes) and "Content-Length" not in headers:
            headers = {**headers, "Transfer-Encoding": "chunked"}
            conn.request(method, path, body=_chunks(body), headers=headers,
                         encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers)
        return conn.getresponse()

    def _wrap(self, scheme, host, conn, resp) -> Response:
        headers = {k.lower(): v for k, v in resp.getheaders()}

        def release() -> None:
            reusable = not resp.will_close and (resp.isclosed() or _drain(resp))
            resp.close()
            self._give(scheme, host, conn) if reusable else conn.close()
        return Response(resp.status, headers, resp, resp.reason, release)

    def _take(self, scheme: str, host: str):
        with self._lock:
            idle = self._idle.get((scheme, host))
            return idle.pop() if idle else None

    def _give(self, scheme: str, host: str, conn) -> None:
        with self._lock:
            self._idle.setdefault((scheme, host), []).append(conn)

    def _connect(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "http":
            conn = http.client.HTTPConnection(host, timeout=self.timeout, blocksize=BLOCK)
        else:
            conn = http.client.HTTPSConnection(host, timeout=self.timeout, blocksize=BLOCK,
                                               context=self._tls(host))
        try:
            conn.connect()
        except OSError as e:
            raise _transport_error("connect", f"{scheme}://{host}", e) from None
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _tls(self, host: str):
        ctx = self._contexts.get(host)
        if ctx is None:
            ctx = tls_context(host, self.certs_dir, self.insecure(host))
            self._contexts[host] = ctx
        return ctx

    def close(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()


def tls_context(host: str, certs_dir: str = CERTS_DIR, insecure: bool = False):
    """System roots plus certs.d/<host>/*.crt; a client cert from *.cert/*.key."""
    import ssl
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    folder = os.path.join(certs_dir, host)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return ctx
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".crt"):
            ctx.load_verify_locations(cafile=path)
        elif name.endswith(".cert"):
            key = path[:-len(".cert")] + ".key"
            if os.path.exists(key):
                ctx.load_cert_chain(path, key)
    return ctx


def split_url(url: str) -> tuple[str, str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise TransportError(f'unsupported url "{url}"')
    host, slash, path = rest.partition("/")
    return scheme, host, "/" + path if slash else "/"


def _chunks(stream: BinaryIO):
    while chunk := stream.read(1 << 20):
        yield chunk


def _drain(resp: http.client.HTTPResponse, limit: int = 1 << 16) -> bool:
    """Read a small unread rest so the connection can be reused."""
    try:
        left = resp.length
        if left is not None and left > limit:
            return False
        resp.read()
        return True
    except (OSError, http.client.HTTPException):
        return False


def _transport_error(method: str, url: str, e: Exception) -> TransportError:
    import ssl
    if isinstance(e, http.client.HTTPException):
        return TransportError(f"{method} {url}: bad answer from the server: {e!r}")
    if isinstance(e, ssl.SSLError):
        return TLSError(f"{method} {url}: {e.reason or e}".replace("_", " ").lower())
    if isinstance(e, socket.timeout):
        return TransportError(f"{method} {url}: timed out")
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return TransportError(f"{method} {url}: {reason.lower()}")
