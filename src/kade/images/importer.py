"""`kade import`: a tarball (maybe compressed) becomes a one-layer image."""

from __future__ import annotations

import time
from typing import BinaryIO

from kade.images import changes as changes_mod
from kade.images.service import ImageService
from kade.oci.platform import host_arch
from kade.util.ids import now_rfc3339


def import_tarball(images: ImageService, stream: BinaryIO, ref: str | None,
                   changes: list[str], message: str, source: str) -> str:
    from kade.archive import open_decompressed
    from kade.oci import reference
    if ref:
        reference.parse(ref)  # a bad name fails before anything is stored
    config_section = changes_mod.apply({"Env": None, "Cmd": None}, changes)
    layer = images.ingest_layer(open_decompressed(stream))
    when = now_rfc3339(time.time())
    history = {"created": when, "comment": message or f"Imported from {source}"}
    config = {"architecture": host_arch(), "os": "linux", "created": when,
              "config": {k: v for k, v in config_section.items() if v is not None},
              "history": [history], "rootfs": {"type": "layers", "diff_ids": []}}
    return images.create(config, [layer], [ref] if ref else [])
