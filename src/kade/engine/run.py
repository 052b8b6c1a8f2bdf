"""Finding (later: pulling) the image a new container needs."""

from __future__ import annotations

import sys

from kade.errors import NotFound


def ensure_image(engine, ref: str, pull: str = "missing", quiet: bool = False) -> str:
    images = engine.images
    image_id = images.try_resolve(ref)
    if image_id and pull != "always":
        return image_id
    if pull == "never":
        raise NotFound(f"no such image: {ref}")
    from kade.oci import reference
    familiar = reference.parse(ref).familiar()
    if not quiet:
        sys.stderr.write(f"Unable to find image '{familiar}' locally\n")
    raise NotFound(f'image "{familiar}" not found locally; pull failed: no registry client '
                   "yet (use 'kade image bootstrap', 'kade load' or 'kade import')")
