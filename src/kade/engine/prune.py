"""Pruning: stopped containers, dangling (or unused) images, the system."""

from __future__ import annotations

from kade.errors import InvalidArgument, KadeError


class Filter:
    """docker's prune filters: until=TIME (created before it), label=K[=V] (every one
    must match) and label!=K[=V] (none may). No filters: everything matches."""

    def __init__(self, raw: list[str] | tuple[str, ...] = (), allowed=("until", "label",
                                                                      "label!")):
        self.until: float | None = None
        self.labels: list[str] = []
        self.not_labels: list[str] = []
        if not raw:
            return
        from kade.util.filters import check_keys, parse_filters
        from kade.util.units import parse_timestamp
        filters = parse_filters(raw)
        check_keys(filters, allowed)
        if "until" in filters:
            if len(filters["until"]) > 1:
                raise InvalidArgument("more than one until filter specified")
            self.until = parse_timestamp(filters["until"][0])
        self.labels = filters.get("label", [])
        self.not_labels = filters.get("label!", [])

    def matches(self, created: float, labels: dict | None) -> bool:
        if self.until is not None and created >= self.until:
            return False
        if not (self.labels or self.not_labels):
            return True
        from kade.util.filters import match_label
        labels = labels or {}
        return all(match_label(labels, e) for e in self.labels) and \
            not any(match_label(labels, e) for e in self.not_labels)


NO_FILTER = Filter()


def system_filter(raw: list[str], volumes: bool) -> Filter:
    """system prune's filters; volumes have no creation time to compare, as in docker."""
    flt = Filter(raw)
    if volumes and flt.until is not None:
        raise InvalidArgument("the until filter is not supported with --volumes")
    return flt


def containers(engine, flt: Filter = NO_FILTER) -> tuple[list[str], int]:
    removed, space = [], 0
    for record, state in engine.containers.list(all_=True):
        if state["Running"] or state["Status"] in ("paused", "restarting"):
            continue
        if flt is not NO_FILTER:
            from kade.util.ids import parse_rfc3339
            if not flt.matches(parse_rfc3339(record["Created"]),
                               record["Config"].get("Labels")):
                continue
        cid = record["Id"]
        try:
            space += engine.snapshots.usage(cid)
        except Exception:
            pass
        engine.containers.remove(cid)
        removed.append(cid)
    return removed, space


def images(engine, all_: bool = False, flt: Filter = NO_FILTER
           ) -> tuple[list[tuple[str, str]], int]:
    """Dangling images (no tag), or with all_ every image no container uses."""
    out: list[tuple[str, str]] = []
    space = 0
    used = {r["Image"] for r, _ in engine.containers.list(all_=True)}
    for image_id, created, rec in engine.db.images():
        tags = engine.db.tags_of(image_id)
        if image_id in used or (tags and not all_) or (rec.get("intermediate") and not tags):
            continue  # build steps' images are build cache: `builder prune` frees them
        if flt is not NO_FILTER and not flt.matches(
                created, (engine.images.config(image_id).get("config") or {}).get("Labels")):
            continue
        for t in tags:
            engine.db.delete_tag(t)
            out.append(("untagged", _familiar(t)))
        space += rec.get("size", 0)
        for item in [image_id] + engine.images.delete(image_id):
            out.append(("deleted", item))
    # layers a killed pull or load committed but never recorded an image for
    space += engine.snapshots.remove_orphans(engine.images.referenced_layers())
    return out, space


def build_cache(engine, all_: bool = False, until: float | None = None
                ) -> tuple[list[str], int]:
    """Free the build cache: the intermediate images of build steps (untagged, no
    container) with their cache entries. Without all_, only dangling ones: those
    no finished image was built from. until: only entries not used since then."""
    db = engine.db
    records = {i: rec for i, _, rec in db.images()}
    keep: set[str] = set()
    if not all_:
        for rec in records.values():
            parent = rec.get("parent") if not rec.get("intermediate") else None
            while parent and parent not in keep:
                keep.add(parent)
                parent = (records.get(parent) or {}).get("parent")
    entries = db.cache_entries()
    last_used: dict[str, float] = {}
    for _, image_id, _, used in entries:
        last_used[image_id] = max(used, last_used.get(image_id, 0.0))
    removed, space = [], 0
    for i, rec in records.items():
        if not rec.get("intermediate") or i in keep or db.tags_of(i) \
                or db.containers_using_image(i):
            continue
        if until is not None and last_used.get(i, 0.0) >= until:
            continue
        top = engine.images.top_layer(i)
        size = engine.snapshots.usage(top) if top and engine.snapshots.exists(top) else 0
        if top in engine.images.delete(i):
            space += size
        removed.append(i)
    gone = set(removed)
    db.cache_delete([k for k, image_id, _, _ in entries
                     if image_id in gone or image_id not in records])
    space += _clean_builder_dirs(engine, all_)
    return removed, space


def _clean_builder_dirs(engine, all_: bool) -> int:
    """Scratch directories of builds that are gone; with all_ the RUN --mount caches."""
    import os
    import shutil

    from kade.engine.build import CACHE_MOUNTS, TMP
    from kade.util.fs import du
    space = 0
    tmp = os.path.join(engine.root, TMP)
    for name in os.listdir(tmp) if os.path.isdir(tmp) else []:
        pid = name.split("-")[0]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue
        space += du(os.path.join(tmp, name))
        shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    mounts = os.path.join(engine.root, CACHE_MOUNTS)
    if all_ and os.path.isdir(mounts):
        space += du(mounts)
        shutil.rmtree(mounts, ignore_errors=True)
    return space


def _familiar(name: str) -> str:
    from kade.oci import reference
    return reference.parse(name).familiar()


def system(engine, all_: bool = False, volumes: bool = False, flt: Filter = NO_FILTER
           ) -> dict:
    cs, c_space = containers(engine, flt)
    nets = networks(engine, flt)
    ims, i_space = images(engine, all_, flt)
    _, b_space = build_cache(engine, all_, flt.until)
    vols, v_space = engine.volumes.prune(match=flt.matches) if volumes else ([], 0)
    garbage = collect_garbage(engine)
    return {"containers": cs, "networks": nets, "images": ims, "volumes": vols,
            "space": c_space + i_space + v_space + b_space + garbage}


def networks(engine, flt: Filter = NO_FILTER) -> list[str]:
    """Unused networks, and what a killed process left of any (leases, rules, veths);
    nothing at all where no network was ever made (no netlink, no nftables)."""
    if engine.db.q1("SELECT 1 FROM networks LIMIT 1") is None:
        return []
    return engine.networks.prune(None if flt is NO_FILTER else flt)


def collect_garbage(engine) -> int:
    """Blobs no image references, stray ingests, snapshots no one owns."""
    import os

    from kade.snapshots.base import EXTRACT
    keep = engine.images.referenced_blobs()
    space = 0
    for d in list(engine.content.walk()):
        if d not in keep:
            space += os.path.getsize(engine.content.path(d))
            engine.content.delete(d)
    engine.content.prune_ingests()
    container_ids = {cid for cid, _ in engine.db.container_ids()}
    snaps = engine.snapshots
    space += snaps.reap()
    space += snaps.remove_orphans(engine.images.referenced_layers())
    for info in reversed(snaps.walk()):
        if info.kind == "active" and not info.key.startswith(EXTRACT) and \
                info.key not in container_ids:
            try:
                snaps.remove(info.key)
            except Exception:
                continue
    snaps.cleanup()
    _leftover_bundles(engine)
    return space


def _leftover_bundles(engine) -> None:
    """Bundles (and their runtime state and cgroups) of containers no row knows: a
    supervisor died between an --rm container's unlist and purge. Keyed on bundles,
    never on runtime state, which `kade runtime` containers have without a row."""
    import os
    bundles = os.path.join(engine.root, "containers")
    try:
        names = os.listdir(bundles)
    except FileNotFoundError:
        return
    for cid in names:
        # a row comes before its bundle and ids are never reused: no row now, no row ever
        if engine.db.q1("SELECT 1 FROM containers WHERE id=?", cid) is None:
            try:
                engine.containers.purge(cid, None)
            except KadeError:
                continue  # not a container's bundle after all (a name runtime refuses)


