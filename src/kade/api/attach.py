"""Attaching through a hijacked connection.

Docker's clients attach before they start: `POST /containers/{id}/attach`
(hijacked), `POST .../wait`, then `POST .../start`. An Attachment made by the
attach is parked here until the start hands its pipes' far ends to the
supervisor (which copies the container's own pipes or pty to them, as it does
a terminal's fds for `kade run`); the attach's worker then copies between the
pipes and the socket. The socket's fd never leaves this process (issue 9).
"""

from __future__ import annotations

import os
import select
import threading

from kade.api import streams


class Attachment:
    def __init__(self, cid: str, stdin: bool, stdout: bool, stderr: bool, tty: bool):
        self.cid, self.tty = cid, tty
        self.stdin = stdin
        self.started = None      # monitorclient.Started, once start ran
        self.error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self.in_r, self.in_w = os.pipe2(os.O_CLOEXEC) if stdin else (-1, -1)
        self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
        self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
        # what the client asked not to see still has to be read: the supervisor writes it
        self.streams = {self.out_r: streams.STDOUT if stdout else -1}
        if not tty:
            self.streams[self.err_r] = streams.STDERR if stderr else -1
        self._lock = threading.Lock()

    def child_fds(self) -> tuple[int, int, int]:
        """The ends the supervisor gets: stdin's read end, stdout's and stderr's write ends."""
        return (self.in_r if self.stdin else self.out_w, self.out_w, self.err_w)

    def started_with(self, started, error: BaseException | None = None) -> None:
        """The start's outcome; the far ends are the supervisor's now (it has copies)."""
        self.started, self.error = started, error
        for fd in (self.in_r, self.out_w, self.err_w):
            _close(fd)
        self.in_r = self.out_w = self.err_w = -1
        os.write(self._wake_w, b"x")

    def wait_start(self, sock) -> bool:
        """Until start ran: False when the client hung up first."""
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        # not POLLRDHUP: docker's CLI half-closes a connection it sends no stdin on
        poller.register(sock.fileno(), 0)
        while True:
            for fd, ev in poller.poll():
                if fd == self._wake_r:
                    return self.error is None
                if ev & (select.POLLHUP | select.POLLERR):
                    return False

    def wait_started(self) -> None:
        """Until the start that took this attachment has handed its ends over."""
        select.select([self._wake_r], [], [])

    def serve(self, sock, buffered: bytes, parked: Attachments) -> None:
        """The hijacked connection's life: wait for the start, copy, end. A client
        gone before the start unparks it, unless a start took it already: then
        that start owns the far ends until it has handed them over."""
        try:
            if not self.wait_start(sock):
                if not parked.drop(self):
                    self.wait_started()
                return
            outputs = {fd: s for fd, s in self.streams.items()}
            streams.pump(sock, outputs, self.in_w if self.stdin else None,
                         multiplexed=not self.tty, buffered=buffered)
            self.in_w = -1  # pump closed it
        finally:
            self.close()

    def close(self) -> None:
        for fd in (self._wake_r, self._wake_w, self.in_r, self.in_w, self.out_r, self.out_w,
                   self.err_r, self.err_w):
            _close(fd)
        self._wake_r = self._wake_w = self.in_r = self.in_w = -1
        self.out_r = self.out_w = self.err_r = self.err_w = -1
        started, self.started = self.started, None
        if started is not None:
            started.close()  # the exit code reaches waiters through the engine's events


class Attachments:
    """Parked attachments by container id (one per container: the latest)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_cid: dict[str, Attachment] = {}

    def park(self, att: Attachment) -> None:
        with self._lock:
            self._by_cid[att.cid] = att

    def take(self, cid: str) -> Attachment | None:
        with self._lock:
            return self._by_cid.pop(cid, None)

    def drop(self, att: Attachment) -> bool:
        """Unparks att; False when a start took it first."""
        with self._lock:
            if self._by_cid.get(att.cid) is att:
                del self._by_cid[att.cid]
                return True
            return False


def _close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
