"""Manifests, tags and referrers of a repository.

A manifest is stored as a blob (its exact bytes), made part of a repository by
a revision link, named by tags (`tags/<tag>/current/link`) and, when it has a
`subject`, listed under the subject's digest in `_manifests/referrers`. Pushes
are checked: the JSON must be an image manifest or index of a known media
type, at most `MAX_MANIFEST_SIZE` bytes, and every blob it names (config and
layers) or manifest it lists (index children) must already be in the
repository. A `subject` may point at nothing yet, as the spec requires.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

from kade.oci import mediatypes as mt
from kade.registry import errcode, names, paths
from kade.registry.driver import PathNotFound
from kade.registry.errcode import RegistryError
from kade.util import fastjson

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kade.registry.blobs import Blobs
    from kade.registry.driver import StorageDriver

MAX_MANIFEST_SIZE = 4 << 20  # distribution's limit, and the spec's minimum
KNOWN_TYPES = mt.MANIFESTS | mt.INDEXES
_MAX_CACHED_TYPES = 100_000


class Manifest(NamedTuple):
    digest: str
    media_type: str
    data: bytes


class Parsed(NamedTuple):
    media_type: str
    blobs: list[str]        # config and layers that must be in the repository
    children: list[dict]    # an index's manifests (descriptors)
    subject: dict | None
    doc: dict


def invalid(message: str, detail=None) -> RegistryError:
    return RegistryError(errcode.MANIFEST_INVALID, detail, message=f"manifest invalid: {message}")


def manifest_unknown(name: str, ref: str) -> RegistryError:
    return RegistryError(errcode.MANIFEST_UNKNOWN, {"name": name, "reference": ref},
                         message=f'manifest "{ref}" unknown to repository "{name}"')


def name_unknown(name: str) -> RegistryError:
    return RegistryError(errcode.NAME_UNKNOWN, {"name": name},
                         message=f'repository "{name}" not known to registry')


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(data: bytes, content_type: str | None = None) -> Parsed:
    """Checks a pushed manifest; its media type is its `mediaType`, else the
    request's Content-Type, else what its fields say it is."""
    try:
        doc = fastjson.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise invalid("not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise invalid(f"schemaVersion {doc.get('schemaVersion')!r} is not supported (only 2)")
    media_type = _media_type(doc, base_type(content_type))
    subject = doc.get("subject")
    if subject is not None:
        _descriptor(subject, "subject")
    if media_type in mt.INDEXES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise invalid('an index needs a "manifests" list')
        for child in children:
            _descriptor(child, "manifests[]")
        return Parsed(media_type, [], children, subject, doc)
    config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise invalid('"layers" is not a list')
    blobs = [config["digest"]]
    for layer in layers:
        _descriptor(layer, "layers[]")
        if not layer.get("urls"):  # non-distributable layers live elsewhere
            blobs.append(layer["digest"])
    return Parsed(media_type, blobs, [], subject, doc)


def _media_type(doc: dict, content_type: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None:
        if content_type and content_type in KNOWN_TYPES and content_type != declared:
            raise invalid(f'mediaType "{declared}" does not match Content-Type "{content_type}"')
        media_type = declared
    elif content_type in KNOWN_TYPES:
        media_type = content_type
    else:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in KNOWN_TYPES:
        raise invalid(f'unsupported manifest media type "{media_type}"', {"mediaType": media_type})
    return media_type


def _descriptor(d, where: str) -> dict:
    if not isinstance(d, dict):
        raise invalid(f"{where} is not a descriptor")
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not names.is_digest(digest):
        raise invalid(f"{where} has an invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid(f"{where} has an invalid size {size!r}")
    if not isinstance(d.get("mediaType", ""), str):
        raise invalid(f"{where} has an invalid mediaType")
    return d


def media_type_of(data: bytes) -> str:
    """The media type to serve stored manifest bytes with."""
    try:
        doc = fastjson.loads(data)
    except ValueError:
        return mt.OCI_MANIFEST
    declared = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    return mt.OCI_INDEX if isinstance(doc, dict) and "manifests" in doc else mt.OCI_MANIFEST


def referrer_descriptor(digest: str, size: int, parsed: Parsed) -> dict:
    """The descriptor the referrers API lists for a manifest with a subject."""
    out: dict = {"mediaType": parsed.media_type, "digest": digest, "size": size}
    artifact_type = parsed.doc.get("artifactType")
    if not artifact_type and parsed.media_type in mt.MANIFESTS:
        artifact_type = (parsed.doc.get("config") or {}).get("mediaType")
    if artifact_type:
        out["artifactType"] = artifact_type
    if parsed.doc.get("annotations"):
        out["annotations"] = parsed.doc["annotations"]
    return out


class Manifests:
    def __init__(self, driver: "StorageDriver", blobs: "Blobs"):
        self.driver = driver
        self.blobs = blobs
        self._types: dict[str, str] = {}  # digest -> media type; content never changes

    # -- reading

    def resolve(self, name: str, ref: str) -> str:
        """The digest `ref` (a tag or a digest) names in `name`."""
        if names.is_digest(ref):
            names.validate_digest(ref)
            if not self._exists(paths.revision_link(name, ref)):
                raise self._unknown(name, ref)
            return ref
        if not names.is_tag(ref):
            # nothing can be stored under such a name, so it names nothing: 404, as
            # distribution answers and the conformance suite expects (a PUT is 400)
            raise manifest_unknown(name, ref)
        try:
            return self.driver.get_content(paths.tag_current_link(name, ref)).decode().strip()
        except PathNotFound:
            raise self._unknown(name, ref) from None

    def get(self, name: str, ref: str) -> Manifest:
        return self._load(name, ref, self.resolve(name, ref))

    def head(self, name: str, ref: str) -> tuple[str, str, int]:
        """(digest, media type, size), reading the bytes only the first time."""
        digest = self.resolve(name, ref)
        media_type = self._types.get(digest)
        if media_type is None:
            m = self._load(name, ref, digest)
            return m.digest, m.media_type, len(m.data)
        try:
            return digest, media_type, self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            raise manifest_unknown(name, ref) from None

    def _load(self, name: str, ref: str, digest: str) -> Manifest:
        try:
            data = self.blobs.read_small(digest)
        except RegistryError:
            raise manifest_unknown(name, ref) from None
        return Manifest(digest, self._type(digest, data), data)

    def _type(self, digest: str, data: bytes) -> str:
        media_type = self._types.get(digest)
        if media_type is None:
            media_type = media_type_of(data)
            self._remember(digest, media_type)
        return media_type

    def _remember(self, digest: str, media_type: str) -> None:
        if len(self._types) >= _MAX_CACHED_TYPES:
            self._types.clear()
        self._types[digest] = media_type

    # -- writing

    def put(self, name: str, ref: str, data: bytes, content_type: str | None,
            extra_tags: "Sequence[str]" = ()) -> tuple[str, Parsed]:
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError(errcode.MANIFEST_INVALID, {"size": len(data)}, status=413,
                                message=f"manifest is {len(data)} bytes, over the limit of "
                                        f"{MAX_MANIFEST_SIZE}")
        by_digest = names.is_digest(ref)
        if by_digest:
            names.validate_digest(ref)
        elif not names.is_tag(ref):
            raise invalid(f'"{ref}" is neither a tag nor a digest', {"reference": ref})
        for tag in extra_tags:
            names.validate_tag(tag)
        parsed = parse(data, content_type)
        self._check_references(name, parsed)
        digest = self.blobs.put_small(data, ref.partition(":")[0] if by_digest else "sha256")
        if by_digest and digest != ref:
            raise RegistryError(errcode.DIGEST_INVALID, {"digest": ref, "got": digest},
                                message=f'manifest digest "{digest}" does not match "{ref}"')
        self._remember(digest, parsed.media_type)
        self.driver.put_content(paths.revision_link(name, digest), digest.encode())
        if parsed.subject is not None:
            entry = referrer_descriptor(digest, len(data), parsed)
            self.driver.put_content(paths.referrer(name, parsed.subject["digest"], digest),
                                    json.dumps(entry).encode())
        for tag in ([] if by_digest else [ref]) + list(extra_tags):
            self.tag(name, tag, digest)
        return digest, parsed

    def _check_references(self, name: str, parsed: Parsed) -> None:
        missing = [d for d in parsed.blobs if not self.blobs.linked(name, d)]
        missing += [c["digest"] for c in parsed.children
                    if not self._exists(paths.revision_link(name, c["digest"]))]
        if missing:
            raise RegistryError(errcode.MANIFEST_BLOB_UNKNOWN, {"digests": missing},
                                message=f'manifest references "{missing[0]}", unknown to '
                                        f'repository "{name}"')

    def tag(self, name: str, tag: str, digest: str) -> None:
        self.driver.put_content(paths.tag_index_link(name, tag, digest), digest.encode())
        self.driver.put_content(paths.tag_current_link(name, tag), digest.encode())

    def delete(self, name: str, ref: str) -> None:
        if not names.is_digest(ref):
            self.resolve(name, ref)
            self.driver.delete(paths.tag_dir(name, ref))
            return
        digest = self.resolve(name, ref)
        for tag in self.tags(name):
            try:
                current = self.driver.get_content(paths.tag_current_link(name, tag)).decode()
            except PathNotFound:
                continue
            if current.strip() == digest:
                self._delete_quietly(paths.tag_dir(name, tag))
        self._forget_referrer(name, digest)
        self.driver.delete(paths.revision_dir(name, digest))

    def _forget_referrer(self, name: str, digest: str) -> None:
        try:
            doc = fastjson.loads(self.blobs.read_small(digest))
        except (RegistryError, ValueError):
            return
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
            self._delete_quietly(paths.referrer(name, subject["digest"], digest))

    # -- listing

    def repository_exists(self, name: str) -> bool:
        return self._exists(paths.repository(name))

    def tags(self, name: str) -> list[str]:
        try:
            return self.driver.list(paths.tags(name))
        except PathNotFound:
            if not self.repository_exists(name):
                raise name_unknown(name) from None
            return []

    def referrers(self, name: str, subject: str, artifact_type: str | None = None) -> list[dict]:
        names.validate_digest(subject)
        base = paths.referrers(name, subject)
        try:
            entries = self.driver.list(base)
        except PathNotFound:
            return []
        out = []
        for entry in entries:
            digest = entry.replace("-", ":", 1)
            if not self._exists(paths.revision_link(name, digest)):
                continue
            try:
                desc = fastjson.loads(self.driver.get_content(f"{base}/{entry}"))
            except (PathNotFound, ValueError):
                continue
            if artifact_type is None or desc.get("artifactType") == artifact_type:
                out.append(desc)
        return out

    # -- helpers

    def _unknown(self, name: str, ref: str) -> RegistryError:
        if not self.repository_exists(name):
            return name_unknown(name)
        return manifest_unknown(name, ref)

    def _exists(self, path: str) -> bool:
        try:
            self.driver.stat(path)
            return True
        except PathNotFound:
            return False

    def _delete_quietly(self, path: str) -> None:
        try:
            self.driver.delete(path)
        except PathNotFound:
            pass
