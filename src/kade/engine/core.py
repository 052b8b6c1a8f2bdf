"""Engine: wires the stores together and exposes the container and image verbs."""

from __future__ import annotations

import _thread
import os
import time

from kade.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.engine.diskusage import DiskUsage
    from kade.engine.listing import ContainerSummary, ImageSummary, VolumeSummary

_opening = _thread.RLock()


class cached_property:
    """functools.cached_property without importing functools (~5 ms on `kade run`,
    which makes an Engine only to find the supervisor). The lock makes one
    thread open a store while the supervisor's other monitors wait for it."""

    def __init__(self, fn):
        self.fn, self.name = fn, fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        with _opening:
            try:
                return obj.__dict__[self.name]
            except KeyError:
                value = obj.__dict__[self.name] = self.fn(obj)
                return value


def default_root() -> str:
    return os.environ.get("KADE_ROOT", "/var/lib/kade")


class Engine:
    def __init__(self, root: str | None = None, storage_driver: str | None = None):
        self.root = os.path.abspath(root or default_root())
        self._driver = storage_driver or os.environ.get("KADE_STORAGE_DRIVER")

    # --- stores, opened on first use so `kade ps` touches only the database ---
    @cached_property
    def db(self):
        from kade.metadata import open_db
        return open_db(self.root)

    @cached_property
    def content(self):
        from kade.content import ContentStore
        return ContentStore(os.path.join(self.root, "content"))

    @cached_property
    def driver(self) -> str:
        path = os.path.join(self.root, "storage-driver")
        try:
            with open(path) as f:
                recorded = f.read().strip()
        except FileNotFoundError:
            recorded = None
        if recorded and self._driver and recorded != self._driver:
            raise InvalidArgument(f'root "{self.root}" uses storage driver "{recorded}", '
                                  f'not "{self._driver}"')
        driver = recorded or self._driver or _auto_driver()
        if not recorded:
            os.makedirs(self.root, exist_ok=True)
            with open(path, "w") as f:
                f.write(driver + "\n")
        return driver

    @cached_property
    def snapshots(self):
        from kade.snapshots import open_snapshotter
        return open_snapshotter(self.root, self.driver, self.db)

    @cached_property
    def images(self):
        from kade.images import ImageService
        return ImageService(self.content, self.db, self.snapshots)

    @cached_property
    def runtime(self):
        from kade.runtime import Runtime
        return Runtime(os.path.join(self.root, "runtime"))

    @cached_property
    def volumes(self):
        from kade.volumes import VolumeService
        return VolumeService(self.root, self.db)

    @cached_property
    def containers(self):
        from kade.engine.containers import Containers
        return Containers(self)

    @cached_property
    def networks(self):
        from kade.engine.networks import Networks
        return Networks(self)

    def close_handles(self) -> None:
        """Close the database and drop everything holding it. Must precede fork():
        SQLite state copied into a child makes it skip real locks, and then the
        parent's exit checkpoints away the WAL the child still writes into."""
        db = self.__dict__.pop("db", None)
        if db is not None:
            db.conn.close()
        for name in ("snapshots", "images", "volumes", "containers", "networks"):
            self.__dict__.pop(name, None)

    # --- events --------------------------------------------------------------
    def emit(self, type_: str, action: str, actor: str, attrs: dict | None = None, *,
             record: dict | None = None) -> None:
        """Record an event; container events carry the container's labels, image
        and name, as docker's do (from `record` when the caller has it at hand)."""
        ns = time.time_ns()  # a float of seconds would round the nanoseconds away
        attrs = dict(attrs or {})
        if type_ == "container":
            attrs = {**self._container_attrs(actor, record), **attrs}
        self.db.add_event(ns / 1e9, {"Type": type_, "Action": action, "status": action,
                                     "id": actor, "Actor": {"ID": actor, "Attributes": attrs},
                                     "scope": "local", "time": ns // 1_000_000_000,
                                     "timeNano": ns})

    def _container_attrs(self, cid: str, record: dict | None = None) -> dict:
        if record is None:
            try:
                record, _ = self.db.container(cid)
            except NotFound:
                return {}  # destroyed already: the caller passes name and image
        cfg = record["Config"]
        return {**(cfg.get("Labels") or {}), "image": cfg.get("Image", ""),
                "name": record["Name"].lstrip("/")}

    # --- listing: docker's filters, value records (kade.engine.listing) ----------
    def list_containers(self, all: bool = False, filters: dict | None = None,
                        last: int = -1, latest: bool = False,
                        size: bool = False) -> list[ContainerSummary]:
        from kade.engine import listing
        return listing.containers(self, all, filters, last, latest, size)

    def list_images(self, all: bool = False,
                    filters: dict | None = None) -> list[ImageSummary]:
        from kade.engine import listing
        return listing.images(self, all, filters)

    def list_volumes(self, filters: dict | None = None) -> list[VolumeSummary]:
        from kade.engine import listing
        return listing.volumes(self, filters)

    def list_networks(self, filters: dict | None = None) -> list[dict]:
        """Network records (inspect's form), filtered as `network ls` does."""
        return self.networks.listing(filters or {})

    def disk_usage(self) -> DiskUsage:
        """`system df`'s counts and sizes (kade.engine.diskusage)."""
        from kade.engine.diskusage import disk_usage
        return disk_usage(self)

    # --- images: policy that spans images and containers ----------------------
    def remove_image(self, ref: str, force: bool = False) -> list[tuple[str, str]]:
        """Docker's rmi: untag, and delete when no tag is left. Returns output lines."""
        images = self.images
        image_id = images.resolve(ref)
        tags = images.db.tags_of(image_id)
        by_name = image_id != ref and not ref.startswith("sha256:") and not _is_hex(ref)
        users = self.db.containers_using_image(image_id)
        if by_name and len(tags) > 1:
            images.untag(ref)
            return [("Untagged", _familiar(images, ref))]
        if users and not force:
            state = "running" if self._any_running(users) else "stopped"
            raise Conflict(f"conflict: unable to remove repository reference \"{ref}\" "
                           f"(must force) - container {users[0][:12]} is using its "
                           f"referenced image {image_id[7:19]}" if by_name else
                           f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                           f"image is being used by {state} container {users[0][:12]}")
        if not by_name and len(tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                           "image is referenced in multiple repositories")
        out = [("Untagged", _familiar(images, t)) for t in tags]
        for t in tags:
            images.db.delete_tag(t)
        if users:
            return out  # forced: the image stays, untagged, while containers use it
        for chain_id in [image_id] + images.delete(image_id):
            out.append(("Deleted", chain_id))
        self.emit("image", "delete", image_id)
        return out

    def _any_running(self, ids: list[str]) -> bool:
        return any(self.containers.state(i)["Running"] for i in ids)

    def image_in_use(self, image_id: str) -> bool:
        return bool(self.db.containers_using_image(image_id))

    def resolve_container(self, ref: str) -> str:
        return self.containers.resolve(ref)


def _familiar(images, ref: str) -> str:
    from kade.oci import reference
    return reference.parse(ref).familiar()


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def _auto_driver() -> str:
    from kade.snapshots.base import overlay_supported
    return "overlay" if overlay_supported() else "copy"


def not_found_container(ref: str) -> NotFound:
    return NotFound(f"no such container: {ref}")
