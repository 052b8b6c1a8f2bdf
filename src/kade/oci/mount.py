"""The Mount value: what a snapshotter produces and a runtime consumes.

It is exactly a runtime-spec mount (type, source, options); `target` is where
it goes, relative to the container's rootfs ("/" for the rootfs itself).
A namedtuple, not a dataclass: it is built on every container start, and
dataclasses costs ~12 ms of imports there.
"""

from __future__ import annotations

from collections import namedtuple


class Mount(namedtuple("Mount", "type source options target", defaults=((), "/"))):
    __slots__ = ()

    def to_spec(self) -> dict:
        return {"destination": self.target, "type": self.type,
                "source": self.source, "options": list(self.options)}
