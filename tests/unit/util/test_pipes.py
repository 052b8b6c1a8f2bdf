"""kade.util.pipes: the copies between a caller's fds and a container's pipes."""

import os
import pty
import select
import subprocess

from kade.util.pipes import Drain, Feed, copy_until_exit

DATA = bytes(range(256)) * 1024  # 256 KB: four times what a pipe holds


def _pipe_with(data: bytes) -> int:
    """The read end of a pipe that gives data, then its end."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the writer
        try:
            os.close(r)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)  # also when the reader went away first
    os.close(w)
    return r


def test_a_feed_into_a_full_pipe_waits_instead_of_blocking_and_loses_nothing():
    src = _pipe_with(DATA)
    r, w = os.pipe()
    feed, got = Feed(src, w), b""
    while feed.watch()[0] >= 0:
        fd, events = feed.watch()
        p = select.poll()
        p.register(fd, events)
        if fd == w and not p.poll(0):  # full: the container reads a little
            got += os.read(r, 4096)
            continue
        feed.step()  # never blocks: a blocking write here would hang the test
    got += os.read(r, len(DATA))
    assert got == DATA
    assert os.read(r, 1) == b""  # closed at the input's end: `cat` ends
    os.close(src)
    os.close(r)


def test_a_feed_from_a_terminal_reads_and_writes():
    master, slave = pty.openpty()
    r, w = os.pipe()
    feed = Feed(slave, w)
    os.write(master, b"typed\n")
    feed.step()
    assert os.read(r, 100) == b"typed\n"
    os.close(master)
    feed.step()  # EIO once the terminal is gone: an end
    assert feed.watch() == (-1, 0)
    assert os.read(r, 1) == b""
    os.close(slave)
    os.close(r)


def test_a_feed_stops_when_the_container_closes_its_stdin():
    src, src_w = os.pipe()
    os.write(src_w, b"more input\n")
    r, w = os.pipe()
    feed = Feed(src, w)
    os.close(r)
    feed.step()
    assert feed.watch() == (-1, 0)
    os.close(src)
    os.close(src_w)


def test_a_drain_appends_to_an_o_append_file_whole(tmp_path):
    path = tmp_path / "out"
    path.write_bytes(b"kept\n")
    src = _pipe_with(DATA)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    drain = Drain(src, fd)
    while drain.step():
        pass
    os.close(fd)
    os.close(src)
    assert path.read_bytes() == b"kept\n" + DATA


def test_a_drain_to_a_closed_reader_still_empties_the_pipe():
    src = _pipe_with(DATA)
    r, w = os.pipe()
    os.close(r)
    drain = Drain(src, w)
    while drain.step():  # EPIPE: output discarded, the container never blocks
        pass
    os.close(w)
    os.close(src)


def test_input_stops_when_the_process_exits_though_the_caller_still_writes():
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    caller_r, caller_w = os.pipe()  # the caller's stdin: it never ends here
    proc = subprocess.Popen(["sh", "-c", "read x; echo got $x"], stdin=in_r, stdout=out_w)
    os.close(in_r)
    os.close(out_w)
    os.write(caller_w, b"one\n")
    feed = Feed(caller_r, in_w)
    mine_r, mine_w = os.pipe()
    pidfd = os.pidfd_open(proc.pid)
    copy_until_exit(pidfd, feed, [Drain(out_r, mine_w)])
    proc.wait()
    assert os.read(mine_r, 100) == b"got one\n"
    assert feed.watch() == (-1, 0)  # its pipe closed: nothing more goes in
    for fd in (pidfd, out_r, caller_r, caller_w, mine_r, mine_w):
        os.close(fd)
