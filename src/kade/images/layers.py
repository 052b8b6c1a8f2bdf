"""The layer explorer (`kade image layers`, `kade history --layers`): what each layer
of an image did to the file system.

Each layer is read from its own tar in the content store (the diff the build or
the pull wrote), bottom first, against the merged tree of the layers below it:

    member over nothing below            -> added
    member over an entry below           -> changed (directories too, as docker diff)
    ".wh.NAME" hiding an entry below     -> removed NAME (and what was below it)
    "DIR/.wh..wh..opq" (opaque DIR)      -> removed: each entry below in DIR that the
                                            layer does not bring back (highest path)

A whiteout or opaque marker that hides nothing is not a change. Whiteouts apply
to the layers below only, so one layer's members are never hidden by its own
markers (the OCI image spec's rule).

A layer's size is docker's (kade.util.fs.du): every non-directory member's size
(a symlink's is its target's length), hard links once, whiteouts nothing.

The instruction that made a layer is the created_by of its history entry: the
history is walked in order and each entry not marked empty_layer takes the next
layer, as docker's history does.

The JSON shape (`--format json`), stable: a change list is sorted by path; a
path is absolute.

    {"Id": "sha256:…", "RepoTags": ["name:tag"],
     "Layers": [{"Index": 1, "DiffID": "sha256:…", "CreatedBy": "…",
                 "Created": "2023-11-14T22:13:20Z", "Comment": "", "Size": 1234,
                 "Added": ["/app"], "Changed": ["/etc"], "Removed": ["/bin/ls"]}],
     "Tree": [{"Path": "/app", "Type": "dir", "Layer": 1, "Size": 0,
               "LinkTarget": ""}]}          (Tree only with --tree)

Index counts from 1 at the bottom; a tree entry's Layer is the Index of the layer
that last wrote it. Type is one of file, dir, symlink, hardlink, char, block, fifo.
"""

from __future__ import annotations

from kade.util.record import field, record

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."
# tar type flag -> the Type the explorer names
_TYPES = {0x30: "file", 0x00: "file", 0x37: "file", 0x35: "dir", 0x32: "symlink",
          0x31: "hardlink", 0x33: "char", 0x34: "block", 0x36: "fifo"}


@record
class Node:
    """One entry of the merged tree: the layer (Index) that last wrote it."""
    layer: int
    kind: str
    size: int
    link: str = ""


@record
class Layer:
    index: int
    diff_id: str
    created_by: str = ""
    created: str = ""
    comment: str = ""
    size: int = 0
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    removed: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"Index": self.index, "DiffID": self.diff_id, "CreatedBy": self.created_by,
                "Created": self.created, "Comment": self.comment, "Size": self.size,
                "Added": self.added, "Changed": self.changed, "Removed": self.removed}


@record
class Exploration:
    image_id: str
    repo_tags: list
    layers: list  # of Layer, bottom first
    tree: dict  # path -> Node, the merged file system of all layers
    config: dict  # the image's config (its history)

    def to_json(self, *, tree: bool = False) -> dict:
        out: dict = {"Id": self.image_id, "RepoTags": self.repo_tags,
                     "Layers": [lay.to_json() for lay in self.layers]}
        if tree:
            out["Tree"] = [{"Path": p, "Type": n.kind, "Layer": n.layer, "Size": n.size,
                            "LinkTarget": n.link} for p, n in sorted(self.tree.items())]
        return out


def explore(images, ref: str) -> Exploration:
    """Every layer of image ref with its instruction, size and changes."""
    image_id = images.resolve(ref)
    config = images.config(image_id)
    rec = images.record(image_id)
    owners = layer_of_history(config)
    entries = config.get("history") or []
    made_by = {n: entries[i] for i, n in enumerate(owners) if n is not None}
    merged: dict[str, Node] = {}
    layers = []
    for n, lay in enumerate(rec["layers"], 1):
        with images.content.open(lay["digest"]) as raw:
            members = read_members(raw)
        h = made_by.get(n, {})
        layer = Layer(n, lay["diff_id"], h.get("created_by", ""), h.get("created", ""),
                      h.get("comment", ""))
        apply_members(layer, members, merged)
        layers.append(layer)
    return Exploration(image_id, images.tags_of(image_id), layers, merged, config)


def layer_of_history(config: dict) -> list[int | None]:
    """For each history entry in order, the Index of the layer it made (None for an
    empty_layer entry). No history: one entry per layer."""
    history = config.get("history")
    if not history:
        return list(range(1, len((config.get("rootfs") or {}).get("diff_ids") or []) + 1))
    out: list[int | None] = []
    n = 0
    for h in history:
        if h.get("empty_layer"):
            out.append(None)
        else:
            n += 1
            out.append(n)
    return out


def read_members(raw) -> list[tuple[str, str, int, str]]:
    """(absolute path, type, size, link target) of each member of a layer tar,
    compressed or not; the markers keep their ".wh." names."""
    from kade.archive import members, open_decompressed
    out = []
    with open_decompressed(raw) as stream:
        for e in members(stream):
            path = _clean(e.name)
            if path == "/":
                continue
            kind = _TYPES.get(e.kind, "file")
            size = e.size if kind == "file" else len(e.linkname.encode(
                "utf-8", "surrogateescape")) if kind == "symlink" else 0
            out.append((path, kind, size, e.linkname if kind in ("symlink", "hardlink")
                        else ""))
    return out


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def apply_members(layer: Layer, members: list[tuple[str, str, int, str]],
                  merged: dict[str, Node]) -> None:
    """Fill layer's changes and size from its members, and apply them to merged
    (the tree of the layers below, changed in place)."""
    own = {}
    markers = []
    for path, kind, size, link in members:
        parent, _, base = path.rpartition("/")
        if base.startswith(WHITEOUT_META) and base != OPAQUE:
            continue  # aufs's own bookkeeping (.wh..wh.plnk), not a change
        if base.startswith(WHITEOUT):
            markers.append((parent or "/", base))
        else:
            own[path] = Node(layer.index, kind, size, _link_path(kind, link))
    below = set(merged)
    removed = set()
    for parent, base in markers:
        removed |= _hidden(parent, base, own, merged)
    for path in removed:
        merged.pop(path, None)
    for path, node in own.items():
        old = merged.get(path) if path in below else None
        if old is not None and old.kind == "dir" and node.kind != "dir":
            _drop_below(path, merged)  # a file over a directory replaces its contents
        (layer.changed if old is not None else layer.added).append(path)
        merged[path] = node
    layer.removed = sorted(p for p in removed if _parent(p) not in removed)
    layer.added.sort()
    layer.changed.sort()
    layer.size = sum(n.size for n in own.values())


def _hidden(parent: str, base: str, own: dict, merged: dict[str, Node]) -> set[str]:
    """The paths of merged that marker base in directory parent hides."""
    prefix = parent.rstrip("/") + "/"
    if base == OPAQUE:  # everything below parent the layer does not bring back
        return {p for p in merged if p.startswith(prefix) and p not in own}
    target = prefix + base[len(WHITEOUT):]
    if target not in merged:
        return set()
    return {target} | {p for p in merged if p.startswith(target + "/")}


def _drop_below(path: str, merged: dict[str, Node]) -> None:
    for p in [p for p in merged if p.startswith(path + "/")]:
        del merged[p]


def _parent(path: str) -> str:
    return path.rpartition("/")[0] or "/"


def _link_path(kind: str, link: str) -> str:
    """A hard link names its target as a member name: show it as a path."""
    return _clean(link) if kind == "hardlink" and link else link

