"""`kade history`: the config's history joined with its layers, newest first."""

from __future__ import annotations

import time

from kade.oci import digest as dg


def history_rows(images, ref: str, *, no_trunc: bool = False, human: bool = True) -> list[dict]:
    from kade.util.ids import parse_rfc3339
    from kade.util.units import human_duration, human_size
    image_id = images.resolve(ref)
    config = images.config(image_id)
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    chain = dg.chain_ids(diff_ids)
    sizes = [images.snapshots.usage(c) if images.snapshots.exists(c) else 0 for c in chain]
    rows, layer = [], 0
    now = time.time()
    history = config.get("history") or [{} for _ in diff_ids]
    for h in history:
        empty = h.get("empty_layer", False)
        size = 0 if empty or layer >= len(sizes) else sizes[layer]
        if not empty:
            layer += 1
        created = parse_rfc3339(h.get("created", ""))
        by = h.get("created_by", "")
        if not no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append({"ID": "<missing>", "CreatedBy": by, "Comment": h.get("comment", ""),
                     "CreatedSince": (human_duration(now - created) + " ago") if human
                     else h.get("created", ""), "CreatedAt": h.get("created", ""),
                     "Size": human_size(size) if human else str(size)})
    rows.reverse()
    for k, known in enumerate(_ancestors(images, image_id, len(rows))):
        if known:
            rows[k]["ID"] = known if no_trunc else known[7:19]
    return rows


def _ancestors(images, image_id: str, depth: int) -> list[str | None]:
    """The local image each history row (newest first) made, where one is known:
    the image itself, then the parents a build recorded, as docker's legacy
    builder shows them; a parent counts only if its history is one row shorter."""
    out: list[str | None] = []
    current: str | None = image_id
    length = depth
    while current and len(out) < depth:
        rec = images.db.get_image(current)
        if rec is None:
            break
        if len(images.config(current).get("history") or []) != length:
            break
        out.append(current)
        current, length = rec.get("parent") or None, length - 1
    return out
