"""The caller's terminal while attached: raw mode, window size, signal proxying."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager


@contextmanager
def terminal(raw: bool):
    if not raw:
        yield
        return
    import termios
    import tty
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


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


@contextmanager
def forward_signals(started, tty: bool, proxy: bool):
    """Docker's --sig-proxy: signals to `kade run` go to the container."""
    sigs = [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2]
    if not tty:
        sigs.append(signal.SIGINT)
    old = {}

    def forward(signum, _frame):
        try:
            os.kill(started.pid, signum)
        except ProcessLookupError:
            pass

    if tty and started.pty:
        _copy_winsize(started.pty)
        old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH,
                                             lambda *_: _copy_winsize(started.pty))
    if proxy:
        for s in sigs:
            old[s] = signal.signal(s, forward)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        sys.stdout.flush()
