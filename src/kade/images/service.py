"""ImageService: create, resolve, unpack, tag and remove images."""

from __future__ import annotations

import json
import time
from collections import namedtuple

from kade.content import ContentStore
from kade.errors import Conflict, InvalidArgument, NotFound
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci import reference
from kade.oci.descriptor import Descriptor
from kade.snapshots import Snapshotter
from kade.util.ids import now_rfc3339
from kade.util import fastjson

TYPE_CHECKING = False  # sqlite3 stays unimported until a database is opened
if TYPE_CHECKING:
    from kade.metadata import DB


# a layer blob already in the content store, and the digest of its uncompressed tar
LayerInput = namedtuple("LayerInput", "descriptor diff_id")


def canonical_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


class ImageService:
    def __init__(self, content: ContentStore, db: DB, snapshotter: Snapshotter):
        self.content = content
        self.db = db
        self.snapshots = snapshotter

    # --- resolving -----------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A name[:tag], name@digest, full or short image id -> image id."""
        image_id = self.try_resolve(ref)
        if image_id is None:
            raise NotFound(f"no such image: {ref}")
        return image_id

    def try_resolve(self, ref: str) -> str | None:
        if ref.startswith("sha256:") and len(ref) == 71:
            return ref if self.db.get_image(ref) else None
        if _looks_like_id(ref):
            ids = self.db.image_ids_with_prefix("sha256:" + ref)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1 and len(ref) < 64:
                raise Conflict(f'image id "{ref}" is ambiguous')
        try:
            parsed = reference.parse(ref)
        except InvalidArgument:
            if _looks_like_id(ref):
                return None
            raise
        if parsed.digest:
            return self._by_repo_digest(parsed)
        return self.db.get_tag(str(parsed))

    def _by_repo_digest(self, ref: reference.Reference) -> str | None:
        want = f"{ref.repository}@{ref.digest}"
        for image_id, _, rec in self.db.images():
            if want in rec.get("repo_digests", []):
                return image_id
        return None

    def record(self, image_id: str) -> dict:
        rec = self.db.get_image(image_id)
        if rec is None:
            raise NotFound(f"no such image: {image_id}")
        return rec

    def config(self, image_id: str) -> dict:
        return fastjson.loads(self.content.read(image_id))

    # --- creating ------------------------------------------------------------
    def ingest_layer(self, stream, media_type: str = mt.DOCKER_LAYER) -> LayerInput:
        """Store an uncompressed layer tar; its digest is its diff_id."""
        d = self.content.ingest(stream)
        return LayerInput(Descriptor(media_type, d, self.content.size(d)), d)

    def unpack(self, layers: list[LayerInput]) -> str | None:
        """Make sure a committed snapshot exists for every layer; returns the top chainID."""
        from kade.archive import apply_layer, open_decompressed

        parent = None
        self.snapshots.reap()  # what killed extractions left: their owners are dead
        for chain_id, layer in zip(dg.chain_ids([lay.diff_id for lay in layers]), layers):
            if not self.snapshots.exists(chain_id):
                key = self.snapshots.extraction_key()
                self.snapshots.prepare(key, parent)
                try:
                    with self.content.open(layer.descriptor.digest) as raw, \
                            open_decompressed(raw) as stream:
                        apply_layer(stream, self.snapshots.upper_dir(key),
                                    whiteouts=self.snapshots.whiteouts)
                    self._commit_snapshot(chain_id, key)
                except BaseException:
                    if self.snapshots.exists(key):
                        self.snapshots.remove(key)
                    raise
            else:
                self.snapshots.claim(chain_id)  # a killed unpack's: this one's now
            parent = chain_id
        return parent

    def _commit_snapshot(self, chain_id: str, key: str) -> None:
        from kade.errors import AlreadyExists
        try:
            self.snapshots.commit(chain_id, key)
        except AlreadyExists:  # another process unpacked the same layer meanwhile
            self.snapshots.remove(key)

    def create(self, config: dict, layers: list[LayerInput], tags: list[str] = (),
               *, repo_digest: str | None = None, parent: str | None = None) -> str:
        """Write config and manifest, unpack, record the image, then tag it. With
        parent, the image is a build step's (intermediate: hidden from `images`
        without -a, kept until `builder prune`) unless it was recorded before."""
        config.setdefault("rootfs", {})["type"] = "layers"
        config["rootfs"]["diff_ids"] = [lay.diff_id for lay in layers]
        return self.create_from_config_bytes(canonical_json(config), layers, tags,
                                             repo_digest=repo_digest, parent=parent)

    def create_from_config_bytes(self, config_bytes: bytes, layers: list[LayerInput],
                                 tags: list[str] = (), *, repo_digest: str | None = None,
                                 parent: str | None = None) -> str:
        """create() for a config whose exact bytes are the image id (load, pull)."""
        config = fastjson.loads(config_bytes)
        if (config.get("rootfs") or {}).get("diff_ids") != [lay.diff_id for lay in layers]:
            raise InvalidArgument("image config's rootfs.diff_ids do not match its layers")
        self.unpack(layers)
        image_id = self.content.put(config_bytes)
        manifest = {
            "schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config_bytes),
                       "digest": image_id},
            "layers": [lay.descriptor.to_json() for lay in layers],
        }
        manifest_digest = self.content.put(canonical_json(manifest))
        size = sum(self.snapshots.usage(c) for c in dg.chain_ids(config["rootfs"]["diff_ids"]))
        rec = {"id": image_id, "manifest": manifest_digest, "size": size,
               "layers": [{"digest": lay.descriptor.digest, "size": lay.descriptor.size,
                           "mediaType": lay.descriptor.media_type, "diff_id": lay.diff_id}
                          for lay in layers],
               "repo_digests": [repo_digest] if repo_digest else []}
        if parent is not None:
            rec.update(intermediate=True, parent=parent)
        old = self.db.get_image(image_id)
        if old:
            rec["repo_digests"] = sorted(set(old.get("repo_digests", []) + rec["repo_digests"]))
            for key in ("intermediate", "parent"):
                rec.pop(key, None)
                if key in old:
                    rec[key] = old[key]
        with self.db.tx():  # the layers are the image's from now on, not their unpack's
            self.db.put_image(image_id, _created_ts(config), rec)
            self.snapshots.release(dg.chain_ids(config["rootfs"]["diff_ids"]))
        for tag in tags:
            self.tag(image_id, tag)
        return image_id

    def mark_final(self, image_id: str) -> None:
        """A build's result is an image like any other, no longer build cache."""
        rec = self.record(image_id)
        if rec.pop("intermediate", None):
            self.db.put_image(image_id, _created_ts(self.config(image_id)), rec)

    # --- tags and removal ----------------------------------------------------
    def tag(self, image_id: str, ref: str) -> str:
        parsed = reference.parse(ref)
        if parsed.digest:
            raise InvalidArgument(f'refusing to create a tag with a digest reference: "{ref}"')
        rec = self.record(image_id)
        rec["last_tag_time"] = now_rfc3339()
        self.db.put_image(image_id, _created_ts(self.config(image_id)), rec)
        self.db.set_tag(str(parsed), image_id, time.time())
        return str(parsed)

    def untag(self, ref: str) -> str:
        name = str(reference.parse(ref))
        image_id = self.db.get_tag(name)
        if image_id is None:
            raise NotFound(f"no such image: {ref}")
        self.db.delete_tag(name)
        return image_id

    def tags_of(self, image_id: str) -> list[str]:
        return [reference.parse(t).familiar() for t in self.db.tags_of(image_id)]

    def delete(self, image_id: str) -> list[str]:
        """Remove the record, then layers no other image uses. Returns deleted chainIDs."""
        rec = self.record(image_id)
        self.db.delete_image(image_id)
        return self._drop_unused_layers(rec)

    def _drop_unused_layers(self, rec: dict) -> list[str]:
        in_use = set()
        for _, _, other in self.db.images():
            in_use.update(dg.chain_ids([lay["diff_id"] for lay in other["layers"]]))
        deleted = []
        for chain_id in reversed(dg.chain_ids([lay["diff_id"] for lay in rec["layers"]])):
            if chain_id in in_use or not self.snapshots.exists(chain_id):
                continue
            try:
                self.snapshots.remove(chain_id)
            except Exception:
                break  # a container still stands on it
            deleted.append(chain_id)
        return deleted

    def top_layer(self, image_id: str) -> str | None:
        ids = [lay["diff_id"] for lay in self.record(image_id)["layers"]]
        return dg.chain_ids(ids)[-1] if ids else None

    def referenced_layers(self) -> set[str]:
        """Chain ids of every image's layers (build steps' images too)."""
        return {c for _, _, rec in self.db.images()
                for c in dg.chain_ids([lay["diff_id"] for lay in rec["layers"]])}

    def referenced_blobs(self) -> set[str]:
        out: set[str] = set()
        for image_id, _, rec in self.db.images():
            out.update({image_id, rec["manifest"]})
            out.update(lay["digest"] for lay in rec["layers"])
        return out


def _looks_like_id(s: str) -> bool:
    return 1 <= len(s) <= 64 and all(c in "0123456789abcdef" for c in s)


def _created_ts(config: dict) -> float:
    from kade.util.ids import parse_rfc3339
    return parse_rfc3339(config.get("created", "")) or time.time()
