"""The OCI content descriptor."""

from __future__ import annotations

from collections import namedtuple

_Base = namedtuple("Descriptor", "media_type digest size annotations platform",
                   defaults=(None, None))


class Descriptor(_Base):
    """Equality and hashing look at media type, digest and size only."""

    __slots__ = ()

    def _key(self) -> tuple:
        return (self.media_type, self.digest, self.size)

    def __eq__(self, other) -> bool:
        return isinstance(other, Descriptor) and self._key() == other._key()

    def __ne__(self, other) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._key())

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
