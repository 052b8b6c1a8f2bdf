"""Docker's stream framing and the copying behind hijacked connections.

Without a tty, attach, logs and exec multiplex stdout and stderr on one byte
stream: each frame is an 8-byte header, [stream, 0, 0, 0, size (4 bytes,
big-endian)], then `size` bytes; stream 0 is stdin, 1 stdout, 2 stderr, 3 a
system error (moby's pkg/stdcopy). With a tty the stream is raw bytes.
"""

from __future__ import annotations

import os
import select
import socket
import struct
from typing import Iterator

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
_HEADER = struct.Struct(">BxxxL")
MAX_FRAME = 32 << 10  # docker's reads are 32 KiB; a frame is what one read gave


def frame(stream: int, data: bytes) -> bytes:
    return _HEADER.pack(stream, len(data)) + data


def frames(stream: int, data: bytes) -> Iterator[bytes]:
    """data as frames of at most MAX_FRAME bytes."""
    for i in range(0, len(data), MAX_FRAME):
        yield frame(stream, data[i:i + MAX_FRAME])


def parse(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Whole frames at the start of buf, and the bytes left over (a client's reader,
    and the unit tests' oracle)."""
    out = []
    while len(buf) >= _HEADER.size:
        stream, size = _HEADER.unpack_from(buf)
        if len(buf) < _HEADER.size + size:
            break
        out.append((stream, buf[_HEADER.size:_HEADER.size + size]))
        buf = buf[_HEADER.size + size:]
    return out, buf


def send_all(sock: socket.socket, data: bytes) -> bool:
    """False when the client has gone."""
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def pump(sock: socket.socket, outputs: dict[int, int], stdin: int | None,
         multiplexed: bool, buffered: bytes = b"") -> None:
    """Copies the read ends in `outputs` (fd -> stream number; -1: read and dropped)
    to the socket, framed when multiplexed, and the socket's bytes into `stdin` (a pipe or pty the
    container owns), until every output ended. The client closing its side ends
    stdin only (docker's half-close: `docker run -i` with input from a file)."""
    if stdin is not None and buffered:
        _write_all(stdin, buffered)
    poller = select.poll()
    live = dict(outputs)
    for fd in live:
        poller.register(fd, select.POLLIN)
    if stdin is not None:
        poller.register(sock.fileno(), select.POLLIN)
    while live:
        for fd, _ in poller.poll():
            if fd == sock.fileno():
                if not _client_input(sock, stdin):
                    poller.unregister(fd)
                    _close(stdin)
                    stdin = None
            elif fd in live:
                done = _output(sock, fd, live[fd], multiplexed)
                if done is None:  # the client left: what it missed is in the log
                    _close(stdin)
                    return
                if done:
                    poller.unregister(fd)
                    del live[fd]
    _close(stdin)


def _client_input(sock: socket.socket, stdin: int | None) -> bool:
    try:
        data = sock.recv(65536)
    except OSError:
        return False
    if not data or stdin is None:
        return False
    return _write_all(stdin, data)


def _output(sock: socket.socket, fd: int, stream: int, multiplexed: bool) -> bool | None:
    """One read copied: True at the output's end, None when the client has gone."""
    try:
        data = os.read(fd, MAX_FRAME)
    except BlockingIOError:
        return False
    except OSError:  # EIO: a pty whose slave side closed
        data = b""
    if not data:
        return True
    if stream < 0:
        return False  # a stream the client did not ask for: read, not sent
    return False if send_all(sock, frame(stream, data) if multiplexed else data) else None


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        return False
    return True


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
