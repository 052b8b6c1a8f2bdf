"""The one place where Kade's errors become HTTP status codes and docker's
error body, `{"message": "..."}` (moby's `httpstatus.FromError`).

The table is ordered: the first class an error is an instance of wins, so
subclasses come before their bases.
"""

from __future__ import annotations

import json

from kade import errors

STATUS: tuple[tuple[type, int], ...] = (
    (errors.CommandNotFound, 400),       # docker: the OCI runtime could not start it
    (errors.CommandNotInvocable, 400),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.AlreadyExists, 409),
    (errors.InvalidArgument, 400),
    (errors.Forbidden, 403),
    (errors.NotImplementedYet, 501),
    (errors.Unavailable, 503),
)


def status_of(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def message_of(exc: BaseException) -> str:
    """Docker's wording where clients look for it: "No such container: x"."""
    text = str(exc) or type(exc).__name__
    if text.startswith("no such "):
        text = "N" + text[1:]
    return text


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"
