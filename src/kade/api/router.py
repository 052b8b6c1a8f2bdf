"""Routes, the request context handlers get, and the responses they return.

A handler is `handler(ctx: Context) -> Response`; it reads path parameters from
`ctx.params`, the query through `ctx.query_*`, the JSON body with `ctx.json()`,
and calls its router's backend (`ctx.backend`). It raises kade.errors for
failures: `App.handle` maps them to status codes (kade.api.httpstatus) and
never lets a traceback reach a client.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator

from kade.api import httpstatus, versions
from kade.errors import InvalidArgument
from kade.registry.httpd import BadRequest, Request, Response

if TYPE_CHECKING:
    import socket

MAX_JSON_BODY = 32 << 20  # a create body is a few KB; this bounds memory, not use
Handler = Callable[["Context"], Response]
_PARAM = re.compile(r"\{(\w+)(?::([^}]+))?\}")


class Route:
    """`Route("POST", "/containers/{id}/start", start)`: `{name}` matches one path
    segment, `{name:.*}` the rest of the path (image names hold slashes)."""

    def __init__(self, method: str, pattern: str, handler: Handler):
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.router = ""       # set by the App: the router module's name
        self.make_backend: Callable[[Any], Any] | None = None
        self.regex = re.compile("^" + _PARAM.sub(_group, pattern) + "$")


def _group(m: re.Match) -> str:
    return f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})"


class Context:
    """One request as a handler sees it."""

    def __init__(self, app: App, req: Request, route: Route, params: dict[str, str],
                 version: tuple[int, int]):
        self.app = app
        self.req = req
        self.route = route
        self.params = params
        self.version = version  # the API version the client asked for (path prefix)

    @property
    def engine(self):
        """This thread's Engine (one SQLite connection per worker thread)."""
        return self.app.engine()

    @property
    def backend(self):
        fake = self.app.backends.get(self.route.router)
        if fake is not None:
            return fake
        assert self.route.make_backend is not None
        return self.route.make_backend(self.engine)

    def at_least(self, major: int, minor: int) -> bool:
        return self.version >= (major, minor)

    # --- the query -------------------------------------------------------------
    def query(self, name: str, default: str | None = None) -> str | None:
        value = self.req.arg(name)
        return default if value is None else value

    def query_bool(self, name: str, default: bool = False) -> bool:
        """Docker's boolean query values: absent, "", "0", "false", "no" are false
        (moby's httputils.BoolValue)."""
        value = self.req.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in ("", "0", "false", "no", "off", "none")

    def query_int(self, name: str, default: int | None = None) -> int | None:
        value = self.req.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(f'invalid value for {name}: "{value}"') from None

    def query_json(self, name: str) -> Any:
        value = self.req.arg(name)
        if not value:
            return None
        return _loads(value, name)

    def filters(self) -> dict[str, list[str]]:
        """`filters` as docker sends it: {"key": ["v"]} or the old {"key": {"v": true}}."""
        raw = self.query_json("filters") or {}
        if not isinstance(raw, dict):
            raise InvalidArgument("invalid filter: filters must be a JSON object")
        out: dict[str, list[str]] = {}
        for key, values in raw.items():
            if isinstance(values, dict):
                values = [k for k, on in values.items() if on]
            elif isinstance(values, str):
                values = [values]
            out[key] = list(values)
        return out

    # --- the body --------------------------------------------------------------
    def json(self, limit: int = MAX_JSON_BODY, default: Any = None) -> Any:
        """The body as JSON; `default` when there is none. 400 on bad JSON."""
        data = self.req.body.read(limit)
        if not data.strip():
            return default
        return _loads(data, "body")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.req.headers.get(name.lower(), default)

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.req.headers.get("connection", "").lower() and \
            self.req.headers.get("upgrade", "").lower() == "tcp"


def _loads(data: str | bytes, what: str) -> Any:
    from kade.util.fastjson import loads
    try:
        return loads(data)
    except (ValueError, TypeError) as e:
        raise InvalidArgument(f"invalid JSON in {what}: {e}") from None


# --- responses -----------------------------------------------------------------
def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode() + b"\n"
    return Response(status, {"Content-Type": "application/json"}, body)


def no_content() -> Response:
    return Response(204)


def text_response(text: str, status: int = 200) -> Response:
    return Response(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode())


def stream_response(chunks: Iterator[bytes], content_type: str = "application/json"
                    ) -> Response:
    """Sent chunked as it is produced; a client that leaves closes the iterator
    (its `finally` runs: release what it holds there)."""
    return Response(200, {"Content-Type": content_type}, stream=chunks)


def json_lines(values: Iterator[Any]) -> Iterator[bytes]:
    """Docker's streamed JSON: one object per line (events, pull progress, stats)."""
    try:
        for v in values:
            yield json.dumps(v, separators=(",", ":")).encode() + b"\n"
    finally:
        close = getattr(values, "close", None)
        if close is not None:
            close()


def hijack_response(ctx: Context, run: Callable[[socket.socket, bytes], None],
                    multiplexed: bool) -> Response:
    """The connection becomes raw bytes both ways (attach, exec start): a 101 when
    the client asked to upgrade (`Upgrade: tcp`), else a 200 without a length.
    `run(sock, buffered)` owns the socket; the server closes it after."""
    content_type = ("application/vnd.docker.multiplexed-stream"
                    if multiplexed and ctx.at_least(1, 42)
                    else "application/vnd.docker.raw-stream")
    headers = {"Content-Type": content_type}
    if ctx.wants_upgrade:
        headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        return Response(101, headers, hijack=run)
    return Response(200, headers, hijack=run)


def error_response(status: int, message: str) -> Response:
    return Response(status, {"Content-Type": "application/json"},
                    httpstatus.error_body(message))


# --- the application -----------------------------------------------------------
class App:
    """Routes requests to handlers: the httpd.Server's handler."""

    def __init__(self, root: str | None, routes: list[Route],
                 backends: dict[str, Any] | None = None, log_errors: bool = True,
                 driver: str | None = None):
        self.root = root
        self.driver = driver
        self.backends = backends or {}  # router name -> backend (unit tests' fakes)
        self.log_errors = log_errors
        self._routes: dict[str, list[Route]] = {}
        for r in routes:
            self._routes.setdefault(r.method, []).append(r)
            if r.method == "GET":
                self._routes.setdefault("HEAD", []).append(r)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.active = 0         # requests, streams and hijacked connections in flight
        self.last_activity = 0.0
        self.state: dict[str, Any] = {}  # routers' shared state (exec sessions, attaches)

    def engine(self):
        engine = getattr(self._local, "engine", None)
        if engine is None:
            from kade.engine import Engine
            engine = self._local.engine = Engine(self.root, self.driver)
        return engine

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes.get(method, ()):
            m = route.regex.match(path)
            if m:
                return route, m.groupdict()
        return None

    def handle(self, req: Request) -> Response:
        self._begin()
        resp = None
        try:
            resp = self._dispatch(req)
            return resp
        finally:
            self._end_with(resp)

    def _dispatch(self, req: Request) -> Response:
        try:
            version, path = versions.split_path(req.path)
            found = self.match(req.method, path)
            if found is None:
                return _with_headers(error_response(404, "page not found"))
            route, params = found
            return _with_headers(route.handler(Context(self, req, route, params, version)))
        except BadRequest as e:  # the body: too large, bad chunking
            return _with_headers(error_response(e.status, str(e)))
        except Exception as e:  # noqa: BLE001 - the one place errors become statuses
            status = httpstatus.status_of(e)
            if status == 500 and self.log_errors:
                import traceback
                traceback.print_exception(e)
            return _with_headers(error_response(status, httpstatus.message_of(e)))

    # --- idleness: `kade system service --time` --------------------------------
    def _begin(self) -> None:
        import time
        with self._lock:
            self.active += 1
            self.last_activity = time.monotonic()

    def _done(self) -> None:
        import time
        with self._lock:
            self.active -= 1
            self.last_activity = time.monotonic()

    def _end_with(self, resp: Response | None) -> None:
        """A stream or a hijack stays active until it ends, not when the handler returns."""
        if resp is not None and resp.stream is not None:
            resp.stream = _Tracked(resp.stream, self._done)
        elif resp is not None and resp.hijack is not None:
            resp.hijack = _TrackedHijack(resp.hijack, self._done)
        else:
            self._done()

    def idle_for(self) -> float:
        import time
        with self._lock:
            if self.active:
                return 0.0
            return time.monotonic() - self.last_activity


class _Once:
    def __init__(self, done: Callable[[], None]):
        self._done: Callable[[], None] | None = done

    def close(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()


class _Tracked(_Once):
    """A stream that reports its end once, whether exhausted, closed or never begun."""

    def __init__(self, chunks: Iterator[bytes], done: Callable[[], None]):
        super().__init__(done)
        self._chunks = chunks

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            super().close()


class _TrackedHijack(_Once):
    """httpd calls close() when the hijack never ran (the client left first)."""

    def __init__(self, run: Callable, done: Callable[[], None]):
        super().__init__(done)
        self._run = run

    def __call__(self, sock, buffered: bytes) -> None:
        try:
            self._run(sock, buffered)
        finally:
            self.close()


def _with_headers(resp: Response) -> Response:
    for key, value in versions.common_headers().items():
        resp.headers.setdefault(key, value)
    return resp


def load_routes(names: tuple[str, ...] | None = None) -> list[Route]:
    """Every route of the router modules named in kade.api.routers.ROUTERS."""
    import importlib

    from kade.api.routers import ROUTERS
    out = []
    for name in names or ROUTERS:
        mod = importlib.import_module(f"kade.api.routers.{name}")
        for route in mod.routes():
            route.router = name
            route.make_backend = mod.backend
            out.append(route)
    return out
