"""Layer and archive tars: safe fast extraction, OCI whiteouts, diffs, compression.

    apply_layer(stream, root)          a layer tar onto a snapshot directory
    extract_into(stream, root, dest)   a tar into a container (kade cp)
    write_layer(out, upper)            an overlay upper directory as a layer
    write_changes(out, old, new)       the difference of two trees as a layer
    write_tree(out, root, paths)       a tree or some paths of it (export, cp)
    TarWriter(out).add(...)            a tar of chosen files (the builder's COPY)
    members(stream)                    the members of a tar, data skipped
    open_decompressed(f) / compressor(f, kind) / detect(head)
"""

from kade.archive.compression import compressor, detect, open_decompressed
from kade.archive.diff import write_changes, write_layer
from kade.archive.tar import ApplyResult, apply_layer, extract_into, members
from kade.archive._writer import TarWriter
from kade.archive.tree import write_tree

__all__ = [
    "ApplyResult",
    "TarWriter",
    "apply_layer",
    "compressor",
    "detect",
    "extract_into",
    "members",
    "open_decompressed",
    "write_changes",
    "write_layer",
    "write_tree",
]
