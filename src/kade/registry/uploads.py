"""Blob uploads: the state machine behind POST, PATCH, PUT, GET and DELETE of
`/v2/<name>/blobs/uploads/<id>`.

    start ──> (append)* ──> finish(digest) ──> the blob is in the repository
      │           │               │
      └───────────┴──> cancel     └──> digest mismatch: DIGEST_INVALID, upload removed

An upload is a directory `_uploads/<id>` holding `data` (the bytes received so
far, in order) and `startedat`. Its offset is the size of `data`; a chunk that
does not start there is refused with 416 and changes nothing. The bytes are
hashed as they arrive and the hash state is kept in memory between requests;
after a restart (or for another algorithm) `finish` re-hashes `data` instead.

`finish` verifies the digest, fsyncs `data` and renames it into `blobs/`, then
links the blob into the repository and removes the upload: nothing is visible
before it is verified, and two uploads of the same blob at once both end with
one whole copy (the second rename replaces identical bytes).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING

from kade.registry import errcode, names, paths
from kade.registry.driver import PathNotFound
from kade.registry.errcode import RegistryError

if TYPE_CHECKING:
    from kade.registry.blobs import Blobs
    from kade.registry.driver import StorageDriver

_ID_LEN = 36  # str(uuid4())
_HEX = set("0123456789abcdef-")
_MAX_CACHED_HASHES = 4096


def unknown(upload_id: str) -> RegistryError:
    return RegistryError(errcode.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id},
                         message=f'blob upload "{upload_id}" unknown to registry')


def headers(name: str, upload_id: str, offset: int) -> dict[str, str]:
    """Where an upload is and how much it holds (the spec's inclusive Range)."""
    return {"Location": f"/v2/{name}/blobs/uploads/{upload_id}",
            "Range": f"0-{max(offset - 1, 0)}", "Docker-Upload-UUID": upload_id}


def check_id(upload_id: str) -> str:
    if len(upload_id) != _ID_LEN or not set(upload_id) <= _HEX:
        raise unknown(upload_id)
    return upload_id


class Uploads:
    """Every upload of one registry; `open` gives the one a request works on."""

    def __init__(self, driver: "StorageDriver", blobs: "Blobs", max_blob_size: int = 0):
        self.driver = driver
        self.blobs = blobs
        self.max_blob_size = max_blob_size
        self._lock = threading.Lock()
        self._busy: set[tuple[str, str]] = set()
        # (name, id) -> (algorithm, hash object, offset it covers)
        self._hashes: OrderedDict[tuple[str, str], tuple[str, object, int]] = OrderedDict()

    def start(self, name: str, algorithm: str = "sha256") -> str:
        names.validate_algorithm(algorithm)
        upload_id = str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()
        self.driver.put_content(paths.upload_started(name, upload_id), stamp)
        self.driver.writer(paths.upload_data(name, upload_id)).close()
        self._remember(name, upload_id, algorithm, hashlib.new(algorithm), 0)
        return upload_id

    def offset(self, name: str, upload_id: str) -> int:
        try:
            return self.driver.stat(paths.upload_data(name, check_id(upload_id))).size
        except PathNotFound:
            raise unknown(upload_id) from None

    def open(self, name: str, upload_id: str) -> "Upload":
        self.offset(name, upload_id)
        key = (name, upload_id)
        with self._lock:
            if key in self._busy:
                raise RegistryError(errcode.BLOB_UPLOAD_INVALID, {"upload": upload_id},
                                    message=f'blob upload "{upload_id}" is busy with '
                                            "another request")
            self._busy.add(key)
            cached = self._hashes.pop(key, None)
        return Upload(self, name, upload_id, cached)

    def cancel(self, name: str, upload_id: str) -> None:
        self.offset(name, upload_id)
        self._forget(name, upload_id)
        try:
            self.driver.delete(paths.upload_dir(name, upload_id))
        except PathNotFound:
            raise unknown(upload_id) from None

    def _remember(self, name: str, upload_id: str, algorithm: str, h, offset: int) -> None:
        with self._lock:
            self._hashes[(name, upload_id)] = (algorithm, h, offset)
            while len(self._hashes) > _MAX_CACHED_HASHES:
                self._hashes.popitem(last=False)

    def _forget(self, name: str, upload_id: str) -> None:
        with self._lock:
            self._hashes.pop((name, upload_id), None)

    def _release(self, name: str, upload_id: str) -> None:
        with self._lock:
            self._busy.discard((name, upload_id))


class Upload:
    """One request's hold on an upload: append bytes, then maybe finish.

    Use as a context manager; leaving it keeps the upload for the next request
    unless `finish` or `cancel` ended it.
    """

    def __init__(self, uploads: Uploads, name: str, upload_id: str, cached):
        self._uploads = uploads
        self.name, self.id = name, upload_id
        self._writer = uploads.driver.writer(paths.upload_data(name, upload_id), append=True)
        self.offset = self._writer.size
        if cached is not None and cached[2] == self.offset:
            self.algorithm, self._hash = cached[0], cached[1]
        else:
            self.algorithm, self._hash = "sha256", None
        self._done = False

    def check_start(self, start: int) -> None:
        """A chunk must begin where the upload is; 416 otherwise (RFC 9110)."""
        if start != self.offset:
            raise RegistryError(errcode.BLOB_UPLOAD_INVALID,
                                {"offset": self.offset, "start": start}, status=416,
                                message=f"chunk starts at {start}, but the upload is at "
                                        f"{self.offset}",
                                headers=self.headers())

    def check_room(self, length: int) -> None:
        limit = self._uploads.max_blob_size
        if limit and self.offset + length > limit:
            raise RegistryError(errcode.SIZE_INVALID, {"limit": limit}, status=413,
                                message=f"blob exceeds this registry's limit of {limit} bytes")

    def write(self, data) -> None:
        """Appends one piece; `data` may be a memoryview of a reused buffer."""
        n = len(data)
        if self._uploads.max_blob_size:
            self.check_room(n)
        if self._hash is not None:
            self._hash.update(data)
        self._writer.write(data)
        self.offset += n

    def headers(self) -> dict[str, str]:
        return headers(self.name, self.id, self.offset)

    def finish(self, digest: str, expected_size: int | None = None) -> str:
        """Verifies and publishes the blob; returns its digest."""
        names.validate_digest(digest)
        algorithm = digest.partition(":")[0]
        self._writer.commit()
        got = self._digest(algorithm)
        if got != digest or (expected_size is not None and expected_size != self.offset):
            self.cancel()
            if got != digest:
                raise RegistryError(errcode.DIGEST_INVALID, {"digest": digest, "got": got},
                                    message=f'upload digest "{got}" does not match "{digest}"')
            raise RegistryError(errcode.SIZE_INVALID, {"size": self.offset},
                                message=f"upload is {self.offset} bytes, not {expected_size}")
        driver = self._uploads.driver
        driver.move(paths.upload_data(self.name, self.id), paths.blob_data(digest))
        self._uploads.blobs.link(self.name, digest)
        self._end()
        return digest

    def cancel(self) -> None:
        self._writer.cancel()
        self._end()

    def _digest(self, algorithm: str) -> str:
        if self._hash is not None and self.algorithm == algorithm:
            return f"{algorithm}:{self._hash.hexdigest()}"
        h = hashlib.new(algorithm)
        with self._uploads.driver.reader(paths.upload_data(self.name, self.id)) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return f"{algorithm}:{h.hexdigest()}"

    def _end(self) -> None:
        self._done = True
        try:
            self._uploads.driver.delete(paths.upload_dir(self.name, self.id))
        except PathNotFound:
            pass
        self._uploads._forget(self.name, self.id)

    def __enter__(self) -> "Upload":
        return self

    def __exit__(self, exc_type, exc, _tb) -> None:
        try:
            if not self._done and isinstance(exc, OSError) \
                    and exc.errno in errcode.STORAGE_ERRNOS:
                # the storage failed (a full disk): the bytes are not what the client
                # sent, and they hold space; the client starts over
                self.cancel()
            elif not self._done:
                self._writer.close()
                if exc_type is None and self._hash is not None:
                    self._uploads._remember(self.name, self.id, self.algorithm, self._hash,
                                            self.offset)
        finally:
            self._uploads._release(self.name, self.id)
