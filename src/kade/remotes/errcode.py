"""Registry answers that are errors, as Kade's error vocabulary.

The distribution spec's error body is {"errors": [{"code", "message", "detail"}]};
docker prints each as "<code in lower case, spaces for _>: <message>", and so do
we. The class follows the HTTP status; `status` and `codes` stay on the error so
callers can word the docker cases ("pull access denied for ...").
"""

from __future__ import annotations


from kade.errors import (FailedPrecondition, Forbidden, InvalidArgument, KadeError, NotFound,
                         Unavailable)
from kade.util import fastjson

# codes whose meaning docker words as "pull access denied" when pulling
ACCESS_CODES = frozenset({"UNAUTHORIZED", "DENIED", "NAME_UNKNOWN"})


class RegistryError(KadeError):
    """Base of the classes below, each also the vocabulary class its status means."""

    status: int = 0
    codes: tuple[str, ...] = ()
    detail: str = ""  # the registry's own words, without what was asked


class Unauthorized(RegistryError, Forbidden):
    pass


class Denied(RegistryError, Forbidden):
    pass


class Missing(RegistryError, NotFound):
    pass


class Rejected(RegistryError, InvalidArgument):
    pass


class Busy(RegistryError, Unavailable):
    """429 and 5xx: worth retrying later."""


class Conflicting(RegistryError, FailedPrecondition):
    pass


def _class_for(status: int) -> type:
    if status == 401:
        return Unauthorized
    if status == 403:
        return Denied
    if status == 404:
        return Missing
    if status == 429 or status >= 500:
        return Busy
    if status in (409, 412, 416):
        return Conflicting
    return Rejected


def from_response(status: int, reason: str, body: bytes, what: str) -> Exception:
    """The error for a failed request; `what` names the request for the message."""
    codes, text = parse_errors(body)
    if not text:
        text = f"{status} {reason}".strip()
        if status == 429:
            text = "toomanyrequests: too many requests"
    err = _class_for(status)(f"{what}: {text}" if what else text)
    err.status = status
    err.codes = codes
    err.detail = text
    return err


def parse_errors(body: bytes) -> tuple[tuple[str, ...], str]:
    """(codes, "code: message; ...") of a distribution error body, or ((), "")."""
    try:
        doc = fastjson.loads(body) if body else None
    except ValueError:
        doc = None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) or not errors:
        return (), ""
    codes, parts = [], []
    for e in errors:
        if not isinstance(e, dict):
            continue
        code = str(e.get("code") or "UNKNOWN")
        codes.append(code)
        word = "toomanyrequests" if code == "TOOMANYREQUESTS" else code.lower().replace("_", " ")
        parts.append(f"{word}: {e.get('message') or word}")
    return tuple(codes), "; ".join(parts)


def access_problem(err: BaseException) -> bool:
    """Docker's "repository does not exist or may require login" cases."""
    if not isinstance(err, RegistryError):
        return False
    return err.status in (401, 403) or bool(ACCESS_CODES & set(err.codes))
