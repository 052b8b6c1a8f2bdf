"""The distribution spec's error codes, registered in one table.

Every error the registry answers with is a `RegistryError` carrying one of the
`ErrorCode`s below; `ErrorCode.status` is the only place a code becomes an
HTTP status (a raise may override it where the spec asks for a different
status with the same code, e.g. 416 for an out-of-order chunk). The JSON body
is the spec's envelope:

    {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                 "detail": {"digest": "sha256:..."}}]}
"""

from __future__ import annotations

import errno
import json
import os
from typing import NamedTuple

from kade.errors import KadeError


class ErrorCode(NamedTuple):
    value: str
    message: str
    status: int


TABLE: dict[str, ErrorCode] = {}


def _register(value: str, message: str, status: int) -> ErrorCode:
    code = ErrorCode(value, message, status)
    TABLE[value] = code
    return code


# the spec's table (code-1 .. code-14), in its order
BLOB_UNKNOWN = _register("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = _register("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = _register("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = _register("DIGEST_INVALID",
                           "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = _register("MANIFEST_BLOB_UNKNOWN",
                                  "manifest references a manifest or blob unknown to registry",
                                  400)
MANIFEST_INVALID = _register("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = _register("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = _register("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = _register("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = _register("SIZE_INVALID", "provided length did not match content length", 400)
UNAUTHORIZED = _register("UNAUTHORIZED", "authentication required", 401)
DENIED = _register("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = _register("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = _register("TOOMANYREQUESTS", "too many requests", 429)
# not in the spec's table; only for failures of the registry itself (5xx)
UNKNOWN = _register("UNKNOWN", "unknown error", 500)


class RegistryError(KadeError):
    """An error answered to a registry client: a code, an optional detail."""

    def __init__(self, code: ErrorCode, detail=None, *, message: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.message = message or code.message
        self.status = status or code.status
        self.headers = headers or {}

    def to_json(self) -> dict:
        entry: dict = {"code": self.code.value, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


# failures of the storage under the registry, not of the request or of the code:
# answered as distribution does (500 UNKNOWN) with what went wrong, logged in one line
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def storage_error(e: OSError) -> RegistryError | None:
    """The answer to a storage failure such as a full disk; None for other errors."""
    if e.errno not in STORAGE_ERRNOS:
        return None
    return RegistryError(UNKNOWN, message=os.strerror(e.errno).lower())


def body(*errs: RegistryError) -> bytes:
    return json.dumps({"errors": [e.to_json() for e in errs]}).encode()
