"""kade.util.terminal reads the size a container's console starts with."""

import fcntl
import os
import struct
import termios

from kade.util.terminal import window_size


def test_the_size_of_a_terminal_and_none_for_anything_else(tmp_path):
    master, slave = os.openpty()
    try:
        assert window_size(slave) is None  # a fresh pty has no size yet
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        assert window_size(slave) == (33, 111)
    finally:
        os.close(master)
        os.close(slave)
    with open(tmp_path / "f", "w") as f:
        assert window_size(f.fileno()) is None
