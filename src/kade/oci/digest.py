"""Digests as the OCI image spec defines them: `algorithm:hex`."""

from __future__ import annotations

import hashlib

from kade.errors import InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}


def validate(digest: str) -> str:
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in _HEX_LEN or len(hexpart) != _HEX_LEN[algo] or not _is_hex(hexpart):
        raise InvalidArgument(f'invalid digest "{digest}"')
    return digest


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def of_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def hasher(algorithm: str = "sha256"):
    return hashlib.new(algorithm)


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


def short_id(digest_or_id: str) -> str:
    """Docker's 12-character id."""
    return hex_of(digest_or_id)[:12] if ":" in digest_or_id else digest_or_id[:12]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0..Ln) per the image spec: each layer identified with its parents."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else of_bytes(f"{out[-1]} {diff_id}".encode()))
    return out
