"""Copying between a caller's descriptors and the pipes made for a container.

No descriptor of the caller ever crosses into a container (issue 9): through
/proc/self/fd/N a process reopens its stdio in any mode, so the file behind
`>> file` could be read and truncated, a read-only file behind `< file` written,
and the caller's terminal read long after `kade exec` returned. As docker does,
a container gets pipes made for it (or a pty of its own), and whoever started it
copies between those and the caller's descriptors with what is here.

Invariant: a caller's descriptor is a shared open file description (a terminal,
the shell's pipe): it is never made non-blocking here. Only ends of pipes made
for the container are.
"""

from __future__ import annotations

import os

CHUNK = 1 << 16
POLLIN, POLLOUT = 0x001, 0x004  # select.POLLIN, select.POLLOUT, without the import
EXIT_GRACE = 2.0  # docker's wait for an exec's streams once the process has exited


class Feed:
    """The caller's input into a container's stdin pipe, closed at the input's end
    (so `cat` ends, as in docker).

    The pipe's write end is non-blocking and what it cannot take yet waits: a
    blocking write into a full pipe would stall the pump while the container, its
    stdout full, waits for that same pump to read it."""

    def __init__(self, src: int, dst: int, *, close_dst: bool = True):
        os.set_blocking(dst, False)
        self.src, self.dst = src, dst
        self.close_dst = close_dst
        self.pending = b""
        self.full = False  # the pipe took nothing last time: wait until it can
        self.splice = hasattr(os, "splice")

    def watch(self) -> tuple[int, int]:
        """The fd and poll events to wait for before the next step; -1 once done."""
        if self.dst < 0:
            return -1, 0
        return (self.dst, POLLOUT) if self.pending or self.full else (self.src, POLLIN)

    def step(self) -> None:
        """Move what can move now; close at the input's end or the reader's."""
        try:
            if self.pending:
                self.pending = self.pending[os.write(self.dst, self.pending):]
            elif self.full:
                self.full = False
            elif not self._move():
                self.close()
        except BlockingIOError:
            self.full = not self.pending
        except OSError:  # EPIPE: the container closed its stdin; or ours failed
            self.close()

    def _move(self) -> bool:
        """One chunk from the input; False at its end."""
        if self.splice:
            try:
                return os.splice(self.src, self.dst, CHUNK, flags=os.SPLICE_F_NONBLOCK) > 0
            except (BlockingIOError, BrokenPipeError):
                raise
            except OSError:  # EINVAL: not spliceable (a terminal): read and write
                self.splice = False
        data = os.read(self.src, CHUNK)
        if data:
            self.pending = data  # kept if the write below finds the pipe full
            self.pending = data[os.write(self.dst, data):]
        return bool(data)

    def close(self) -> None:
        if self.dst >= 0 and self.close_dst:
            os.close(self.dst)
        self.dst = -1
        self.pending = b""


class Drain:
    """A container's output pipe into one of the caller's descriptors, spliced
    where both ends allow it. A caller's end that fails (a closed pipe) is
    dropped and the output read and discarded, so the container never blocks."""

    def __init__(self, src: int, dst: int):
        self.src, self.dst = src, dst
        self.splice = hasattr(os, "splice")

    def step(self) -> bool:
        """Copy what is there; False at the end of the output."""
        if self.splice and self.dst >= 0:
            try:
                return os.splice(self.src, self.dst, CHUNK) > 0
            except BlockingIOError:
                return True
            except OSError:  # EINVAL: O_APPEND, or an end that cannot splice
                self.splice = False
        try:
            data = os.read(self.src, CHUNK)
        except BlockingIOError:
            return True
        except OSError:  # EIO: a pty whose last slave closed
            data = b""
        if data and self.dst >= 0 and not write_all(self.dst, data):
            self.dst = -1
        return bool(data)


def write_all(fd: int, data: bytes) -> bool:
    """False when the fd failed (the reader went away)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        return False
    return True


def copy_until_exit(pidfd: int, feed: Feed | None, drains: list[Drain],
                    grace: float = EXIT_GRACE) -> None:
    """Pump between a process and the caller until it has exited and its outputs
    ended. At its exit, input stops at once: whatever it left behind must not read
    what the caller types afterwards. Outputs a leftover child holds open get
    `grace` seconds more, as docker gives an exec's streams."""
    import select
    import time
    poller = select.poll()
    live = {d.src: d for d in drains}
    for fd in live:
        poller.register(fd, POLLIN)
    poller.register(pidfd, POLLIN)
    watched = rewatch(poller, (-1, 0), feed)
    deadline = None
    while live or deadline is None:
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = poller.poll(timeout)
        if not events and deadline is not None:
            return
        for fd, _ in events:
            if fd == pidfd:
                poller.unregister(pidfd)
                deadline = time.monotonic() + grace
                if feed is not None:
                    feed.close()
                    watched = rewatch(poller, watched, feed)
            elif fd in live:
                if not live[fd].step():
                    poller.unregister(fd)
                    del live[fd]
            elif feed is not None and fd == watched[0]:
                feed.step()
                watched = rewatch(poller, watched, feed)


def rewatch(poller, watched: tuple[int, int], feed: Feed | None) -> tuple[int, int]:
    """Follow what the feed waits for now (its input, or room in its pipe)."""
    wanted = feed.watch() if feed is not None else (-1, 0)
    if wanted != watched:
        if watched[0] >= 0:
            poller.unregister(watched[0])
        if wanted[0] >= 0:
            poller.register(*wanted)
    return wanted
