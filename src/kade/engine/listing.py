"""List and filter policy for containers, images and volumes: what `kade ps`,
`kade images`, `kade volume ls` (and the Engine API's list endpoints, and compose)
show, with docker's filter names, values and errors. It returns value records; the
front doors format them (columns, human sizes and durations, --format templates).

    >>> engine.list_containers(all=True, filters={"label": ["app=web"]})
    [ContainerSummary(id='3f2a…', name='web-1', image='nginx', ...)]

Filters are docker's: {name: [values]} as `kade.util.filters.parse_filters` makes
them from `--filter` flags (or the API's `filters` query). Values of one name are
alternatives (any may match), except `label`, where all must. An unknown name fails
with docker's `invalid filter "NAME"` before anything is read.

This module is on `kade ps` and `kade images`' path: its records are `kade.util.record`
classes (no dataclasses, no typing), and `kade.util.filters` loads only when a filter
is given (~5 ms).
"""

from __future__ import annotations

from kade.util.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.engine.core import Engine

CONTAINER_FILTERS = ("status", "name", "label", "ancestor", "exited", "id", "before",
                     "since", "volume", "network", "health", "is-task", "publish", "expose")
IMAGE_FILTERS = ("dangling", "reference", "label", "before", "since")
VOLUME_FILTERS = ("name", "label", "dangling", "driver")


@record
class ContainerSummary:
    """A container as `ps` lists it."""
    id: str
    name: str  # without docker's leading "/"
    image: str  # as the user named it
    image_id: str
    command: str  # the entrypoint and arguments, joined by spaces
    created: float  # seconds since the epoch
    state: dict  # the reconciled state: Status, StartedAt, FinishedAt, ExitCode, Health
    labels: dict
    mounts: list  # the record's Mounts (inspect's form)
    record: dict  # the whole record: the ports and networks columns read it
    size_rw: int | None = None  # with size=True: bytes in the writable layer
    size_root_fs: int | None = None  # with size=True: that plus the image's


@record
class ImageSummary:
    """An image as `images` lists it: one per image, with its tags."""
    id: str
    created: float
    size: int
    repo_tags: list  # stored names ("docker.io/library/busybox:latest"), which filters kept
    repo_digests: dict  # repository -> manifest digest
    intermediate: bool  # a build step's image


@record
class VolumeSummary:
    name: str
    driver: str
    mountpoint: str
    labels: dict
    scope: str = "local"


def _parsed(filters: dict | None, allowed: tuple[str, ...]) -> dict:
    if not filters:
        return {}
    from kade.util.filters import check_keys
    check_keys(filters, allowed)
    return filters


# --- containers ------------------------------------------------------------------
def containers(engine: Engine, all: bool = False, filters: dict | None = None,
               last: int = -1, latest: bool = False,
               size: bool = False) -> list[ContainerSummary]:
    """docker's ps: running containers, or all of them with all, last >= 0, latest or
    a status/exited filter; newest first; last/latest keep the newest n/one."""
    filters = _parsed(filters, CONTAINER_FILTERS)
    show_all = all or last >= 0 or latest or bool(filters.get("status")) or \
        bool(filters.get("exited"))
    items = [(r, s) for r, s in engine.containers.list(all_=show_all)
             if _container_matches(engine, r, s, filters)]
    if latest:
        items = items[:1]
    elif last >= 0:
        items = items[:last]
    return [_container_summary(engine, r, s, size) for r, s in items]


def _container_summary(engine: Engine, rec: dict, state: dict,
                       size: bool) -> ContainerSummary:
    from kade.util.ids import parse_rfc3339
    cfg = rec["Config"]
    out = ContainerSummary(
        id=rec["Id"], name=rec["Name"].lstrip("/"), image=cfg["Image"], image_id=rec["Image"],
        command=" ".join([rec["Path"], *rec["Args"]]), created=parse_rfc3339(rec["Created"]),
        state=state, labels=cfg.get("Labels") or {}, mounts=rec["Mounts"], record=rec)
    if size:
        try:
            out.size_rw = engine.snapshots.usage(rec["Id"])
        except Exception:
            out.size_rw = 0  # its layer is gone (removed meanwhile): docker shows 0 B
        image = engine.db.get_image(rec["Image"])
        out.size_root_fs = out.size_rw + (image["size"] if image else 0)
    return out


def _container_matches(engine: Engine, rec: dict, state: dict, filters: dict) -> bool:
    if not filters:
        return True
    from kade.util.filters import match_label
    for key, values in filters.items():
        if key == "status" and state["Status"] not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in rec["Name"].lstrip("/")
                                     for v in values):
            return False
        if key == "id" and not any(rec["Id"].startswith(v) for v in values):
            return False
        if key == "label" and not all(match_label(rec["Config"].get("Labels") or {}, v)
                                      for v in values):
            return False
        if key == "exited" and not (state["Status"] == "exited" and
                                    str(state["ExitCode"]) in values):
            return False
        if key == "ancestor" and not _ancestor(engine, rec, values):
            return False
        if key == "volume" and not any(v in (m.get("Name"), m.get("Destination"))
                                       for m in rec["Mounts"] for v in values):
            return False
    return True


def _ancestor(engine: Engine, rec: dict, values: list[str]) -> bool:
    for v in values:
        try:
            if engine.images.resolve(v) == rec["Image"]:
                return True
        except Exception:
            continue  # an image that does not resolve is no container's ancestor
    return False


# --- images ----------------------------------------------------------------------
def images(engine: Engine, all: bool = False,
           filters: dict | None = None) -> list[ImageSummary]:
    """docker's images: newest first; a build step's untagged image only with all."""
    filters = _parsed(filters, IMAGE_FILTERS)
    dangling = None
    if "dangling" in filters:
        from kade.util.filters import bool_filter
        dangling = bool_filter(filters, "dangling", False)
    every = engine.db.images()
    pivots = {key: _pivot(engine, every, filters[key][-1])
              for key in ("before", "since") if key in filters}
    tags_by_image: dict[str, list[str]] = {}
    for name, image_id in engine.db.tags():
        tags_by_image.setdefault(image_id, []).append(name)
    out = []
    for image_id, created, rec in every:
        names = tags_by_image.get(image_id, [])
        if rec.get("intermediate") and not names and not all:
            continue  # a build step's image: build cache, listed with -a as docker does
        if dangling is not None and dangling != (not names):
            continue
        if "reference" in filters:
            names = _matching_names(names, filters["reference"])
            if not names:
                continue
        if "before" in pivots and not created < pivots["before"]:
            continue
        if "since" in pivots and not created > pivots["since"]:
            continue
        if "label" in filters and not _image_labels_match(engine, image_id, filters["label"]):
            continue
        out.append(ImageSummary(
            id=image_id, created=created, size=rec.get("size", 0), repo_tags=names,
            repo_digests=dict(d.split("@", 1) for d in rec.get("repo_digests", [])),
            intermediate=bool(rec.get("intermediate"))))
    return out


def _pivot(engine: Engine, every: list, ref: str) -> float:
    """The creation time of the image that before=/since= name."""
    ref_id = engine.images.resolve(ref)
    return next(c for i, c, _ in every if i == ref_id)


def _matching_names(names: list[str], patterns: list[str]) -> list[str]:
    from kade.util.filters import match_reference
    return [n for n in names if any(match_reference(n, p) for p in patterns)]


def _image_labels_match(engine: Engine, image_id: str, wanted: list[str]) -> bool:
    from kade.util.filters import match_label
    labels = (engine.images.config(image_id).get("config") or {}).get("Labels") or {}
    return all(match_label(labels, v) for v in wanted)


# --- volumes ---------------------------------------------------------------------
def volumes(engine: Engine, filters: dict | None = None) -> list[VolumeSummary]:
    """docker's volume ls: name (substring), label, dangling (no container uses it),
    driver."""
    from kade.util.filters import bool_filter, match_label
    filters = _parsed(filters, VOLUME_FILTERS)
    dangling = bool_filter(filters, "dangling", False)
    vols = engine.volumes
    out = []
    for rec in vols.list():
        if "name" in filters and not any(v in rec["Name"] for v in filters["name"]):
            continue
        if "label" in filters and not all(match_label(rec.get("Labels") or {}, v)
                                          for v in filters["label"]):
            continue
        if "dangling" in filters and dangling == bool(vols.users(rec["Name"])):
            continue
        if "driver" in filters and rec["Driver"] not in filters["driver"]:
            continue
        out.append(VolumeSummary(name=rec["Name"], driver=rec["Driver"],
                                 mountpoint=rec["Mountpoint"],
                                 labels=rec.get("Labels") or {}))
    return out
