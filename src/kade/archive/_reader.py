"""A streaming tar reader over one large reusable buffer.

The stream is read with readinto into a 1 MiB buffer; headers are parsed from
it and file data is written straight from it to a file descriptor, so a member
costs one header parse and a few os.write calls, with no per-block objects.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from kade.archive import _format as fmt

_BUFSIZE = 1 << 20


class TarReader:
    """Iterate members with next(); consume the current member's data with
    copy_to() or read_data(), or let next() skip it."""

    def __init__(self, stream: BinaryIO, bufsize: int = _BUFSIZE) -> None:
        # Every binary stream has readinto; typing.BinaryIO just does not say so.
        self._readinto = stream.readinto  # type: ignore[attr-defined]
        self._buf = bytearray(bufsize)
        self._mv = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._left = 0  # data plus padding of the current member not yet consumed
        self.offset = 0  # bytes of tar consumed, for messages and sizes

    def _fill(self) -> int:
        """Refill the buffer after everything in it was consumed; 0 at EOF."""
        self.offset += self._end
        self._pos = 0
        self._end = self._readinto(self._mv) or 0
        return self._end

    def _block(self) -> bytes | None:
        """The next 512 bytes, or None at a clean end of stream."""
        have = self._end - self._pos
        if have < fmt.BLOCK:
            self._buf[:have] = self._mv[self._pos:self._end]
            self.offset += self._pos
            self._pos, self._end = 0, have
            while self._end < fmt.BLOCK:
                n = self._readinto(self._mv[self._end:]) or 0
                if not n:
                    if self._end:
                        raise fmt.FormatError("it is truncated")
                    return None
                self._end += n
        start = self._pos
        self._pos = start + fmt.BLOCK
        return bytes(self._mv[start:self._pos])

    def _consume(self, n: int, fd: int = -1) -> None:
        """Consume n bytes, writing them to fd when fd >= 0."""
        mv, write = self._mv, os.write
        while n:
            if self._pos == self._end and not self._fill():
                raise fmt.FormatError("it is truncated")
            take = min(n, self._end - self._pos)
            if fd >= 0:
                _write_all(write, fd, mv[self._pos:self._pos + take])
            self._pos += take
            n -= take

    def copy_to(self, fd: int, size: int) -> None:
        """Write the current member's data (size bytes) to fd."""
        self._consume(size, fd)
        pad = self._left - size
        self._left = 0
        if self._end - self._pos >= pad:
            self._pos += pad
        else:
            self._consume(pad)

    def read_data(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            if self._pos == self._end and not self._fill():
                raise fmt.FormatError("it is truncated")
            take = min(size - len(chunks), self._end - self._pos)
            chunks += self._mv[self._pos:self._pos + take]
            self._pos += take
        self._consume(self._left - size)
        self._left = 0
        return bytes(chunks)

    def next(self) -> fmt.Entry | None:
        """The next member, or None at the end of the archive."""
        if self._left:
            self._consume(self._left)
            self._left = 0
        pax: dict[str, bytes] = {}
        longname = longlink = None
        while True:
            h = self._block()
            if h is None or h == fmt.ZERO_BLOCK:
                return None
            e = fmt.parse_header(h)
            if e.kind not in fmt.META_TYPES:
                break
            if e.size > fmt.MAX_META_SIZE:
                raise fmt.FormatError(f"metadata member of {e.size} bytes")
            self._left = e.size + (-e.size % fmt.BLOCK)
            data = self.read_data(e.size)
            if e.kind == fmt.PAX:
                pax.update(fmt.parse_pax(data))
            elif e.kind == fmt.GNU_LONGNAME:
                longname = data.partition(b"\x00")[0]
            elif e.kind == fmt.GNU_LONGLINK:
                longlink = data.partition(b"\x00")[0]
        return self._finish(e, pax, longname, longlink)

    def _finish(self, e: fmt.Entry, pax: dict[str, bytes], longname: bytes | None,
                longlink: bytes | None) -> fmt.Entry:
        if longname is not None:
            e.name = fmt.decode(longname)
        if longlink is not None:
            e.linkname = fmt.decode(longlink)
        if pax:
            fmt.apply_pax(e, pax)
        if e.kind == fmt.AREG and e.name.endswith("/"):
            e.kind = fmt.DIR
        if e.kind in fmt.HEADER_ONLY:
            e.size = 0
        self._left = e.size + (-e.size % fmt.BLOCK)
        return e

    def drain(self) -> None:
        """Read the stream to its end, so a digest over it sees every byte."""
        self._left = 0
        self._pos = self._end
        while self._fill():
            self._pos = self._end
        self.offset += self._end


def _write_all(write, fd: int, data: memoryview) -> None:
    n = write(fd, data)
    while n < len(data):  # short writes happen on signals and full disks
        data = data[n:]
        n = write(fd, data)
