"""Byte ranges: the Range header of blob GETs (RFC 9110 §14) and the
Content-Range of upload chunks (the spec's inclusive `<start>-<end>`)."""

from __future__ import annotations

import re

_CHUNK_RE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


class Unsatisfiable(Exception):
    """The range lies outside the content: answer 416 with `bytes */<size>`."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single-range `Range` header, or None for the
    whole content (no header, a malformed one, or several ranges: a server may
    ignore Range, and answering 200 with everything is always correct).

    A range that ends before it starts (`bytes=500-0`) is refused with 416, as
    Go's net/http and so distribution refuse it and the conformance suite asks."""
    if not header:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(size - n, 0), size - 1
    start = int(first)
    if last and not last.isdigit():
        return None
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise Unsatisfiable(header)
    return start, end


def parse_chunk_range(header: str) -> tuple[int, int] | None:
    """(start, end inclusive) of an upload chunk's Content-Range, None if malformed."""
    m = _CHUNK_RE.fullmatch(header.strip())
    if m is None:
        return None
    start, end = int(m.group(1)), int(m.group(2))
    return (start, end) if end >= start else None
