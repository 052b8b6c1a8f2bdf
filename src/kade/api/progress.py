"""Engine calls that report progress through an `emit(msg)` callback (pull, push,
build), turned into docker's JSON-message streams; and a request body as a file.

`messages(work)` runs `work(emit)` in a thread and waits for its first message:
an error before any message is raised (the handler's status code, as dockerd
answers 404 for a pull of an unknown image); after that, an error becomes the
stream's last message, `{"errorDetail": {"message": m}, "error": m}`, as docker's.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any, Callable, Iterator

_DONE = object()


def messages(work: Callable[[Callable[[dict], None]], Any],
             done: Callable[[Any], list[dict]] | None = None) -> Iterator[dict]:
    """The messages `work(emit)` emits, then `done(result)`'s."""
    q: queue.Queue = queue.Queue(maxsize=256)  # a slow client slows the work down

    def run() -> None:
        try:
            result = work(q.put)
            for msg in (done(result) if done else []):
                q.put(msg)
            q.put((_DONE, None))
        except BaseException as e:  # noqa: BLE001 - handed to the stream's reader
            q.put((_DONE, e))

    threading.Thread(target=run, name="api-progress", daemon=True).start()
    first = q.get()
    if isinstance(first, tuple) and first[0] is _DONE and first[1] is not None:
        raise first[1]
    return _rest(first, q)


def _rest(first: Any, q: queue.Queue) -> Iterator[dict]:
    item = first
    while not (isinstance(item, tuple) and item[0] is _DONE):
        yield item
        item = q.get()
    if item[1] is not None:
        yield error_message(item[1])


def error_message(e: BaseException) -> dict:
    from kade.api import httpstatus
    text = httpstatus.message_of(e)
    if httpstatus.status_of(e) == 500:
        import traceback
        traceback.print_exception(e)
    detail: dict = {"message": text}
    code = getattr(e, "code", None)
    if isinstance(code, int) and code:  # a failed build step's exit code
        detail = {"code": code, "message": text}
    return {"errorDetail": detail, "error": text}


class BodyReader(io.RawIOBase):
    """A request body (an iterator of byte pieces) as a readable binary file."""

    def __init__(self, pieces: Iterator[Any]):
        self._pieces = iter(pieces)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = bytes(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def body_file(ctx) -> io.BufferedReader:
    return io.BufferedReader(BodyReader(ctx.req.body.pieces()), 1 << 20)


def registry_credentials(header: str | None):
    """X-Registry-Auth (base64url JSON {username, password | identitytoken}) as a
    credentials function for a registry session; None: the service's config.json."""
    if not header:
        return None
    import base64
    import json

    from kade.errors import InvalidArgument
    from kade.remotes.auth import IDENTITY_TOKEN_USER, Credential
    try:
        padded = header + "=" * (-len(header) % 4)
        auth = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64url JSON") from None
    if not isinstance(auth, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    if auth.get("identitytoken"):
        cred = Credential(IDENTITY_TOKEN_USER, auth["identitytoken"])
    elif auth.get("username") or auth.get("password"):
        cred = Credential(auth.get("username", ""), auth.get("password", ""))
    else:
        return None
    return lambda host: cred
