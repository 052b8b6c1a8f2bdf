"""docker's ``--format`` for lists: ``table`` templates, ``json`` lines, plain templates.

    >>> rows = [{"ID": "3f4a9c", "Names": "web"}]
    >>> print(format_rows("table {{.ID}}\\t{{.Names}}", rows, {"ID": "CONTAINER ID",
    ...                                                      "Names": "NAMES"}), end="")
    CONTAINER ID   NAMES
    3f4a9c         web

A ``table`` format prints a header made by running the same template on ``headers``
(each field gives its column title) and aligns the cells, which the template separates
with tabs, as Go's text/tabwriter does with docker's settings: a column is as wide as
its widest cell plus 3 spaces and at least 10; the last cell of a line is not padded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


from kade.errors import InvalidArgument
from kade.util import gotemplate

TYPE_CHECKING = False  # not `from typing`: importing typing costs ~3 ms on `kade ps`
if TYPE_CHECKING:
    from typing import Any

__all__ = ["align", "format_rows", "tabwrite", "text_width"]

# docker: tabwriter.NewWriter(out, minwidth=10, tabwidth=1, padding=3, ' ', 0)
MIN_WIDTH = 10
PADDING = 3


def format_rows(fmt: str, rows: Iterable[Any], headers: Mapping[str, str],
                default: str | None = None) -> str:
    """Render ``rows`` with a ``--format`` value, a line per row (plus a header for
    ``table``). An empty ``fmt``, or "table" alone, means ``default``.

    Raises InvalidArgument for a malformed template or one that fails on a row.
    """
    if default is not None and fmt in ("", "table"):
        fmt = default
    if fmt == "json":
        return "".join(_json_line(row) + "\n" for row in rows)
    is_table = fmt.startswith("table")
    tmpl = gotemplate.compile(_prepare(fmt[len("table"):] if is_table else fmt))
    body = [tmpl.execute(row) + "\n" for row in rows]
    if not is_table:
        return "".join(body)
    header: list[str] = []
    try:
        tmpl.execute_into(header, headers, funcs=gotemplate.HEADER_FUNCS)
    except InvalidArgument:
        pass  # docker ignores a header that fails and prints what it rendered
    return tabwrite("".join(header) + "\n" + "".join(body))


def _prepare(fmt: str) -> str:
    """docker's preFormat: trim spaces, and let a typed \\t or \\n mean tab or newline."""
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def _json_line(row: Any) -> str:
    # docker's list rows marshal as maps, so `--format json` keys come out sorted
    if isinstance(row, Mapping):
        row = dict(sorted(row.items()))
    return gotemplate.render("{{json .}}", row)


def align(lines: list[str]) -> str:
    """Align tab-separated cells of ``lines``; each output line ends with a newline."""
    return tabwrite("".join(line + "\n" for line in lines))


def tabwrite(text: str, min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Go's tabwriter (padchar ' ', no flags) applied to ``text``.

    A cell is text ended by a tab; the text after a line's last tab belongs to no
    column. A column block is a run of consecutive lines that all have a cell in that
    column; each block is as wide as its widest cell plus ``padding``, at least
    ``min_width``. A form feed ends every block, as a newline that flushes.
    """
    return "\n".join(_tabwrite_section(part, min_width, padding) for part in text.split("\f"))


def _tabwrite_section(text: str, min_width: int, padding: int) -> str:
    lines = [line.replace("\v", "\t").split("\t") for line in text.split("\n")]
    widths = [[0] * (len(cells) - 1) for cells in lines]
    ncols = max((len(cells) - 1 for cells in lines), default=0)
    for col in range(ncols):
        start = 0
        while start < len(lines):
            if len(lines[start]) - 1 <= col:
                start += 1
                continue
            end = start
            width = min_width
            while end < len(lines) and len(lines[end]) - 1 > col:
                width = max(width, text_width(lines[end][col]) + padding)
                end += 1
            for i in range(start, end):
                widths[i][col] = width
            start = end
    out = []
    for cells, cell_widths in zip(lines, widths):
        padded = [cell + " " * (w - text_width(cell)) for cell, w in zip(cells, cell_widths)]
        out.append("".join(padded) + cells[-1])
    return "\n".join(out)


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide characters count 2, combining
    marks 0, like the go-runewidth that docker's tabwriter uses."""
    if text.isascii():
        return len(text)
    import unicodedata

    width = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width
