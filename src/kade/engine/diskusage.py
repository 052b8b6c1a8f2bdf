"""`system df`: images, containers, local volumes and the build cache."""

from __future__ import annotations

from kade.util.fs import du


def build_cache_row(engine, images: list) -> dict:
    """Intermediate images of build steps: the layer each added, as docker counts
    its build cache records."""
    from kade.util.units import human_size
    size, count = 0, 0
    for image_id, _, rec in images:
        if not rec.get("intermediate"):
            continue
        count += 1
        top = engine.images.top_layer(image_id)
        parent = (engine.db.get_image(rec.get("parent") or "") or {}).get("layers")
        if top and len(rec["layers"]) > len(parent or []) and engine.snapshots.exists(top):
            size += engine.snapshots.usage(top)
    return {"Type": "Build Cache", "TotalCount": count, "Active": 0,
            "Size": human_size(size), "Reclaimable": human_size(size)}


def _repo_tag(name: str) -> dict:
    """REPOSITORY and TAG as `images` shows them: the familiar name, which keeps a
    registry and namespace (`localhost:5000/team/app`) and drops only docker.io/library."""
    if not name:
        return {"Repository": "<none>", "Tag": "<none>"}
    from kade.oci import reference
    ref = reference.parse_stored(name)
    return {"Repository": ref.familiar_name(), "Tag": ref.tag or "<none>"}


def disk_usage(engine) -> dict:
    from kade.util.units import human_size
    # what killed commands left is removed before counting (docker's daemon never
    # leaves any): so every snapshot on disk is one a row below counts
    engine.snapshots.reap(strays=True)
    every = engine.db.images()
    images = [x for x in every if not x[2].get("intermediate")]
    containers = engine.containers.list(all_=True)
    used_images = {r["Image"] for r, _ in containers}
    img_size = sum(rec.get("size", 0) for _, _, rec in images)
    img_reclaim = sum(rec.get("size", 0) for i, _, rec in images if i not in used_images)
    sizes = {}
    for r, _ in containers:
        try:
            sizes[r["Id"]] = engine.snapshots.usage(r["Id"])
        except Exception:
            sizes[r["Id"]] = 0
    c_size = sum(sizes.values())
    c_reclaim = sum(sizes[r["Id"]] for r, s in containers if not s["Running"])
    vols = engine.volumes.list()
    v_sizes = {v["Name"]: du(v["Mountpoint"]) for v in vols}
    v_active = [v for v in vols if engine.volumes.users(v["Name"])]
    v_reclaim = sum(v_sizes[v["Name"]] for v in vols if v not in v_active)

    def pct(part, whole):
        return f"{human_size(part)} ({int(100 * part / whole) if whole else 0}%)"

    summary = [
        {"Type": "Images", "TotalCount": len(images), "Active": len(used_images),
         "Size": human_size(img_size), "Reclaimable": pct(img_reclaim, img_size)},
        {"Type": "Containers", "TotalCount": len(containers),
         "Active": sum(1 for _, s in containers if s["Running"]),
         "Size": human_size(c_size), "Reclaimable": pct(c_reclaim, c_size)},
        {"Type": "Local Volumes", "TotalCount": len(vols), "Active": len(v_active),
         "Size": human_size(sum(v_sizes.values())),
         "Reclaimable": pct(v_reclaim, sum(v_sizes.values()))},
        build_cache_row(engine, every),
    ]
    verbose = [
        ("Images space usage", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"
         "\t{{.Containers}}",
         [dict(_repo_tag(t), ID=i[7:19], Size=human_size(rec.get("size", 0)),
               Containers=sum(1 for r, _ in containers if r["Image"] == i))
          for i, _, rec in images for t in (engine.db.tags_of(i) or [""])],
         {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE",
          "Containers": "CONTAINERS"}),
        ("Containers space usage", "table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t"
         "{{.Names}}",
         [{"ID": r["Id"][:12], "Image": r["Config"]["Image"], "Size": human_size(sizes[r["Id"]]),
           "Status": s["Status"], "Names": r["Name"][1:]} for r, s in containers],
         {"ID": "CONTAINER ID", "Image": "IMAGE", "Size": "SIZE", "Status": "STATUS",
          "Names": "NAMES"}),
        ("Local Volumes space usage", "table {{.Name}}\t{{.Links}}\t{{.Size}}",
         [{"Name": v["Name"], "Links": len(engine.volumes.users(v["Name"])),
           "Size": human_size(v_sizes[v["Name"]])} for v in vols],
         {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    ]
    return {"summary": summary, "verbose": verbose}
