"""The OCI content descriptor."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict = field(default_factory=dict, compare=False, hash=False)
    platform: dict | None = field(default=None, compare=False, hash=False)

    def to_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Descriptor":
        return cls(d.get("mediaType", ""), d["digest"], int(d.get("size", 0)),
                   d.get("annotations") or {}, d.get("platform"))
