"""The interactive layer explorer, as the `dive` tool offers it: the layers on the
left (up/down moves between them), the selected layer's instruction and files on
the right (+ added, ~ changed, - removed; tab moves there to scroll them).

Built on urwid (~110 ms to import, against ~160 ms and eight packages for
textual), imported only here, and this module only by `kade image layers` when
stdin and stdout are terminals and no --format or --tree is given.
"""

from __future__ import annotations

from typing import Any

import urwid

from kade.cli.layers import changes, layer_title
from kade.util.escape import escape

PALETTE = [
    ("focus", "black", "light cyan"),
    ("title", "bold", ""),
    ("A", "light green", ""),
    ("C", "yellow", ""),
    ("D", "light red", ""),
    ("help", "black", "light gray"),
]
MARKS = {"A": "+", "C": "~", "D": "-"}
HELP = " ↑/↓ layer   tab files/layers   PgUp/PgDn scroll   q quit "


class LayersView:
    def __init__(self, found) -> None:
        self.found = found
        total = len(found.layers)
        items = [urwid.AttrMap(urwid.SelectableIcon(_layer_line(lay, total), 0,
                                                    wrap="ellipsis"), None, "focus")
                 for lay in found.layers]
        self.layers = urwid.SimpleFocusListWalker(items)
        self.files: Any = urwid.SimpleFocusListWalker([])  # AttrMaps, or one Text
        self.header = urwid.Text("")
        left = urwid.LineBox(urwid.ListBox(self.layers), title="Layers")
        right: urwid.Widget = urwid.LineBox(
            urwid.Frame(urwid.ListBox(self.files), header=self.header), title="Files")
        self.columns = urwid.Columns([("weight", 2, left), ("weight", 3, right)])
        self.top: urwid.Widget = urwid.Frame(
            self.columns, footer=urwid.AttrMap(urwid.Text(HELP), "help"))
        urwid.connect_signal(self.layers, "modified", self.show)
        self.show()

    def show(self) -> None:
        """Fill the right pane with the layer that has the focus."""
        _, pos = self.layers.get_focus()
        layer = self.found.layers[pos or 0]
        self.header.set_text([("title", layer_title(layer, len(self.found.layers))), "\n",
                              escape(layer.created_by) or "(no history)", "\n"])
        rows = [urwid.SelectableIcon([(letter, MARKS[letter]), " ", escape(path)], 0)
                for letter, path in changes(layer)]
        shown: list[urwid.Widget] = [urwid.AttrMap(r, None, "focus") for r in rows]
        self.files[:] = shown or [urwid.Text("(no files)")]
        self.files.set_focus(0)

    def keys(self, key: str | tuple[str, int, int, int]) -> None:
        if key in ("q", "Q", "esc"):
            raise urwid.ExitMainLoop()
        if key == "tab":
            self.columns.focus_position = 1 - self.columns.focus_position

    def run(self) -> None:
        urwid.MainLoop(self.top, PALETTE, unhandled_input=self.keys).run()


def _layer_line(layer, total: int) -> str:
    from kade.util.units import human_size
    width = len(str(total))
    by = layer.created_by.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
    return f"{layer.index:>{width}}  {human_size(layer.size):>8}  {escape(by.strip())}"


def run(found) -> int:
    if not found.layers:
        print("the image has no layers")
        return 0
    LayersView(found).run()
    return 0
