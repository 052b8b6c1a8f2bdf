"""Container logs in docker's json-file format: one JSON object per line,
{"log": "...\\n", "stream": "stdout"|"stderr", "time": RFC 3339 nano}."""

from __future__ import annotations

import json
import os
import time

from kade.util.ids import now_rfc3339, parse_rfc3339


class Journal:
    """A container's output on its way into the json-file log, so that no byte is
    lost or written twice whatever process is killed when (kade.engine.keeper).

        <bundle>/stdout.journal, stderr.journal   raw output, appended by whoever
                                                  pumps: the worker, or the keeper
                                                  while no worker runs
        <bundle>/log.commit                       48 bytes: the journals' offsets
                                                  turned into log lines so far, and
                                                  the last log write's intent

    The worker moves output from the container's pipe into the journal with
    splice(2): in the kernel, so no byte is ever only in a process's memory. It then
    turns whole lines into json entries. Before each log write it records the
    intent (stream offsets after it, the log's size before and after it); a worker
    that finds the log at neither size after a crash cuts it back to "before". Lines
    that arrived while no worker ran are stamped when the next worker reads them
    (within about a second). A pty (-t) cannot be spliced: its output is read and
    written, and a worker killed in between loses that one read."""

    STREAMS = ("stdout", "stderr")

    def __init__(self, bundle: str, log_path: str, fresh: bool):
        trunc = os.O_TRUNC if fresh else 0
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | trunc
        self.fds = {s: os.open(os.path.join(bundle, f"{s}.journal"), flags, 0o600)
                    for s in self.STREAMS}
        self.rec = os.open(os.path.join(bundle, "log.commit"), flags, 0o600)
        self.log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                           0o640)
        self.log_size = os.fstat(self.log).st_size
        self.off = dict.fromkeys(self.STREAMS, 0)
        self.end = {s: os.fstat(fd).st_size for s, fd in self.fds.items()}
        self.punched = dict.fromkeys(self.STREAMS, 0)
        self.splice = hasattr(os, "splice")
        if not fresh:
            self._recover()

    def _recover(self) -> None:
        data = os.pread(self.rec, 48, 0)
        if len(data) < 48:
            return
        out, err, idx, n, before, after = (int.from_bytes(data[i:i + 8], "little")
                                           for i in range(0, 48, 8))
        self.off = {"stdout": out, "stderr": err}
        if before <= self.log_size < after:  # the last write did not (fully) happen
            os.ftruncate(self.log, before)
            self.log_size = before
            self.off[self.STREAMS[idx]] -= n

    def take(self, stream: str, src: int, want: bool) -> bytes | None:
        """Move what the container wrote on src into the journal and the log; the
        bytes moved when `want` (for a terminal), b"" if none, None at its end."""
        fd, end = self.fds[stream], self.end[stream]
        data = b""
        if self.splice:
            try:
                n = os.splice(src, fd, 1 << 16, offset_dst=end, flags=os.SPLICE_F_NONBLOCK)
                if n and want:
                    data = os.pread(fd, n, end)
            except BlockingIOError:
                return b""
            except OSError:  # EINVAL: a pty, or a file system without splice
                self.splice = False
        if not self.splice:
            try:
                data = os.read(src, 1 << 16)
            except BlockingIOError:
                return b""
            except OSError:  # EIO: the pty's last slave closed
                data = b""
            n = len(data)
            if data:
                os.pwrite(fd, data, end)
        if not n:
            return None
        self.end[stream] = end + n
        self.convert(stream)
        return data

    def convert(self, stream: str, final: bool = False) -> None:
        """Whole lines of the journal into the log (at the end, the rest too)."""
        fd = self.fds[stream]
        while self.off[stream] < self.end[stream]:
            off = self.off[stream]
            data = os.pread(fd, min(self.end[stream] - off, 1 << 20), off)
            cut = data.rfind(b"\n") + 1
            if final or (not cut and len(data) >= 1 << 20) or not data:
                cut = len(data)
            if not cut:
                return
            lines = data[:cut].split(b"\n")
            chunks = [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            self.off[stream] = off + cut
            self._commit(stream, cut, _entries(stream, chunks))
            if not data:
                return

    def _commit(self, stream: str, n: int, out: bytes) -> None:
        before, after = self.log_size, self.log_size + len(out)
        values = (self.off["stdout"], self.off["stderr"], self.STREAMS.index(stream), n,
                  before, after)
        os.pwrite(self.rec, b"".join(v.to_bytes(8, "little") for v in values), 0)
        view = memoryview(out)
        while view:
            view = view[os.write(self.log, view):]
        self.log_size = after
        if self.off[stream] - self.punched[stream] > 1 << 20:
            self.punched[stream] = _punch(self.fds[stream], self.off[stream] & ~0xfff)

    def close(self) -> None:
        for stream in self.STREAMS:
            self.convert(stream, final=True)
        for fd in (*self.fds.values(), self.rec, self.log):
            os.close(fd)
        self.fds = {}


def _entries(stream: str, chunks: list[bytes]) -> bytes:
    when = now_rfc3339()
    return "".join(json.dumps({"log": c.decode("utf-8", "replace"), "stream": stream,
                               "time": when}) + "\n" for c in chunks).encode()


_FALLOCATE: list = []


def _punch(fd: int, upto: int) -> int:
    """Free the journal's consumed start (its offsets stay: a hole, not a shift)."""
    if not _FALLOCATE:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(libc, "fallocate", None)
        if fn is not None:
            fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
        _FALLOCATE.append(fn)
    fn = _FALLOCATE[0]
    if fn is not None and upto > 0:
        fn(fd, 0x03, 0, upto)  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE; best effort
    return upto


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
