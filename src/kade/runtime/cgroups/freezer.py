"""Freezing: v1's freezer.state, or v2's core cgroup.freeze file.

Both are asynchronous: the write starts the freeze and the state file says when
every task has stopped. A v1 freeze can stall in FREEZING (a task in an
uninterruptible sleep); writing FROZEN again retries it.
"""

from __future__ import annotations

import os
import time

from kade.errors import Unavailable
from kade.runtime.cgroups.fs import HostFS

V1 = "freezer"

_TIMEOUT = 5.0


def set_v1(fs: HostFS, directory: str, frozen: bool) -> None:
    path = os.path.join(directory, "freezer.state")
    want = "FROZEN" if frozen else "THAWED"

    def done() -> bool:
        fs.write(path, want)
        return fs.read(path) == want

    _until(done, directory)


def is_frozen_v1(fs: HostFS, directory: str) -> bool:
    return fs.read(os.path.join(directory, "freezer.state")) == "FROZEN"


def set_v2(fs: HostFS, directory: str, frozen: bool) -> None:
    fs.write(os.path.join(directory, "cgroup.freeze"), "1" if frozen else "0")
    _until(lambda: is_frozen_v2(fs, directory) == frozen, directory)


def is_frozen_v2(fs: HostFS, directory: str) -> bool:
    for line in (fs.read(os.path.join(directory, "cgroup.events")) or "").splitlines():
        if line.startswith("frozen "):
            return line.split()[1] == "1"
    return fs.read(os.path.join(directory, "cgroup.freeze")) == "1"


def _until(done, directory: str) -> None:
    deadline = time.monotonic() + _TIMEOUT
    delay = 0.001
    while not done():
        if time.monotonic() > deadline:
            raise Unavailable(f'cgroup "{directory}" did not reach the freezer state in time')
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
