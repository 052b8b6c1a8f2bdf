"""`system df`: images, containers, local volumes and the build cache, in bytes and
counts. The front doors format them (`cli/system.py`: human sizes, percentages)."""

from __future__ import annotations

from kade.util.fs import du
from kade.util.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.engine.core import Engine


@record
class UsageSummary:
    """One row of df's summary."""
    type: str  # docker's: "Images", "Containers", "Local Volumes", "Build Cache"
    total_count: int
    active: int
    size: int  # bytes
    reclaimable: int  # bytes


@record
class ImageUsage:
    id: str
    repo_tags: list  # stored names; empty when untagged
    size: int
    containers: int  # how many containers use it


@record
class ContainerUsage:
    id: str
    name: str  # without docker's leading "/"
    image: str  # as the user named it
    size: int  # the writable layer's bytes
    status: str


@record
class VolumeUsage:
    name: str
    links: int  # how many containers use it
    size: int


@record
class DiskUsage:
    summary: list  # [UsageSummary]: images, containers, local volumes, build cache
    images: list  # [ImageUsage]
    containers: list  # [ContainerUsage]
    volumes: list  # [VolumeUsage]


def build_cache(engine: Engine, images: list) -> UsageSummary:
    """Intermediate images of build steps: the layer each added, as docker counts
    its build cache records."""
    size, count = 0, 0
    for image_id, _, rec in images:
        if not rec.get("intermediate"):
            continue
        count += 1
        top = engine.images.top_layer(image_id)
        parent = (engine.db.get_image(rec.get("parent") or "") or {}).get("layers")
        if top and len(rec["layers"]) > len(parent or []) and engine.snapshots.exists(top):
            size += engine.snapshots.usage(top)
    return UsageSummary("Build Cache", count, 0, size, size)


def disk_usage(engine: Engine) -> DiskUsage:
    # what killed commands left is removed before counting (docker's daemon never
    # leaves any): so every snapshot on disk is one a row below counts
    engine.snapshots.reap(strays=True)
    every = engine.db.images()
    images = [x for x in every if not x[2].get("intermediate")]
    containers = engine.containers.list(all_=True)
    used_images = {r["Image"] for r, _ in containers}
    img_size = sum(rec.get("size", 0) for _, _, rec in images)
    img_reclaim = sum(rec.get("size", 0) for i, _, rec in images if i not in used_images)
    # layers a killed pull or load left, no image's: docker has no row for them, and
    # `image prune` frees them
    orphans = sum(i.size or 0 for i in engine.snapshots.orphans(
        engine.images.referenced_layers()))
    img_size, img_reclaim = img_size + orphans, img_reclaim + orphans
    sizes = {}
    for r, _ in containers:
        try:
            sizes[r["Id"]] = engine.snapshots.usage(r["Id"])
        except Exception:
            sizes[r["Id"]] = 0  # its layer went meanwhile
    c_reclaim = sum(sizes[r["Id"]] for r, s in containers if not s["Running"])
    vols = engine.volumes.list()
    links = {v["Name"]: len(engine.volumes.users(v["Name"])) for v in vols}
    v_sizes = {v["Name"]: du(v["Mountpoint"]) for v in vols}
    v_reclaim = sum(v_sizes[n] for n in v_sizes if not links[n])
    return DiskUsage(
        summary=[
            UsageSummary("Images", len(images), len(used_images), img_size, img_reclaim),
            UsageSummary("Containers", len(containers),
                         sum(1 for _, s in containers if s["Running"]),
                         sum(sizes.values()), c_reclaim),
            UsageSummary("Local Volumes", len(vols), sum(1 for n in links if links[n]),
                         sum(v_sizes.values()), v_reclaim),
            build_cache(engine, every)],
        images=[ImageUsage(i, engine.db.tags_of(i), rec.get("size", 0),
                           sum(1 for r, _ in containers if r["Image"] == i))
                for i, _, rec in images],
        containers=[ContainerUsage(r["Id"], r["Name"][1:], r["Config"]["Image"],
                                   sizes[r["Id"]], s["Status"]) for r, s in containers],
        volumes=[VolumeUsage(v["Name"], links[v["Name"]], v_sizes[v["Name"]]) for v in vols])
