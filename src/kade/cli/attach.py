"""The caller's terminal while attached: raw mode, window size, signal proxying.

Every attached `kade run` comes through here, so it imports `_signal`, the C half
of `signal`: the `signal` module builds its enums at import (~4 ms). Context
managers are plain classes for the same reason (contextlib).
"""

from __future__ import annotations

import _signal
import os
import sys

# docker's --sig-proxy set; SIGINT too when there is no terminal to send ^C itself
_PROXIED = (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1,
            _signal.SIGUSR2)


class terminal:
    """Raw mode on our terminal while attached to a container's, when `raw`."""

    def __init__(self, raw: bool):
        self.raw = raw
        self.saved: list | None = None

    def __enter__(self) -> None:
        if self.raw:
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def _copy_winsize(pty_path: str | None) -> None:
    if not pty_path or not os.isatty(0):
        return
    import fcntl
    import termios
    size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
    try:
        fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
    finally:
        os.close(fd)


class forward_signals:
    """Docker's --sig-proxy: signals to `kade run` go to the container."""

    def __init__(self, started, tty: bool, proxy: bool):
        self.started, self.tty, self.proxy = started, tty, proxy
        self.old: dict = {}

    def _forward(self, signum, _frame) -> None:
        try:
            os.kill(self.started.pid, signum)
        except ProcessLookupError:
            pass

    def __enter__(self) -> None:
        pty = self.started.pty
        if self.tty and pty:
            _copy_winsize(pty)
            self.old[_signal.SIGWINCH] = _signal.signal(_signal.SIGWINCH,
                                                        lambda *_: _copy_winsize(pty))
        if self.proxy:
            sigs = _PROXIED if self.tty else _PROXIED + (_signal.SIGINT,)
            for s in sigs:
                self.old[s] = _signal.signal(s, self._forward)

    def __exit__(self, *exc) -> None:
        for s, h in self.old.items():
            _signal.signal(s, h)
        sys.stdout.flush()
