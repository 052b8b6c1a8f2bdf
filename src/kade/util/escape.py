"""Untrusted text made safe for a terminal: one helper for every message.

A name from an image (a tar entry, a tag in a loaded archive, an error quoting
what a user or a registry sent) may carry terminal control sequences: ESC [2J
clears the screen, and a crafted archive could print a fake `Password:` prompt.
Every message Kade prints that quotes such text goes through `escape`, which
spells each unprintable character the way Go's %q does (\\x1b, \\n, \\u202e), so
the text is shown, never obeyed. Printable text is returned unchanged (and fast:
one str.isprintable call).
"""

from __future__ import annotations

_NAMED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
          "\v": "\\v"}


def _spell(c: str) -> str:
    if c.isprintable():
        return c
    named = _NAMED.get(c)
    if named:
        return named
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def escape(text: str) -> str:
    """text with every unprintable character (C0 and C1 controls, DEL, bidi
    overrides, line and paragraph separators) spelled as an escape."""
    if text.isprintable():
        return text
    return "".join(map(_spell, text))


def escape_lines(text: str) -> str:
    """escape() for a message of several lines: the newlines between them stay."""
    return "\n".join(map(escape, text.split("\n")))
