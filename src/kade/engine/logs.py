"""Container logs in docker's json-file format: one JSON object per line,
{"log": "...\\n", "stream": "stdout"|"stderr", "time": RFC 3339 nano}."""

from __future__ import annotations

import json
import os
import time

from kade.util.ids import now_rfc3339, parse_rfc3339


class LogWriter:
    """Splits each stream into lines; a partial line waits for its newline."""

    def __init__(self, path: str | None):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                          0o640) if path else None
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        if self.fd is None:
            return
        buf = self.partial[stream] + data
        *lines, rest = buf.split(b"\n")
        self.partial[stream] = rest
        if lines:
            self._emit(stream, [line + b"\n" for line in lines])

    def _emit(self, stream: str, chunks: list[bytes]) -> None:
        when = now_rfc3339()
        out = "".join(json.dumps({"log": c.decode("utf-8", "replace"), "stream": stream,
                                  "time": when}) + "\n" for c in chunks)
        os.write(self.fd, out.encode())

    def close(self) -> None:
        if self.fd is None:
            return
        for stream, rest in self.partial.items():
            if rest:
                self._emit(stream, [rest])
        os.close(self.fd)
        self.fd = None


def read(path: str, *, since: float = 0.0, until: float = 0.0, tail: int = -1,
         offset: int = 0) -> tuple[list[dict], int]:
    """Entries of the log from byte `offset` on, and the offset after them."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    entries = [json.loads(line) for line in data[:end].splitlines() if line]
    if since or until:
        entries = [e for e in entries if _in_window(e, since, until)]
    if tail >= 0:
        entries = entries[-tail:] if tail else []
    return entries, offset + end


def _in_window(entry: dict, since: float, until: float) -> bool:
    t = parse_rfc3339(entry["time"])
    return (not since or t >= since) and (not until or t < until)


def follow_sleep() -> None:
    time.sleep(0.05)
