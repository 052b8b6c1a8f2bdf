"""The registry's storage semantics over one driver: blobs, uploads, manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from kade.registry.blobs import Blobs
from kade.registry.manifests import Manifests
from kade.registry.uploads import Uploads

if TYPE_CHECKING:
    from kade.registry.driver import StorageDriver


class Store(NamedTuple):
    driver: "StorageDriver"
    blobs: Blobs
    uploads: Uploads
    manifests: Manifests


def open_store(driver: "StorageDriver", max_blob_size: int = 0) -> Store:
    blobs = Blobs(driver)
    return Store(driver, blobs, Uploads(driver, blobs, max_blob_size), Manifests(driver, blobs))
