"""Drive kade.api's App without a socket: a request in, the Response out.

    app = make_app("volumes", fake)        # only that router's routes, its backend faked
    resp = call(app, "GET", "/v1.43/volumes?filters=...")
    assert resp.status == 200 and body_json(resp) == {...}
"""

from __future__ import annotations

import json
from typing import Any

from kade.api.router import App, load_routes
from kade.registry.httpd import Request, Response


class FakeBody:
    """httpd.Body's reading surface over bytes."""

    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)
        self.chunked = False
        self.present = bool(data)
        self.done = False

    def pieces(self):
        if self.data:
            yield memoryview(self.data)
        self.done = True

    def read(self, limit: int) -> bytes:
        from kade.registry.httpd import BadRequest
        if len(self.data) > limit:
            raise BadRequest(f"body over {limit} bytes", 413)
        self.done = True
        return self.data


def make_app(router: str, fake: Any) -> App:
    return App(None, load_routes((router,)), backends={router: fake}, log_errors=False)


def call(app: App, method: str, target: str, body: bytes | Any = b"",
         headers: dict[str, str] | None = None) -> Response:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    req = Request(method, target, "HTTP/1.1",
                  {k.lower(): v for k, v in (headers or {}).items()}, "test", "http")
    req.body = FakeBody(body)  # type: ignore[assignment]
    return app.handle(req)


def body_bytes(resp: Response) -> bytes:
    if resp.stream is not None:
        try:
            return b"".join(resp.stream)
        finally:
            close = getattr(resp.stream, "close", None)
            if close is not None:
                close()
    return resp.body


def body_json(resp: Response) -> Any:
    return json.loads(body_bytes(resp))


def json_stream(resp: Response) -> list:
    return [json.loads(line) for line in body_bytes(resp).splitlines() if line.strip()]
