"""Blobs as a repository sees them: the shared content-addressed store plus links.

A blob belongs to a repository when `_layers/<algo>/<hex>/link` exists there;
its bytes live once, under `blobs/` (see kade.registry.paths). Deleting a blob
from a repository removes the link only; `kade registry gc` frees the bytes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from kade.registry import errcode, paths
from kade.registry.driver import PathNotFound
from kade.registry.errcode import RegistryError

if TYPE_CHECKING:
    from typing import BinaryIO

    from kade.registry.driver import StorageDriver


def unknown(digest: str) -> RegistryError:
    return RegistryError(errcode.BLOB_UNKNOWN, {"digest": digest},
                         message=f'blob "{digest}" unknown to registry')


class Blobs:
    def __init__(self, driver: "StorageDriver"):
        self.driver = driver

    def size(self, name: str, digest: str) -> int:
        """The blob's size if `name` holds it, else BLOB_UNKNOWN."""
        try:
            self.driver.stat(paths.layer_link(name, digest))
            return self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            raise unknown(digest) from None

    def open(self, name: str, digest: str, offset: int = 0) -> "tuple[BinaryIO, int]":
        size = self.size(name, digest)
        try:
            return self.driver.reader(paths.blob_data(digest), offset), size
        except PathNotFound:
            raise unknown(digest) from None

    def exists(self, digest: str) -> bool:
        try:
            self.driver.stat(paths.blob_data(digest))
            return True
        except PathNotFound:
            return False

    def linked(self, name: str, digest: str) -> bool:
        try:
            self.driver.stat(paths.layer_link(name, digest))
            return True
        except PathNotFound:
            return False

    def link(self, name: str, digest: str) -> None:
        """Makes an existing blob part of `name` (after its bytes are in place)."""
        self.driver.put_content(paths.layer_link(name, digest), digest.encode())

    def unlink(self, name: str, digest: str) -> None:
        try:
            self.driver.delete(paths.layer_dir(name, digest))
        except PathNotFound:
            raise unknown(digest) from None

    def mount(self, name: str, source: str, digest: str) -> bool:
        """Links `source`'s blob into `name`; False when `source` does not hold it."""
        if not (self.linked(source, digest) and self.exists(digest)):
            return False
        self.link(name, digest)
        return True

    def put_small(self, data: bytes, algorithm: str = "sha256") -> str:
        """Stores bytes held in memory (manifests) under their digest."""
        digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        if not self.exists(digest):
            self.driver.put_content(paths.blob_data(digest), data)
        return digest

    def read_small(self, digest: str) -> bytes:
        try:
            return self.driver.get_content(paths.blob_data(digest))
        except PathNotFound:
            raise unknown(digest) from None
