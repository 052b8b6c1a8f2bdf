"""`kade registry gc`: mark and sweep of the blob store.

Mark: every manifest revision of every repository is live, and so is
everything it reaches: its config and layers, an index's child manifests (and
theirs), and a referrer's subject. Sweep: every blob under `blobs/` that was
not marked is removed, with the `_layers` links that named it. Upload
sessions (`_uploads/<id>`, partial blobs of pushes that never finished) are
removed too once nothing was written to them for `upload_max_age` seconds
(distribution's purgeuploads, whose default age is a week).

Run it while the registry is not accepting pushes (as with distribution's
garbage-collect): a blob uploaded but not yet named by a manifest is garbage.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from kade.registry import catalog, paths
from kade.registry.driver import PathNotFound
from kade.util import fastjson
from kade.util.units import human_duration, human_size

if TYPE_CHECKING:
    from kade.registry.driver import StorageDriver

WEEK = 7 * 24 * 3600


class Result(NamedTuple):
    marked: int
    removed: list[str]
    freed: int
    uploads: list[str]  # "<repository>/<upload id>" of the stale uploads removed
    uploads_freed: int = 0


def collect(driver: "StorageDriver", dry_run: bool = False,
            upload_max_age: float = WEEK, log=None) -> Result:
    marked = mark(driver)
    names = catalog.repositories(driver)
    removed, freed = [], 0
    for digest in stored_blobs(driver):
        if digest in marked:
            continue
        try:
            freed += driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            pass
        removed.append(digest)
        if log:
            log(f"{'would remove' if dry_run else 'removing'} blob {digest}")
        if not dry_run:
            for name in names:
                _delete(driver, paths.layer_dir(name, digest))
            _delete(driver, paths.blob_dir(digest))
    uploads, uploads_freed = _purge_uploads(driver, upload_max_age, dry_run, log)
    return Result(len(marked), removed, freed, uploads, uploads_freed)


def mark(driver: "StorageDriver") -> set[str]:
    marked: set[str] = set()
    for name in catalog.repositories(driver):
        for digest in _digests_under(driver, paths.revisions(name)):
            _mark_manifest(driver, digest, marked)
    return marked


def _mark_manifest(driver: "StorageDriver", digest: str, marked: set[str]) -> None:
    pending = [digest]
    while pending:
        current = pending.pop()
        if current in marked:
            continue
        marked.add(current)
        try:
            doc = fastjson.loads(driver.get_content(paths.blob_data(current)))
        except (PathNotFound, ValueError, UnicodeDecodeError):
            continue
        if not isinstance(doc, dict):
            continue
        marked.update(_digests([doc.get("config"), *_as_list(doc.get("layers"))]))
        pending.extend(_digests([doc.get("subject"), *_as_list(doc.get("manifests"))]))


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _digests(descriptors: list) -> list[str]:
    return [d["digest"] for d in descriptors
            if isinstance(d, dict) and isinstance(d.get("digest"), str)]


def stored_blobs(driver: "StorageDriver") -> list[str]:
    out = []
    for algo in _list(driver, paths.BLOBS):
        for prefix in _list(driver, f"{paths.BLOBS}/{algo}"):
            for hexpart in _list(driver, f"{paths.BLOBS}/{algo}/{prefix}"):
                out.append(f"{algo}:{hexpart}")
    return out


def _digests_under(driver: "StorageDriver", base: str) -> list[str]:
    return [f"{algo}:{hexpart}" for algo in _list(driver, base)
            for hexpart in _list(driver, f"{base}/{algo}")]


def _purge_uploads(driver: "StorageDriver", max_age: float, dry_run: bool,
                   log=None) -> tuple[list[str], int]:
    removed, freed, now = [], 0, time.time()
    for name in catalog.repositories(driver, markers=("_uploads",)):
        for upload_id in _list(driver, paths.uploads(name)):
            size, last = _upload_activity(driver, name, upload_id)
            if now - last <= max_age:
                continue
            removed.append(f"{name}/{upload_id}")
            freed += size
            if log:
                idle = human_duration(now - last).lower() if last else "never written"
                log(f"{'would remove' if dry_run else 'removing'} upload {name}/{upload_id} "
                    f"({human_size(size)}, idle {idle})")
            if not dry_run:
                _delete(driver, paths.upload_dir(name, upload_id))
    return removed, freed


def _upload_activity(driver: "StorageDriver", name: str, upload_id: str) -> tuple[int, float]:
    """An upload's size so far and when it was last written (0 if never)."""
    size, last = 0, 0.0
    for path in (paths.upload_started(name, upload_id), paths.upload_data(name, upload_id)):
        try:
            info = driver.stat(path)
        except PathNotFound:
            continue
        last = max(last, info.mtime)
        if path.endswith("/data"):
            size = info.size
    return size, last


def _list(driver: "StorageDriver", path: str) -> list[str]:
    try:
        return driver.list(path)
    except PathNotFound:
        return []


def _delete(driver: "StorageDriver", path: str) -> None:
    try:
        driver.delete(path)
    except PathNotFound:
        pass
