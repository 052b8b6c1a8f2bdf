"""The Mount value: what a snapshotter produces and a runtime consumes.

It is exactly a runtime-spec mount (type, source, options); `target` is where
it goes, relative to the container's rootfs ("" or "/" for the rootfs itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    options: tuple[str, ...] = field(default_factory=tuple)
    target: str = "/"

    def to_spec(self) -> dict:
        return {"destination": self.target, "type": self.type,
                "source": self.source, "options": list(self.options)}
