"""`kade push`: a local image to a registry, as docker pushes it.

    layers    in parallel; for each: the compressed blob to send (the pulled blob
              as it is; a local, uncompressed layer compressed now with ISA-L gzip
              or zstd, or the form compressed by an earlier push), then
              HEAD          the registry has it             -> "Layer already exists"
              mount         another repository of the same
                            registry had it (BlobSources)    -> "Mounted from <path>"
              upload        POST + PUT ?digest=              -> "Pushed"
    config    HEAD, or upload
    manifest  docker's schema 2 (or OCI's, for zstd layers), laid out as docker
              lays it out, PUT under the tag -> "<tag>: digest: ... size: N"

A layer compressed for a push is kept in the content store and noted per
diff_id, so the next push of any image with that layer neither compresses
nor, when the registry has it, uploads. The repo digest is added to the
image's record, as docker does.
"""

from __future__ import annotations

import json
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from kade.errors import FailedPrecondition, Forbidden, InvalidArgument, NotFound
from kade.images.service import ImageService
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci.descriptor import Descriptor
from kade.oci.reference import Reference
from kade.remotes import errcode
from kade.remotes.client import Repository, Session
from kade.remotes.progress import Emit, discard, message
from kade.remotes.sources import BlobSources

JOBS = 4  # parallel layer uploads (docker: 5)
MOUNT_CANDIDATES = 3
GZIP_TYPES = {mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER_GZIP,
              "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"}
ZSTD_TYPES = {mt.OCI_LAYER_ZSTD, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"}
UNCOMPRESSED_TYPES = {mt.DOCKER_LAYER, mt.OCI_LAYER,
                      "application/vnd.oci.image.layer.nondistributable.v1.tar"}

PushResult = namedtuple("PushResult", "tag digest size")


class Pusher:
    def __init__(self, images: ImageService, session: Session, *,
                 sources: BlobSources | None = None, emit: Emit = discard,
                 compression: str = "gzip", jobs: int = JOBS):
        if compression not in ("gzip", "zstd"):
            raise InvalidArgument(f'unknown compression "{compression}"; use gzip or zstd')
        self.images = images
        self.session = session
        self.sources = sources
        self.emit = emit
        self.compression = compression
        self.jobs = jobs
        self._lock = threading.Lock()

    def push(self, ref: Reference) -> PushResult:
        image_id = self.images.try_resolve(str(ref))
        if image_id is None:
            raise NotFound(f"an image does not exist locally with the tag: {ref.familiar()}")
        rec = self.images.record(image_id)
        repo = self.session.repository(ref, push=True)
        layers = self._push_layers(repo, rec["layers"], ref)
        config = self.images.content.read(image_id)
        oci = any(d.media_type in ZSTD_TYPES for d in layers)
        self._push_blob(repo, Descriptor(mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG, image_id,
                                         len(config)), None)
        data, media_type = manifest_bytes(image_id, len(config), layers, oci)
        try:
            digest = repo.put_manifest(ref.tag, data, media_type)
        except errcode.RegistryError as e:
            raise _push_error(ref, e) from None
        self.emit(message(f"{ref.tag}: digest: {digest} size: {len(data)}"))
        self._add_repo_digest(image_id, f"{ref.repository}@{digest}")
        return PushResult(ref.tag, digest, len(data))

    # --- layers ----------------------------------------------------------------
    def _push_layers(self, repo: Repository, layers: list[dict], ref: Reference,
                     ) -> list[Descriptor]:
        for lay in reversed(layers):
            self.emit(message("Preparing", id=dg.short_id(lay["diff_id"])))
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="kade-push") as pool:
            futures = [pool.submit(self._push_layer, repo, lay, ref) for lay in layers]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def _push_layer(self, repo: Repository, lay: dict, ref: Reference) -> Descriptor:
        diff_id = lay["diff_id"]
        short = dg.short_id(diff_id)
        desc = self._remembered(lay)
        if desc is None or not self.images.content.exists(desc.digest):
            if desc is not None and self._registry_has(repo, desc, ref):
                self.emit(message("Layer already exists", id=short))
                self._note(diff_id, desc, ref)
                return desc
            desc = self._compressed(lay)
        self._push_blob(repo, desc, diff_id, short)
        self._note(diff_id, desc, ref)
        return desc

    def _registry_has(self, repo: Repository, desc: Descriptor, ref: Reference) -> bool:
        try:
            return repo.blob_exists(desc.digest)
        except errcode.RegistryError as e:
            raise _push_error(ref, e) from None

    def _note(self, diff_id: str, desc: Descriptor, ref: Reference) -> None:
        if self.sources is not None:
            self.sources.record(diff_id, desc, ref.repository)

    def _remembered(self, lay: dict) -> Descriptor | None:
        """The compressed blob we would send, if we know it without compressing."""
        if lay["mediaType"] not in UNCOMPRESSED_TYPES:
            return Descriptor(lay["mediaType"], lay["digest"], lay["size"])
        if self.sources is None:
            return None
        return self.sources.compressed(lay["diff_id"], self._types())

    def _types(self) -> set[str]:
        return GZIP_TYPES if self.compression == "gzip" else ZSTD_TYPES

    def _compressed(self, lay: dict) -> Descriptor:
        """The layer's blob as it will be pushed; compressing an uncompressed one."""
        content = self.images.content
        if lay["mediaType"] not in UNCOMPRESSED_TYPES:
            if not content.exists(lay["digest"]):
                raise FailedPrecondition(f"layer {lay['digest']} is missing from the content "
                                         "store: pull or load the image again")
            return Descriptor(lay["mediaType"], lay["digest"], lay["size"])
        from kade.archive import compressor
        kind = self.compression
        with content.open(lay["digest"]) as src, content.writer() as w:
            with compressor(_Sink(w), kind) as z:  # type: ignore[arg-type]
                while chunk := src.read(1 << 20):
                    z.write(chunk)
            digest = w.commit()
            size = w.size
        media_type = mt.DOCKER_LAYER_GZIP if kind == "gzip" else mt.OCI_LAYER_ZSTD
        desc = Descriptor(media_type, digest, size)
        if self.sources is not None:
            self.sources.record(lay["diff_id"], desc)
        return desc

    def _push_blob(self, repo: Repository, desc: Descriptor, diff_id: str | None,
                   short: str = "") -> None:
        """HEAD, else mount, else upload; layer lines only when short is given."""
        try:
            if repo.blob_exists(desc.digest):
                if short:
                    self.emit(message("Layer already exists", id=short))
                return
            location = None
            for source in self._mount_sources(repo, diff_id, desc.digest):
                location = repo.mount_blob(desc.digest, source)
                if location is None:
                    if short:
                        self.emit(message(f"Mounted from {source}", id=short))
                    return
            with self.images.content.open(desc.digest) as f:
                body = _Progress(f, self.emit, short, desc.size) if short else f
                repo.upload_blob(body, desc.digest, desc.size,  # type: ignore[arg-type]
                                 location)
        except errcode.RegistryError as e:
            raise _push_error(Reference(repo.domain, repo.path), e) from None
        if short:
            self.emit(message("Pushed", id=short))

    def _mount_sources(self, repo: Repository, diff_id: str | None, digest: str) -> list[str]:
        if self.sources is None or diff_id is None:
            return []
        prefix = repo.domain + "/"
        paths = [r[len(prefix):] for r in self.sources.repositories(diff_id, digest)
                 if r.startswith(prefix) and r[len(prefix):] != repo.path]
        return paths[:MOUNT_CANDIDATES]

    def _add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        from kade.util.ids import parse_rfc3339
        with self._lock:
            rec = self.images.record(image_id)
            digests = rec.get("repo_digests", [])
            if repo_digest in digests:
                return
            rec["repo_digests"] = sorted(set(digests) | {repo_digest})
            created = parse_rfc3339(self.images.config(image_id).get("created", "")) or 0.0
            self.images.db.put_image(image_id, created, rec)


def manifest_bytes(config_digest: str, config_size: int, layers: list[Descriptor],
                   oci: bool) -> tuple[bytes, str]:
    """A schema 2 (or OCI) manifest laid out like docker's (3-space indent), so the
    same image pushed by docker and by Kade gets the same digest."""
    def layer_type(media_type: str) -> str:
        if media_type in ZSTD_TYPES:
            return mt.OCI_LAYER_ZSTD
        return mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER_GZIP

    media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                      "size": config_size, "digest": config_digest},
           "layers": [{"mediaType": layer_type(d.media_type), "size": d.size,
                       "digest": d.digest} for d in layers]}
    return json.dumps(doc, indent=3).encode(), media_type


def _push_error(ref: Reference, e: errcode.RegistryError) -> Exception:
    detail = getattr(e, "detail", "") or str(e)
    if errcode.access_problem(e):
        return Forbidden(f"push access denied for {ref.familiar_name()}: {detail}; "
                         f"use 'kade login {ref.domain}' first")
    return e  # type: ignore[return-value]


class _Sink:
    """A content writer as a file for the compressor (which also calls flush)."""

    def __init__(self, writer):
        self.write = writer.write

    def flush(self) -> None:
        pass


class _Progress:
    """A blob being uploaded, reporting docker's "Pushing" progress."""

    def __init__(self, f, emit: Emit, short: str, total: int):
        self._f = f
        self._emit = emit
        self._short = short
        self._total = total
        self._n = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._n += len(data)
        if data:
            self._emit(message("Pushing", id=self._short, current=self._n, total=self._total))
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        self._n = pos
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()
