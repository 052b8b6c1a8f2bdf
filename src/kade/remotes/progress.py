"""Pull and push progress: docker's JSON messages, and the CLI's way of showing them.

A message is a dict shaped like the Engine API's JSONMessage, so the same
stream can later go out of `POST /images/create` unchanged:

    {"status": "Pulling fs layer", "id": "181e5836e0a3"}
    {"status": "Downloading", "id": "181e5836e0a3",
     "progressDetail": {"current": 1048576, "total": 2029000}}
    {"status": "Digest: sha256:..."}

`Display` prints them as the docker CLI does: on a terminal, one line per id
redrawn in place with a progress bar; elsewhere, one line per message, and
messages that only carry progress are left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

Emit = Callable[[dict], None]
BAR_WIDTH = 50
REDRAW_EVERY = 0.1  # seconds between two redraws of the same line


def message(status: str, id: str = "", current: int | None = None,
            total: int | None = None) -> dict:
    msg: dict = {"status": status}
    if id:
        msg["id"] = id
    if current is not None:
        msg["progressDetail"] = {"current": current, **({"total": total} if total else {})}
    return msg


def discard(_: dict) -> None:
    pass


class Display:
    """Renders messages on a text stream; safe to call from several threads."""

    def __init__(self, out: TextIO, terminal: bool | None = None):
        self.out = out
        self.terminal = _isatty(out) if terminal is None else terminal
        self._lines: dict[str, int] = {}  # id -> line number, counted from the first
        self._last_draw: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, msg: dict) -> None:
        with self._lock:
            if self.terminal:
                self._draw(msg)
            elif "progressDetail" not in msg:
                self.out.write(_text(msg) + "\n")
            self.out.flush()

    def _draw(self, msg: dict) -> None:
        ident = msg.get("id", "")
        if not ident:
            self._lines.clear()
            self.out.write(_text(msg) + "\n")
            return
        if "progressDetail" in msg:
            now = time.monotonic()
            if now - self._last_draw.get(ident, 0) < REDRAW_EVERY:
                return
            self._last_draw[ident] = now
        if ident not in self._lines:
            self._lines[ident] = len(self._lines)
            self.out.write("\n")
        up = len(self._lines) - self._lines[ident]
        self.out.write(f"\x1b[{up}A\r\x1b[2K{_text(msg, bar=True)}\r\x1b[{up}B")


def _text(msg: dict, bar: bool = False) -> str:
    head = f"{msg['id']}: " if msg.get("id") else ""
    detail = msg.get("progressDetail")
    if bar and detail and detail.get("total"):
        return f"{head}{msg['status']} {progress_bar(detail['current'], detail['total'])}"
    return head + msg["status"]


def progress_bar(current: int, total: int) -> str:
    from kade.util.units import human_size
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total)) if total else 0
    arrow = ">" if filled < BAR_WIDTH else ""
    box = "[" + "=" * filled + arrow + " " * (BAR_WIDTH - filled - len(arrow)) + "]"
    return f"{box} {human_size(current):>8}/{human_size(total)}"


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
