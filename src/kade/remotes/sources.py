"""What Kade knows about layers' compressed forms and where registries have them.

Pull and push leave a note per layer, so that a later push can skip work:
reuse the compressed blob made last time instead of compressing again, and
mount a blob from another repository of the same registry instead of
uploading it. Layout under the Kade root (docker keeps the same facts in
image/<driver>/distribution/v2metadata-by-diffid):

    distribution/
      by-diffid/<algorithm>/<hex>    JSON: {"blobs": [{"digest", "mediaType", "size",
                                                       "repositories": ["host/path", ...]}]}

One small file per diff_id, replaced atomically; losing one costs only a
compression or an upload.
"""

from __future__ import annotations

import json
import os
import threading

from kade.oci.descriptor import Descriptor

MAX_REPOSITORIES = 20  # per blob; the most recent are kept


class BlobSources:
    def __init__(self, root: str):
        self.root = os.path.join(root, "distribution", "by-diffid")
        self._lock = threading.Lock()  # atomic_write's temp name is per process

    def _path(self, diff_id: str) -> str:
        algo, _, hexpart = diff_id.partition(":")
        if not hexpart or "/" in diff_id or algo not in ("sha256", "sha512"):
            raise ValueError(f"bad diff_id {diff_id!r}")
        return os.path.join(self.root, algo, hexpart)

    def blobs(self, diff_id: str) -> list[dict]:
        try:
            with open(self._path(diff_id), "rb") as f:
                doc = json.loads(f.read())
        except (OSError, ValueError):
            return []
        blobs = doc.get("blobs") if isinstance(doc, dict) else None
        return [b for b in blobs or [] if isinstance(b, dict) and "digest" in b]

    def compressed(self, diff_id: str, media_types: set[str]) -> Descriptor | None:
        """The last recorded compressed form of a layer with one of media_types."""
        for b in reversed(self.blobs(diff_id)):
            if b.get("mediaType") in media_types:
                return Descriptor(b["mediaType"], b["digest"], int(b.get("size", 0)))
        return None

    def repositories(self, diff_id: str, digest: str) -> list[str]:
        """Repositories (host/path) seen holding the blob, most recent first."""
        for b in self.blobs(diff_id):
            if b["digest"] == digest:
                return list(reversed(b.get("repositories") or []))
        return []

    def record(self, diff_id: str, desc: Descriptor, repository: str | None = None) -> None:
        with self._lock:
            blobs = self.blobs(diff_id)
            entry = next((b for b in blobs if b["digest"] == desc.digest), None)
            changed = entry is None
            if entry is None:
                entry = {"digest": desc.digest, "mediaType": desc.media_type,
                         "size": desc.size, "repositories": []}
                blobs.append(entry)
            repos = entry.setdefault("repositories", [])
            if repository and (not repos or repos[-1] != repository):
                if repository in repos:
                    repos.remove(repository)
                repos.append(repository)
                del repos[:-MAX_REPOSITORIES]
                changed = True
            if changed:
                self._write(diff_id, {"blobs": blobs})

    def _write(self, diff_id: str, doc: dict) -> None:
        from kade.util.fs import atomic_write
        path = self._path(diff_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, json.dumps(doc).encode(), sync=False)
