"""The images router's engine surface: the calls `kade images|rmi|tag|history|
pull|push|save|load|import|commit|image prune` make, nothing more."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Callable, Protocol

if TYPE_CHECKING:
    from kade.engine.listing import ImageSummary

Emit = Callable[[dict], None]


class Backend(Protocol):
    def list_images(self, all: bool = False,
                    filters: dict | None = None) -> list[ImageSummary]: ...

    def labels(self, image_id: str) -> dict: ...

    def inspect(self, ref: str) -> dict: ...

    def history(self, ref: str) -> list[dict]: ...

    def tag(self, ref: str, target: str) -> None: ...

    def remove(self, ref: str, force: bool) -> list[tuple[str, str]]: ...

    def prune(self, all_: bool, raw_filters: list[str]) -> tuple[list[tuple[str, str]], int]: ...

    def pull(self, ref: str, platform: str | None, emit: Emit, credentials) -> list: ...

    def push(self, ref: str, all_tags: bool, emit: Emit, credentials) -> list: ...

    def import_(self, stream: BinaryIO, ref: str | None, changes: list[str],
                message: str) -> str: ...

    def save(self, refs: list[str]) -> BinaryIO: ...

    def load(self, stream: BinaryIO) -> list[str]: ...

    def commit(self, container: str, reference: str | None, changes: list[str],
               message: str, author: str, pause: bool) -> str: ...

    def distribution(self, ref: str, credentials) -> dict: ...


class EngineBackend:
    def __init__(self, engine):
        self.engine = engine
        self.list_images = engine.list_images

    def labels(self, image_id: str) -> dict:
        return (self.engine.images.config(image_id).get("config") or {}).get("Labels") or {}

    def inspect(self, ref: str) -> dict:
        from kade.images.inspect import inspect_image
        return inspect_image(self.engine, ref)

    def history(self, ref: str) -> list[dict]:
        """`kade history`'s rows in the API's shape (full ids, seconds, bytes)."""
        from kade.images.history import history_rows
        from kade.oci import reference
        from kade.util.ids import parse_rfc3339
        images = self.engine.images
        out = []
        for r in history_rows(images, ref, no_trunc=True, human=False):
            tags = [reference.parse(t).familiar() for t in self.engine.db.tags_of(r["ID"])] \
                if r["ID"] != "<missing>" else []
            out.append({"Id": r["ID"], "Created": int(parse_rfc3339(r["CreatedAt"])),
                        "CreatedBy": r["CreatedBy"], "Tags": tags or None,
                        "Size": int(r["Size"]), "Comment": r["Comment"]})
        return out

    def tag(self, ref: str, target: str) -> None:
        images = self.engine.images
        image_id = images.resolve(ref)
        images.tag(image_id, target)
        self.engine.emit("image", "tag", image_id, {"name": target})

    def remove(self, ref: str, force: bool) -> list[tuple[str, str]]:
        return self.engine.remove_image(ref, force)

    def prune(self, all_: bool, raw_filters: list[str]):
        from kade.engine import prune
        return prune.images(self.engine, all_, prune.Filter(raw_filters))

    def pull(self, ref, platform, emit, credentials) -> list:
        from kade.engine import run
        return run.pull(self.engine, ref, platform=platform, emit=emit,
                        credentials=credentials)

    def push(self, ref, all_tags, emit, credentials) -> list:
        from kade.engine import run
        return run.push(self.engine, ref, all_tags=all_tags, emit=emit,
                        credentials=credentials)

    def import_(self, stream, ref, changes, message) -> str:
        from kade.images.importer import import_tarball
        image_id = import_tarball(self.engine.images, stream, ref, changes, message, "-")
        self.engine.emit("image", "import", image_id)
        return image_id

    def save(self, refs: list[str]) -> BinaryIO:
        """The archive in an unlinked file under the root (errors before any byte)."""
        import os
        import tempfile

        from kade.images import saveload
        scratch = os.path.join(self.engine.root, "tmp")
        os.makedirs(scratch, exist_ok=True)
        f = tempfile.TemporaryFile(dir=scratch)
        try:
            saveload.save(self.engine.images, refs, f)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f

    def load(self, stream: BinaryIO) -> list[str]:
        from kade.images import saveload
        return saveload.load(self.engine.images, stream)

    def commit(self, container, reference, changes, message, author, pause) -> str:
        from kade.engine import files
        cid = self.engine.containers.resolve(container)
        opts = files.CommitOptions(reference=reference, changes=tuple(changes),
                                   message=message, author=author, pause=pause)
        return files.commit(self.engine, cid, opts)

    def distribution(self, ref: str, credentials) -> dict:
        from kade.engine import run
        from kade.oci import reference
        parsed = reference.parse(ref)
        s = run.session(self.engine, credentials)
        try:
            repo = s.repository(parsed)
            data, media_type, digest = repo.get_manifest(parsed.digest or parsed.tag)
            return distribution_body(data, media_type, digest, repo)
        finally:
            s.close()


def distribution_body(data: bytes, media_type: str, digest: str, repo) -> dict:
    """dockerd's distribution inspect: the manifest's descriptor and its platforms
    (an index's entries, or a single manifest's config)."""
    import json
    manifest = json.loads(data)
    if "manifests" in manifest:
        platforms = [m["platform"] for m in manifest["manifests"] if m.get("platform")]
    else:
        resp = repo.open_blob(manifest["config"]["digest"])
        try:
            config = json.loads(resp.read(1 << 22))
        finally:
            resp.close()
        platforms = [{k: v for k, v in (("architecture", config.get("architecture", "")),
                                        ("os", config.get("os", "")),
                                        ("variant", config.get("variant"))) if v}]
    return {"Descriptor": {"mediaType": media_type, "digest": digest, "size": len(data)},
            "Platforms": platforms}
