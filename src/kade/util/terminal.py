"""The size of the terminal a kade command runs in."""

from __future__ import annotations

import os


def window_size(fd: int = 0) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on fd, if it is one with a size: what a
    container's console starts with, so the first program that asks sees it."""
    if not os.isatty(fd):
        return None
    import fcntl
    import struct
    import termios
    rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    return (rows, cols) if rows and cols else None
