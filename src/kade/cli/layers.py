"""`kade image layers IMAGE` and `kade history --layers IMAGE`: the layer explorer.

Text (stdout not a terminal, or --format text): each layer, bottom first, with its
size, the instruction that made it and its changes as docker diff letters:

    Layer 3 of 4  6B  sha256:177e97965416
    /bin/sh -c #(nop) COPY file:bfbd12… in /app/
      C /app
      A /app/a.txt

--tree: the merged file system, each entry with the layer that last wrote it.
--format json: kade.images.layers' documented shape. On a terminal without
--format or --tree: the interactive view (cli/layers_tui.py, urwid), imported
only then.
"""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser, UsageError

USAGE = "kade image layers [OPTIONS] IMAGE"


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("image layers", USAGE)
    p.add_argument("--format", metavar="string",
                   help="Output format: json (its shape: docs/layers.md) or text "
                        "(the listing, on a terminal too)")
    p.add_argument("--tree", action="store_true",
                   help="Show the merged file system with the layer of each entry")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("image")
    ns = p.parse_args(args)
    if ns.format not in (None, "json", "text"):
        raise UsageError(f'unknown format "{ns.format}": use json or text')
    from kade.images.layers import explore
    found = explore(ctx.engine.images, ns.image)
    if ns.format == "json":
        import json
        print(json.dumps(found.to_json(tree=ns.tree), indent=4))
        return 0
    if ns.format is None and not ns.tree and sys.stdout.isatty() and sys.stdin.isatty():
        from kade.cli.layers_tui import run
        return run(found)
    sys.stdout.write(tree_text(found) if ns.tree else layers_text(found, ns.no_trunc))
    return 0


def changes(layer) -> list[tuple[str, str]]:
    """(letter, path) of a layer's changes, in path order: docker diff's letters."""
    out = [("A", p) for p in layer.added] + [("C", p) for p in layer.changed] + \
        [("D", p) for p in layer.removed]
    out.sort(key=lambda item: item[1].split("/"))
    return out


def layer_title(layer, total: int, no_trunc: bool = False) -> str:
    from kade.util.units import human_size
    diff_id = layer.diff_id if no_trunc else layer.diff_id[:19]
    return f"Layer {layer.index} of {total}  {human_size(layer.size)}  {diff_id}"


def layers_text(found, no_trunc: bool = False) -> str:
    from kade.util.escape import escape
    lines = []
    for layer in found.layers:
        lines.append(layer_title(layer, len(found.layers), no_trunc))
        lines.append(escape(layer.created_by) or "(no history)")
        lines += [f"  {letter} {escape(path)}" for letter, path in changes(layer)]
        lines.append("")
    return "\n".join(lines)


def tree_text(found) -> str:
    """LAYER, SIZE and the path as a tree (two spaces a level); a directory's name
    ends in "/", a symlink shows its target, a hard link the path it links to."""
    from kade.util.escape import escape
    from kade.util.units import human_size
    lines = ["LAYER  SIZE      PATH"]
    for path in sorted(found.tree, key=lambda p: p.split("/")):
        node = found.tree[path]
        depth = path.count("/") - 1
        name = escape(path.rpartition("/")[2])
        if node.kind == "dir":
            name, size = name + "/", "-"
        else:
            size = human_size(node.size)
        if node.kind == "symlink":
            name += f" -> {escape(node.link)}"
        elif node.kind == "hardlink":
            name += f" => {escape(node.link)}"
        lines.append(f"{node.layer:<5}  {size:<8}  {'  ' * depth}{name}")
    return "\n".join(lines) + "\n"


def history_changes(found, rows: list[str]) -> str:
    """`history --layers`: docker's history table (rows, newest first, header first)
    with each layer's changes below the row of the entry that made it."""
    from kade.images.layers import layer_of_history
    from kade.util.escape import escape
    owners = list(reversed(layer_of_history(found.config)))
    out = [rows[0]]
    for row, index in zip(rows[1:], owners):
        out.append(row)
        if index is not None and index <= len(found.layers):
            out += [f"    {letter} {escape(path)}"
                    for letter, path in changes(found.layers[index - 1])]
    return "\n".join(out) + "\n"
