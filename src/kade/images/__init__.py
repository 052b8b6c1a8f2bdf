"""Images: records over the content store, tags, and unpacked layers.

An image is its config blob (its id is the config's digest, as in docker), a
manifest blob listing layer blobs, and one committed snapshot per layer named
by the layer's chainID. Layers are shared by every image that has them.

Order of writes (so a crash never shows half an image): layer blobs, then
snapshots, then config and manifest blobs, then the images row, then tags.
Anything written before the row is garbage until then, and `prune`/`check`
collect it.
"""

from kade.images.service import ImageService, LayerInput

__all__ = ["ImageService", "LayerInput"]
