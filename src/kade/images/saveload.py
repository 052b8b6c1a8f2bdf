"""`kade save` and `kade load`: images to and from docker's image archives.

`save` writes what docker 25+ writes, an OCI image layout with docker's own
index files beside it, layers as uncompressed tars:

    blobs/sha256/<hex>   layer tars (named by diff_id), configs (named by image id),
                         one OCI image manifest per image
    index.json           a manifest descriptor per tag, named by the annotations
                         io.containerd.image.name and org.opencontainers.image.ref.name
                         (an untagged image gets one descriptor without names)
    manifest.json        [{"Config": "blobs/sha256/<id>", "RepoTags": ["busybox:latest"],
                           "Layers": ["blobs/sha256/<diff_id>", ...]}]
    oci-layout           {"imageLayoutVersion": "1.0.0"}
    repositories         {"busybox": {"latest": "<top diff_id hex>"}}   (tags only)

`load` reads that; docker 20.10's layout (`<id>.json` configs, `<v1 id>/layer.tar`,
symlinks between duplicate layers); plain OCI layouts (index.json only, nested
indexes resolved to the host platform); each possibly gzip, bzip2, xz or zstd
compressed as a whole. When manifest.json is present it wins over index.json, as
in docker.

Invariant of load: an archive loads entirely or not at all. The tar is read once,
as a stream, every member spooled into the content store keyed by its path (tar
order is free: layers may come before manifest.json). Then every image is planned
(configs parsed, tags parsed, each layer checked against its config's diff_id),
every layer unpacked, and only then are image rows and tags written. A failure
removes the snapshots this load committed; blobs it spooled are unreferenced and
`prune` collects them.

Image ids survive a round trip: the config blob is kept byte for byte.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from kade.archive import detect, open_decompressed
from kade.content import ContentStore
from kade.errors import FailedPrecondition, InvalidArgument, KadeError, NotFound
from kade.images.service import ImageService, LayerInput, canonical_json
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci import reference
from kade.oci.descriptor import Descriptor
from kade.oci.platform import host
from kade.oci.reference import Reference
from kade.util import fastjson

__all__ = ["load", "save"]

MANIFEST_JSON = "manifest.json"
INDEX_JSON = "index.json"
OCI_LAYOUT = "oci-layout"
REPOSITORIES = "repositories"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}'

_METADATA_FILES = (MANIFEST_JSON, INDEX_JSON, OCI_LAYOUT, REPOSITORIES)
_METADATA_LIMIT = 32 << 20  # manifest.json, index.json, configs: read into memory
_CHUNK = 1 << 20


# --- save ----------------------------------------------------------------------------


def save(images: ImageService, refs: list[str], out: BinaryIO) -> None:
    """Write the images named by refs to out as one docker archive (tar, streamed).

    A name without a tag saves every tag of that repository, as docker does; an id
    or a digest reference saves the image untagged. Nothing is written unless every
    ref resolves and every blob is present.
    """
    chosen = _resolve_for_save(images, refs)
    for image_id in chosen:
        _check_blobs(images, image_id)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        writer = _ArchiveWriter(tar, images)
        writer.add_dir("blobs")
        writer.add_dir("blobs/sha256")
        for image_id, tags in chosen.items():
            writer.add_image(image_id, tags)
        writer.finish()


def _resolve_for_save(images: ImageService, refs: list[str]) -> dict[str, list[Reference]]:
    """image id -> the tags to save it under, in the order the refs named them."""
    chosen: dict[str, list[Reference]] = {}
    for text in refs:
        for image_id, tag in _save_targets(images, text):
            tags = chosen.setdefault(image_id, [])
            if tag is not None and tag not in tags:
                tags.append(tag)
    return chosen


def _save_targets(images: ImageService, text: str) -> list[tuple[str, Reference | None]]:
    named = _parse_or_none(text)
    if named is not None and named.tag is None and named.digest is None:
        tagged = _tags_in_repository(images, named.repository)
        if tagged:
            return tagged
    try:
        image_id = images.try_resolve(text)
    except InvalidArgument:
        image_id = None
    if image_id is None:
        raise NotFound("reference does not exist")
    if named is not None and named.tag and not named.digest:
        return [(image_id, named)]
    return [(image_id, None)]


def _parse_or_none(text: str) -> Reference | None:
    """A reference, or None for what can only be an image id (full, or sha256:...)."""
    if text.startswith("sha256:") or (len(text) == 64 and set(text) <= set("0123456789abcdef")):
        return None
    try:
        return reference.parse(text, default_tag=False)
    except InvalidArgument:
        return None


def _tags_in_repository(images: ImageService,
                        repository: str) -> list[tuple[str, Reference | None]]:
    out: list[tuple[str, Reference | None]] = []
    for name, image_id in images.db.tags():
        ref = reference.parse(name)
        if ref.repository == repository and ref.tag:
            out.append((image_id, ref))
    return out


def _check_blobs(images: ImageService, image_id: str) -> None:
    wanted = [image_id] + [lay["digest"] for lay in images.record(image_id)["layers"]]
    for digest in wanted:
        if not images.content.exists(digest):
            raise NotFound(f'blob "{digest}" of image "{image_id}" is missing from the '
                           f"content store: pull or load the image again")


class _ArchiveWriter:
    """Adds blobs once each, then the index files that describe them."""

    def __init__(self, tar: tarfile.TarFile, images: ImageService):
        self.tar = tar
        self.images = images
        self.layer_sizes: dict[str, int] = {}  # diff_id -> uncompressed size written
        self.blobs_written: set[str] = set()
        self.manifest_json: list[dict] = []
        self.index: list[dict] = []
        self.repositories: dict[str, dict[str, str]] = {}

    def add_image(self, image_id: str, tags: list[Reference]) -> None:
        config_bytes = self.images.content.read(image_id)
        config = fastjson.loads(config_bytes)
        diff_ids = [self._add_layer(lay) for lay in self.images.record(image_id)["layers"]]
        self._add_blob(image_id, config_bytes, _created(config))
        manifest = canonical_json(self._oci_manifest(image_id, len(config_bytes), diff_ids))
        manifest_digest = dg.of_bytes(manifest)
        self._add_blob(manifest_digest, manifest, 0)
        descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest,
                      "size": len(manifest), "platform": _platform_of(config)}
        self.index.extend(_named(descriptor, tag) for tag in tags)
        if not tags:
            self.index.append(descriptor)
        for tag in tags:
            self.repositories.setdefault(tag.familiar_name(), {})[tag.tag or "latest"] = \
                dg.hex_of(diff_ids[-1]) if diff_ids else ""
        self.manifest_json.append({"Config": _blob_path(image_id),
                                   "RepoTags": [t.familiar() for t in tags],
                                   "Layers": [_blob_path(d) for d in diff_ids]})

    def _oci_manifest(self, image_id: str, config_size: int, diff_ids: list[str]) -> dict:
        return {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": image_id,
                           "size": config_size},
                "layers": [{"mediaType": mt.OCI_LAYER, "digest": d,
                            "size": self.layer_sizes[d]} for d in diff_ids]}

    def _add_layer(self, layer: dict) -> str:
        diff_id = layer["diff_id"]
        if diff_id in self.layer_sizes:
            return diff_id
        if layer["digest"] == diff_id:
            with self.images.content.open(diff_id) as f:
                size = self._add_file(_blob_path(diff_id), f, self.images.content.size(diff_id))
        else:
            with _decompressed_spool(self.images.content, layer["digest"], diff_id) as spool:
                size = self._add_file(_blob_path(diff_id), spool, spool.seek(0, 2))
        self.layer_sizes[diff_id] = size
        self.blobs_written.add(diff_id)
        return diff_id

    def _add_blob(self, digest: str, data: bytes, mtime: float) -> None:
        if digest not in self.blobs_written:
            self.blobs_written.add(digest)
            self.add_bytes(_blob_path(digest), data, mtime)

    def _add_file(self, name: str, f: BinaryIO, size: int) -> int:
        f.seek(0)
        info = _tar_info(name, tarfile.REGTYPE, 0o644, 0)
        info.size = size
        self.tar.addfile(info, f)
        return size

    def add_bytes(self, name: str, data: bytes, mtime: float = 0) -> None:
        info = _tar_info(name, tarfile.REGTYPE, 0o644, mtime)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def add_dir(self, name: str) -> None:
        self.tar.addfile(_tar_info(name, tarfile.DIRTYPE, 0o755, 0))

    def finish(self) -> None:
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": self.index}
        self.add_bytes(INDEX_JSON, canonical_json(index))
        self.add_bytes(MANIFEST_JSON, canonical_json(self.manifest_json) + b"\n")
        self.add_bytes(OCI_LAYOUT, OCI_LAYOUT_CONTENT)
        if self.repositories:
            self.add_bytes(REPOSITORIES, canonical_json(self.repositories) + b"\n")


def _named(descriptor: dict, tag: Reference) -> dict:
    return {**descriptor, "annotations": {ANNOTATION_IMAGE_NAME: str(tag),
                                          ANNOTATION_REF_NAME: tag.tag or "latest"}}


def _platform_of(config: dict) -> dict:
    out = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    if config.get("variant"):
        out["variant"] = config["variant"]
    return out


def _created(config: dict) -> float:
    from kade.util.ids import parse_rfc3339
    try:
        return parse_rfc3339(config.get("created") or "")
    except ValueError:
        return 0.0


def _blob_path(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _tar_info(name: str, kind: bytes, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, int(mtime)
    info.uid = info.gid = 0
    return info


@contextmanager
def _decompressed_spool(content: ContentStore, blob: str, diff_id: str) -> Iterator[BinaryIO]:
    """A compressed layer blob as an unnamed temp file of its tar (tar headers need
    sizes up front), checked against its diff_id on the way."""
    with tempfile.TemporaryFile(dir=f"{content.root}/ingest") as spool:
        h = dg.hasher()
        with content.open(blob) as raw, open_decompressed(raw) as stream:
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                spool.write(chunk)
        if f"sha256:{h.hexdigest()}" != diff_id:
            raise FailedPrecondition(f'layer blob "{blob}" does not match its diff_id '
                                     f'"{diff_id}": the content store is damaged; remove '
                                     f"and pull the image again")
        yield spool  # type: ignore[misc]


# --- compression ---------------------------------------------------------------------
# Layers and whole archives in gzip or zstd go through kade.archive; bzip2 and xz
# only ever wrap whole archives (docker loads those too), so they live here.

_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class _Prefixed(io.RawIOBase):
    """Bytes already read from a stream, then the rest of it: a peek for pipes."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self._head[:len(buf)] if self._head else self._rest.read(len(buf))
        self._head = self._head[len(data):]
        buf[:len(data)] = data
        return len(data)


def _archive_stream(stream: BinaryIO) -> BinaryIO:
    """The archive's tar bytes, whatever compression wraps the whole; forward only."""
    head = b""
    while len(head) < 6 and (more := stream.read(6 - len(head))):
        head += more
    raw = io.BufferedReader(_Prefixed(head, stream), _CHUNK)
    if head.startswith(_BZIP2_MAGIC):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return open_decompressed(raw)


# --- load: reading the archive -------------------------------------------------------


@dataclass
class _Archive:
    """What the tar held: metadata files in memory, everything else in the content
    store by digest, and links (docker 20.10 links duplicate layers)."""

    meta: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)  # path -> digest
    links: dict[str, str | None] = field(default_factory=dict)  # path -> target path

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, content: ContentStore) -> None:
        name = _clean(member.name)
        if name is None:
            return
        if member.issym():
            self.links[name] = _clean(posixpath.join(posixpath.dirname(name), member.linkname))
        elif member.islnk():
            self.links[name] = _clean(member.linkname)
        elif member.isreg() and not _is_v1_metadata(name):
            f = tar.extractfile(member)
            assert f is not None
            if name in _METADATA_FILES:
                self.meta[name] = _read_limited(f, member.size, name)
            else:
                self.blobs[name] = content.ingest(f)  # type: ignore[arg-type]

    def resolve(self, path: str) -> str:
        """The digest of the file at path, following links inside the archive."""
        clean = _clean(path)
        for _ in range(16):
            if clean is None or clean not in self.links:
                break
            clean = self.links[clean]
        if clean is None or clean not in self.blobs:
            raise FailedPrecondition(f'invalid archive: "{path}" is missing')
        return self.blobs[clean]


def _clean(name: str) -> str | None:
    """An archive path as a key: relative, normalised, never above the root."""
    path = posixpath.normpath(name.lstrip("/"))
    return None if path in (".", "..") or path.startswith("../") else path


def _is_v1_metadata(name: str) -> bool:
    head, _, tail = name.partition("/")
    return tail in ("json", "VERSION") and len(head) == 64


def _read_limited(f: IO[bytes], size: int, name: str) -> bytes:
    if size > _METADATA_LIMIT:
        raise InvalidArgument(f'invalid archive: "{name}" is too large ({size} bytes)')
    return f.read()


def _read_archive(content: ContentStore, stream: BinaryIO) -> _Archive:
    archive = _Archive()
    try:
        with _archive_stream(stream) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                archive.add(tar, member, content)
    except (tarfile.TarError, EOFError, lzma.LZMAError) as e:
        raise InvalidArgument(f"invalid archive: {e}") from None
    except OSError as e:
        if e.errno is not None:  # the disk, not the archive (bz2 raises errno-less ones)
            raise
        raise InvalidArgument(f"invalid archive: {e}") from None
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid archive: {e}") from None
    return archive


# --- load: planning ------------------------------------------------------------------


@dataclass
class _Plan:
    """One image to create, everything checked, nothing written but blobs."""

    config_digest: str
    config_bytes: bytes
    layers: list[LayerInput]
    tags: list[Reference] = field(default_factory=list)

    @property
    def config(self) -> dict:
        return fastjson.loads(self.config_bytes)


def _plan(content: ContentStore, archive: _Archive) -> list[_Plan]:
    if MANIFEST_JSON in archive.meta:
        plans = _docker_plans(content, archive)
    elif INDEX_JSON in archive.meta:
        plans = _oci_plans(content, archive)
    else:
        raise InvalidArgument("invalid archive: it has neither manifest.json nor index.json "
                              "(archives of docker before 1.10 are not supported)")
    return _merge_same_images(plans)


def _docker_plans(content: ContentStore, archive: _Archive) -> list[_Plan]:
    items = _json(archive.meta[MANIFEST_JSON], MANIFEST_JSON)
    if not isinstance(items, list):
        raise InvalidArgument("invalid archive: manifest.json is not a list")
    plans = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidArgument("invalid archive: an entry of manifest.json is not an object")
        config_digest = archive.resolve(item.get("Config") or "")
        config_bytes = _read_config(content, config_digest)
        paths = item.get("Layers") or []
        diff_ids = _diff_ids(_json(config_bytes, "config"), len(paths))
        layers = [_layer_input(content, archive.resolve(p), d, p, None)
                  for p, d in zip(paths, diff_ids)]
        tags = [_parse_tag(t) for t in item.get("RepoTags") or []]
        plans.append(_Plan(config_digest, config_bytes, layers, tags))
    return plans


def _oci_plans(content: ContentStore, archive: _Archive) -> list[_Plan]:
    index = _json(archive.meta[INDEX_JSON], INDEX_JSON)
    descriptors = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    plans = []
    for desc in _for_this_platform(descriptors, top_level=True):
        manifest = _image_manifest(content, archive, desc, depth=0)
        config_digest = _oci_blob(content, archive, manifest.get("config") or {})
        config_bytes = _read_config(content, config_digest)
        layer_descs = manifest.get("layers") or []
        diff_ids = _diff_ids(_json(config_bytes, "config"), len(layer_descs))
        layers = [_layer_input(content, _oci_blob(content, archive, ld), d,
                               ld.get("digest", "?"), ld.get("mediaType"))
                  for ld, d in zip(layer_descs, diff_ids)]
        plans.append(_Plan(config_digest, config_bytes, layers, _oci_names(desc)))
    return plans


def _image_manifest(content: ContentStore, archive: _Archive, desc: dict, depth: int) -> dict:
    """The image manifest desc points at, through nested indexes by host platform."""
    doc = _json(content.read(_oci_blob(content, archive, desc)), desc.get("digest", "?"))
    kind = desc.get("mediaType") or doc.get("mediaType")
    if kind not in mt.INDEXES and "manifests" not in doc:
        return doc
    if depth > 8:
        raise InvalidArgument("invalid archive: indexes nested too deeply")
    chosen = _for_this_platform([d for d in doc.get("manifests") or []], top_level=False)
    return _image_manifest(content, archive, chosen[0], depth + 1)


def _for_this_platform(descriptors: list[dict], *, top_level: bool) -> list[dict]:
    """Descriptors that fit the host: in a nested index the first match; at the top
    every match, or every descriptor when none says a platform that fits."""
    want = host()

    def fits(d: dict) -> bool:
        p = d.get("platform")
        return not p or (p.get("os") == want["os"]
                         and p.get("architecture") == want["architecture"])

    matching = [d for d in descriptors if fits(d)]
    if top_level:
        return matching or descriptors
    if not matching:
        raise FailedPrecondition(f"no matching manifest for {want['os']}/"
                                 f"{want['architecture']} in the manifest list entries")
    with_platform = [d for d in matching if d.get("platform")]
    return (with_platform or matching)[:1]


def _oci_names(desc: dict) -> list[Reference]:
    """io.containerd.image.name, else ref.name when it is a whole reference (the OCI
    spec also allows a bare tag there, which names no repository)."""
    annotations = desc.get("annotations") or {}
    name = annotations.get(ANNOTATION_IMAGE_NAME)
    ref_name = annotations.get(ANNOTATION_REF_NAME, "")
    if not name and any(c in ref_name for c in ":/"):
        name = ref_name
    if not name:
        return []
    ref = _parse_tag(name)
    return [ref] if ref.tag else []


def _oci_blob(content: ContentStore, archive: _Archive, desc: dict) -> str:
    """The digest desc names, once its bytes are known to be in the archive or store."""
    try:
        digest = dg.validate(desc.get("digest") or "")
    except InvalidArgument:
        raise InvalidArgument(f"invalid archive: bad descriptor {json.dumps(desc)}") from None
    path = _blob_path(digest)
    if path in archive.blobs or path in archive.links:
        got = archive.resolve(path)
        if got != digest:
            raise FailedPrecondition(f'invalid archive: "{path}" does not match its digest')
        return digest
    if content.exists(digest):
        return digest
    raise FailedPrecondition(f'invalid archive: blob "{digest}" is missing')


def _json(data: bytes, what: str):
    try:
        return fastjson.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f'invalid archive: "{what}" is not valid JSON: {e}') from None


def _read_config(content: ContentStore, digest: str) -> bytes:
    if content.size(digest) > _METADATA_LIMIT:
        raise InvalidArgument(f'invalid archive: config "{digest}" is too large')
    return content.read(digest)


def _diff_ids(config: dict, n_layers: int) -> list[str]:
    if not isinstance(config, dict):
        raise InvalidArgument("invalid archive: an image config is not a JSON object")
    if config.get("os", "linux") != "linux":
        raise FailedPrecondition(f'cannot load {config.get("os")} image on linux')
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != n_layers:
        raise FailedPrecondition(f"invalid manifest, layers length mismatch: "
                                 f"expected {len(diff_ids)}, got {n_layers}")
    return [dg.validate(d) for d in diff_ids]


def _parse_tag(text: str) -> Reference:
    ref = reference.parse(text)
    if ref.digest and not ref.tag:
        return ref
    return ref.with_tag(ref.tag or "latest")


_LAYER_TYPES = {"none": mt.DOCKER_LAYER, "gzip": mt.DOCKER_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}


def _layer_input(content: ContentStore, blob: str, diff_id: str, where: str,
                 media_type: str | None) -> LayerInput:
    """The layer blob as an input to ImageService, once its tar hashes to diff_id."""
    with content.open(blob) as raw:
        kind = detect(raw.read(4))
    if blob != diff_id:
        got = _uncompressed_digest(content, blob, where)
        if got != diff_id:
            raise FailedPrecondition(f'invalid archive: layer "{where}" does not match its '
                                     f'diff_id: expected "{diff_id}", got "{got}"')
    if media_type not in mt.LAYERS:
        media_type = _LAYER_TYPES.get(kind, mt.DOCKER_LAYER)
    return LayerInput(Descriptor(media_type, blob, content.size(blob)), diff_id)


def _uncompressed_digest(content: ContentStore, blob: str, where: str) -> str:
    h = dg.hasher()
    try:
        with content.open(blob) as raw, open_decompressed(raw) as stream:
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
    except InvalidArgument as e:
        raise InvalidArgument(f'invalid archive: layer "{where}": {e}') from None
    return f"sha256:{h.hexdigest()}"


def _merge_same_images(plans: list[_Plan]) -> list[_Plan]:
    by_id: dict[str, _Plan] = {}
    for plan in plans:
        first = by_id.setdefault(plan.config_digest, plan)
        if first is not plan:
            first.tags.extend(t for t in plan.tags if t not in first.tags)
    return list(by_id.values())


# --- load: writing -------------------------------------------------------------------


def load(images: ImageService, stream: BinaryIO) -> list[str]:
    """Load every image of a docker or OCI archive; returns docker's report lines
    (`Loaded image: busybox:latest`, `Loaded image ID: sha256:...`)."""
    archive = _read_archive(images.content, stream)
    plans = _plan(images.content, archive)
    _unpack_all(images, plans)
    lines: list[str] = []
    for plan in plans:
        image_id = _record(images, plan)
        lines.extend(_tag(images, image_id, plan.tags))
    return lines


def _unpack_all(images: ImageService, plans: list[_Plan]) -> None:
    """Unpack every layer first, so a bad layer anywhere leaves no image at all."""
    chains = [dg.chain_ids([lay.diff_id for lay in p.layers]) for p in plans]
    existed = {c for chain in chains for c in chain if images.snapshots.exists(c)}
    try:
        for plan in plans:
            images.unpack(plan.layers)
    except BaseException:
        _remove_new_snapshots(images, chains, existed)
        raise


def _remove_new_snapshots(images: ImageService, chains: list[list[str]],
                          existed: set[str]) -> None:
    in_use = {c for _, _, rec in images.db.images()
              for c in dg.chain_ids([lay["diff_id"] for lay in rec["layers"]])}
    for chain in chains:
        for chain_id in reversed(chain):
            if chain_id in existed or chain_id in in_use or \
                    not images.snapshots.exists(chain_id):
                continue
            try:
                images.snapshots.remove(chain_id)
            except (KadeError, OSError):  # another unpack stands on it meanwhile
                break


def _record(images: ImageService, plan: _Plan) -> str:
    """Create the image keeping the archive's config bytes: their digest is the id."""
    return images.create_from_config_bytes(plan.config_bytes, plan.layers)


def _tag(images: ImageService, image_id: str, tags: list[Reference]) -> Iterator[str]:
    if not tags:
        yield f"Loaded image ID: {image_id}"
    for ref in tags:
        if ref.tag is None:  # a digest reference names, it does not tag
            continue
        old = images.db.get_tag(str(ref))
        if old is not None and old != image_id:
            yield (f"The image {ref.familiar()} already exists, renaming the old one "
                   f"with ID {old} to empty string")
        images.tag(image_id, str(ref))
        yield f"Loaded image: {ref.familiar()}"
