"""`kade pull`: a registry's image into the local store, as docker pulls it.

    resolve   the tag or digest -> manifest (an index picks the platform's manifest);
              every manifest is checked against its digest and the 4 MiB limit
    config    fetched and verified; its rootfs.diff_ids must pair with the layers
    layers    each in a pool thread: downloaded into the content store (verified,
              resumable, skipped when present), then, with the overlay snapshotter,
              extracted into a staging tree of its own while the other layers
              download and extract; the decompressed tar must hash to its diff_id
    commit    on the calling thread, in order: prepare the layer's snapshot on its
              parent, move the staged tree in (one rename), commit it under the
              chainID (the copy snapshotter extracts in place here instead)
    record    ImageService.create_from_config_bytes with the config's exact bytes,
              the tag, and repo@<manifest digest> as the repo digest

Staging trees live beside the snapshots, on the same filesystem:

    <root>/distribution/unpack/<pid>-<random>/    one layer's files, until committed

Nothing is visible before it is verified: blobs commit only with the right
digest, a snapshot only with the right diff_id, the image row only after
every layer is committed; a staging tree is removed on failure, and trees
of dead pulls are swept by the next pull. Messages are docker's JSON
messages (kade.remotes.progress), so the CLI prints docker's lines.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO
from collections import namedtuple
from concurrent.futures import Future, ThreadPoolExecutor

from kade.errors import AlreadyExists, FailedPrecondition, Forbidden, InvalidArgument, NotFound
from kade.images.service import ImageService, LayerInput
from kade.oci import digest as dg
from kade.oci.descriptor import Descriptor
from kade.oci.reference import Reference
from kade.remotes import errcode, manifests
from kade.remotes.client import Repository, Session
from kade.remotes.fetch import fetch_blob, resume_path
from kade.remotes.progress import Emit, discard, message
from kade.remotes.sources import BlobSources
from kade.util import fastjson

JOBS = 6  # layers downloaded and extracted at once (docker: 3 downloads)
MAX_INDEX_DEPTH = 2
MAX_CONFIG = 8 << 20

PullResult = namedtuple("PullResult", "image_id digest name status")
# a layer to pull: the manifest's descriptor, a local blob for it when its snapshot
# exists already, and whether it must be unpacked
_Plan = namedtuple("_Plan", "remote local diff_id chain_id unpack")


class _Cancelled(Exception):
    """Raised inside a download thread when the pull has already failed."""


class Puller:
    def __init__(self, images: ImageService, session: Session, *,
                 sources: BlobSources | None = None, emit: Emit = discard,
                 platform: str | None = None, jobs: int = JOBS, staging: str | None = None):
        self.images = images
        self.staging = staging  # a directory beside the snapshots for side-by-side unpacks
        self.session = session
        self.sources = sources
        self.emit = emit
        self.platform_given = bool(platform)
        self.platform = manifests.parse_platform(platform)
        self.jobs = jobs

    # --- the public verbs ------------------------------------------------------
    def pull(self, ref: Reference) -> PullResult:
        """Pull one tag or digest; docker's status lines go to emit."""
        repo = self.session.repository(ref)
        label = ref.tag if ref.digest is None else ref.familiar()
        digest, manifest = self._resolve(repo, ref)
        self.emit(message(f"Pulling from {ref.path}", id=label))
        config_bytes = self._config(repo, manifest, ref)
        image_id = dg.of_bytes(config_bytes)
        old = self.images.try_resolve(str(ref))
        layers = self._existing_layers(image_id) or self._layers(repo, manifest, config_bytes)
        tags = [str(ref)] if ref.digest is None else []
        self.images.create_from_config_bytes(config_bytes, layers, tags,
                                             repo_digest=f"{ref.repository}@{digest}")
        self._note_sources(ref, layers)
        self.emit(message(f"Digest: {digest}"))
        what = "Image is up to date for" if old == image_id else "Downloaded newer image for"
        return PullResult(image_id, digest, str(ref), f"{what} {ref.familiar()}")

    def _existing_layers(self, image_id: str) -> list[LayerInput] | None:
        """The layers of an image we have whole already (docker then shows no layers)."""
        rec = self.images.db.get_image(image_id)
        if rec is None:
            return None
        layers = [LayerInput(Descriptor(lay["mediaType"], lay["digest"], lay["size"]),
                             lay["diff_id"]) for lay in rec["layers"]]
        chains = dg.chain_ids([lay.diff_id for lay in layers])
        if not all(self.images.snapshots.exists(c) for c in chains):
            return None
        return layers

    def pull_all_tags(self, ref: Reference) -> list[PullResult]:
        repo = self.session.repository(ref)
        try:
            tags = sorted(repo.tags())
        except errcode.RegistryError as e:
            raise _pull_error(ref, e) from None
        if not tags:
            raise NotFound(f"no tags found for {ref.familiar_name()}")
        return [self.pull(ref.with_tag(tag)) for tag in tags]

    # --- manifests and config --------------------------------------------------
    def _resolve(self, repo: Repository, ref: Reference) -> tuple[str, manifests.Manifest]:
        """The digest to record (the top-level one, as docker) and the image manifest."""
        wanted = ref.digest or ref.tag
        try:
            data, ctype, digest = repo.get_manifest(wanted)
        except errcode.RegistryError as e:
            raise _pull_error(ref, e) from None
        parsed = manifests.parse(data, ctype, f"manifest for {ref.familiar()}")
        for _ in range(MAX_INDEX_DEPTH):
            if isinstance(parsed, manifests.Manifest):
                return digest, parsed
            chosen = manifests.select(parsed, self.platform)
            try:
                data, ctype, _ = repo.get_manifest(chosen.digest)
            except errcode.RegistryError as e:
                raise _pull_error(ref, e) from None
            _check_size(chosen, data)
            parsed = manifests.parse(data, ctype or chosen.media_type,
                                     f"manifest {chosen.digest} of {ref.familiar()}")
        if isinstance(parsed, manifests.Manifest):
            return digest, parsed
        raise InvalidArgument(f"manifest list for {ref.familiar()} nests too deep")

    def _config(self, repo: Repository, manifest: manifests.Manifest, ref: Reference) -> bytes:
        desc = manifest.config
        if desc.size > MAX_CONFIG:
            raise InvalidArgument(f"image config of {ref.familiar()} is too large "
                                  f"({desc.size} bytes)")
        content = self.images.content
        try:
            fetch_blob(repo, desc, content)
        except FailedPrecondition as e:
            raise FailedPrecondition(f"image config verification failed for digest "
                                     f"{desc.digest}: {e}") from None
        data = content.read(desc.digest)
        try:
            config = fastjson.loads(data)
            diff_ids = config["rootfs"]["diff_ids"]
        except ValueError as e:
            raise InvalidArgument(f"image config {desc.digest} of {ref.familiar()} "
                                  f"is malformed: {e}") from None
        except (KeyError, TypeError):
            raise InvalidArgument(f"image config {desc.digest} of {ref.familiar()} "
                                  "is malformed") from None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest.layers):
            raise InvalidArgument("layers from manifest don't match image configuration")
        for d in diff_ids:
            dg.validate(d)
        self._check_platform(config, ref)
        return data

    def _check_platform(self, config: dict, ref: Reference) -> None:
        if not self.platform_given:
            return
        have = {"os": config.get("os", ""), "architecture": config.get("architecture", ""),
                "variant": config.get("variant")}
        if not manifests.matches(have, self.platform):
            raise NotFound(f"image with reference {ref.familiar()} was found but does not "
                           f"match the specified platform: wanted "
                           f"{manifests.platform_string(self.platform)}, actual: "
                           f"{manifests.platform_string(manifests.normalize(have))}")

    # --- layers ----------------------------------------------------------------
    def _layers(self, repo: Repository, manifest: manifests.Manifest,
                config_bytes: bytes) -> list[LayerInput]:
        diff_ids = fastjson.loads(config_bytes)["rootfs"]["diff_ids"]
        chain_ids = dg.chain_ids(diff_ids)
        snaps = self.images.snapshots
        plans = []
        for desc, diff_id, chain_id in zip(manifest.layers, diff_ids, chain_ids):
            present = snaps.exists(chain_id)
            if present:
                snaps.claim(chain_id)  # a killed pull's, maybe: this one's until recorded
            status = "Already exists" if present else "Pulling fs layer"
            self.emit(message(status, id=dg.short_id(desc.digest)))
            local = self._local_blob(desc, diff_id) if present else None
            plans.append(_Plan(desc, local, diff_id, chain_id, not present))
        return self._download_and_unpack(repo, plans)

    def _local_blob(self, desc: Descriptor, diff_id: str) -> Descriptor | None:
        """A blob we hold for a layer whose snapshot exists; None: fetch desc's."""
        content = self.images.content
        if content.exists(desc.digest):
            return desc
        for _, _, rec in self.images.db.images():
            for lay in rec.get("layers", []):
                if lay.get("diff_id") == diff_id and content.exists(lay["digest"]):
                    return Descriptor(lay["mediaType"], lay["digest"], lay["size"])
        return None

    def _download_and_unpack(self, repo: Repository, plans: list[_Plan]) -> list[LayerInput]:
        cancelled = threading.Event()
        staging = self._staging()
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="kade-pull")
        futures: list[Future | None] = []
        try:
            for p in plans:
                futures.append(None if p.local else pool.submit(
                    self._fetch_layer, repo, p, cancelled, staging if p.unpack else None))
            return self._commit_in_order(plans, futures)
        except BaseException:
            cancelled.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for f in futures:  # trees staged for layers that were never committed
                if f is not None and f.done() and not f.cancelled() and not f.exception():
                    _remove_tree(f.result()[1])

    def _staging(self) -> str | None:
        """Where layers are extracted side by side before they become snapshots, when
        the snapshotter's layers do not need their parent's files (overlay)."""
        if self.staging is None or self.images.snapshots.whiteouts != "overlay":
            return None
        os.makedirs(self.staging, exist_ok=True)
        _sweep_staging(self.staging)
        return self.staging

    def _fetch_layer(self, repo: Repository, plan: _Plan, cancelled: threading.Event,
                     staging: str | None) -> tuple[Descriptor, str | None]:
        """In a pool thread: download; when staging, also extract into a tree of its
        own, reading the blob while it arrives, and verify the tree's diff_id."""
        if staging is None:
            return self._download(repo, plan.remote, cancelled, plan.unpack), None
        tree = os.path.join(staging, f"{os.getpid()}-{os.urandom(6).hex()}")
        os.mkdir(tree, 0o755)
        try:
            content = self.images.content
            if content.exists(plan.remote.digest) or \
                    os.path.exists(resume_path(content, plan.remote.digest)):
                # present, or resumed from a kept partial that might yet prove wrong and
                # be fetched again from the start: extract only once the blob is whole
                desc = self._download(repo, plan.remote, cancelled, True)
                with self.images.content.open(desc.digest) as raw:
                    self._apply(raw, LayerInput(desc, plan.diff_id), tree, "overlay")
            else:
                desc = self._stream(repo, plan, cancelled, tree)
        except BaseException:
            _remove_tree(tree)
            raise
        return desc, tree

    def _stream(self, repo: Repository, plan: _Plan, cancelled: threading.Event,
                tree: str) -> Descriptor:
        """Extract from the ingest file while another thread downloads into it. The
        tree stays staged (invisible) until the download's digest is verified."""
        growing = _Growing(self.images.content, plan.remote.digest)
        stop = threading.Event()

        def download() -> None:
            try:
                self._download(repo, plan.remote, _Either(cancelled, stop), True,
                               on_ingest=growing.started, advanced=growing.advanced)
                growing.finish(None)
            except BaseException as e:  # handed to the extracting thread
                growing.finish(e)

        thread = threading.Thread(target=download, name="kade-pull-fetch", daemon=True)
        thread.start()
        try:
            with growing:
                self._apply(growing, LayerInput(plan.remote, plan.diff_id), tree, "overlay")
        except BaseException:
            stop.set()
            thread.join()
            growing.raise_error()  # the download's failure explains the extraction's
            raise
        thread.join()
        growing.raise_error()
        return plan.remote

    def _download(self, repo: Repository, desc: Descriptor, cancelled, shown: bool, *,
                  on_ingest=None, advanced=None) -> Descriptor:
        short = dg.short_id(desc.digest)
        content = self.images.content
        if content.exists(desc.digest):
            if shown:
                self.emit(message("Download complete", id=short))
            return desc

        def progress(n: int) -> None:
            if cancelled.is_set():
                raise _Cancelled()
            if advanced:
                advanced()
            if shown:
                self.emit(message("Downloading", id=short, current=n, total=desc.size))
        try:
            fetch_blob(repo, desc, content, progress=progress, on_ingest=on_ingest)
        except errcode.RegistryError as e:
            raise FailedPrecondition(f"layer {desc.digest}: {e}") from None
        except FailedPrecondition as e:
            raise FailedPrecondition(f"filesystem layer verification failed for digest "
                                     f"{desc.digest}: {e}") from None
        if shown:
            self.emit(message("Verifying Checksum", id=short))
            self.emit(message("Download complete", id=short))
        return desc

    def _commit_in_order(self, plans: list[_Plan], futures: list) -> list[LayerInput]:
        self.images.snapshots.reap()  # extractions of pulls killed before this one
        out = []
        parent = None
        for plan, future in zip(plans, futures):
            desc, tree = future.result() if future else (plan.local, None)
            layer = LayerInput(desc, plan.diff_id)
            if plan.unpack:
                self._unpack(layer, parent, plan.chain_id, tree)
                self.emit(message("Pull complete", id=dg.short_id(plan.remote.digest)))
            out.append(layer)
            parent = plan.chain_id
        return out

    def _unpack(self, layer: LayerInput, parent: str | None, chain_id: str,
                tree: str | None) -> None:
        """Commit the layer's snapshot: from a staged tree, or extracted in place."""
        snaps = self.images.snapshots
        key = snaps.extraction_key()
        snaps.prepare(key, parent)
        try:
            upper = snaps.upper_dir(key)
            if tree is None or not _move_tree(tree, upper):
                with self.images.content.open(layer.descriptor.digest) as raw:
                    self._apply(raw, layer, upper, snaps.whiteouts)
            try:
                snaps.commit(chain_id, key)
            except AlreadyExists:  # another pull unpacked the same layer meanwhile
                snaps.remove(key)
        except BaseException:
            if snaps.exists(key):
                snaps.remove(key)
            raise
        finally:
            if tree is not None:
                _remove_tree(tree)

    def _apply(self, raw, layer: LayerInput, dest: str, whiteouts: str) -> None:
        """Extract a layer blob read from raw onto dest; its tar must hash to the
        layer's diff_id."""
        from kade.archive import apply_layer, open_decompressed
        short = dg.short_id(layer.descriptor.digest)
        counted = _Counting(raw, self.emit, short, layer.descriptor.size)
        with open_decompressed(counted) as stream:  # type: ignore[arg-type]
            tar = _Hashing(stream)
            apply_layer(tar, dest, whiteouts=whiteouts)  # type: ignore[arg-type]
        if tar.digest() != layer.diff_id:
            raise FailedPrecondition(
                f"layer {layer.descriptor.digest} does not match its diff_id: expected "
                f'"{layer.diff_id}", got "{tar.digest()}"')

    def _note_sources(self, ref: Reference, layers: list[LayerInput]) -> None:
        if self.sources is None:
            return
        for layer in layers:
            if layer.descriptor.media_type in manifests.LAYERS:
                self.sources.record(layer.diff_id, layer.descriptor, ref.repository)


def _move_tree(tree: str, upper: str) -> bool:
    """Put a staged tree in place of a fresh, empty upper directory (one rename);
    False when they are on different filesystems."""
    os.rmdir(upper)
    try:
        os.rename(tree, upper)
        return True
    except OSError:
        os.mkdir(upper, 0o755)
        return False


def _remove_tree(tree: str | None) -> None:
    if tree and os.path.lexists(tree):
        import shutil
        shutil.rmtree(tree, ignore_errors=True)


def _sweep_staging(staging: str) -> None:
    """Remove trees left by pulls that died (their pid is gone)."""
    for name in os.listdir(staging):
        pid = name.partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            _remove_tree(os.path.join(staging, name))


def _check_size(desc: Descriptor, data: bytes) -> None:
    if desc.size and desc.size != len(data):
        raise InvalidArgument(f"manifest {desc.digest}: size {len(data)} does not match the "
                              f"{desc.size} bytes the index says")


def _pull_error(ref: Reference, e: errcode.RegistryError) -> Exception:
    """Docker's wording for the failures a user meets most."""
    detail = getattr(e, "detail", "") or str(e)
    if errcode.access_problem(e):
        return Forbidden(f"pull access denied for {ref.familiar_name()}, repository does not "
                         f"exist or may require 'kade login': {detail}")
    if e.status == 404:
        return NotFound(f"manifest for {ref.familiar()} not found: {detail}")
    return e  # type: ignore[return-value]


class _Either:
    """Set when either of two events is (the download's cancel flag)."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()


class _Growing:
    """Reads a blob while a download writes it: the ingest file as it grows, to
    its end once the download has committed it (or the committed blob when the
    download was quicker than the reader)."""

    POLL = 0.05  # the writer is buffered: look again even without a notice

    def __init__(self, content, digest: str):
        self._content = content
        self._digest = digest
        self._path: str | None = None
        self._f: BinaryIO | None = None
        self._done = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    # the download's side
    def started(self, path: str) -> None:
        with self._cond:
            self._path = path
            self._cond.notify_all()

    def advanced(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def finish(self, error: BaseException | None) -> None:
        with self._cond:
            self._done, self._error = True, error
            self._cond.notify_all()

    def raise_error(self) -> None:
        if self._error is not None and not isinstance(self._error, _Cancelled):
            raise self._error

    # the reader's side
    def readinto(self, buf) -> int:
        while True:
            if self._f is None and not self._open():
                continue
            n = self._f.readinto(buf)  # type: ignore[union-attr]
            if n:
                return n
            with self._cond:
                if self._error is not None:
                    raise FailedPrecondition("the layer's download failed")
                if self._done:
                    return self._f.readinto(buf) or 0  # type: ignore[union-attr]
                self._cond.wait(self.POLL)

    def _open(self) -> bool:
        with self._cond:
            if self._error is not None:
                raise FailedPrecondition("the layer's download failed")
            path, done = self._path, self._done
            if path is None and not done:
                self._cond.wait(self.POLL)
                return False
        try:
            self._f = open(path, "rb", buffering=0) if path else None  # noqa: SIM115
        except FileNotFoundError:
            self._f = None
        if self._f is None:  # committed (and renamed) before we looked
            if not done:
                with self._cond:
                    self._cond.wait(self.POLL)
                    done = self._done
                if not done:
                    return False
            self._f = self._content.open(self._digest)
        return True

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n > 0 else 1 << 20)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def __enter__(self) -> "_Growing":
        return self

    def __exit__(self, *_) -> None:
        if self._f is not None:
            self._f.close()


class _Hashing:
    """Passes a stream through, hashing every byte (the diff_id of a tar)."""

    def __init__(self, stream):
        self._stream = stream
        self._hash = dg.hasher("sha256")

    def readinto(self, buf) -> int:
        n = self._stream.readinto(buf)
        if n:
            self._hash.update(memoryview(buf)[:n])
        return n or 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._hash.update(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _Counting:
    """Reports how much of the compressed blob was consumed, as docker's Extracting."""

    def __init__(self, raw, emit: Emit, short: str, total: int):
        self._raw = raw
        self._emit = emit
        self._short = short
        self._total = total
        self._n = 0
        self._next = 0

    def readinto(self, buf) -> int:
        n = self._raw.readinto(buf) or 0
        self._n += n
        if self._n >= self._next:
            self._next = self._n + (1 << 20)
            self._emit(message("Extracting", id=self._short, current=self._n, total=self._total))
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._n += len(data)
        return data
