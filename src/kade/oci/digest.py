"""Digests as the OCI image spec defines them: `algorithm:hex`."""

from __future__ import annotations

from kade.errors import InvalidArgument

# hashlib is imported where a digest is made, not here: it loads OpenSSL's libcrypto
# (~1 MB resident), which the container supervisor never needs. Small sha256 digests
# (chain ids, cache keys) use CPython's own SHA-256 for the same reason.

_HEX_LEN = {"sha256": 64, "sha512": 128}


def validate(digest: str) -> str:
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in _HEX_LEN or len(hexpart) != _HEX_LEN[algo] or not _is_hex(hexpart):
        raise InvalidArgument(f'invalid digest "{digest}"')
    return digest


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdef" for c in s)


def of_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hasher(algorithm, data).hexdigest()}"


def hasher(algorithm: str = "sha256", data: bytes = b""):
    import hashlib
    return hashlib.new(algorithm, data)


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of a small input, without loading OpenSSL (see above); slower
    than hashlib's on large inputs, so not for blobs."""
    try:
        from _sha256 import sha256  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # CPython 3.12 and later
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


def short_id(digest_or_id: str) -> str:
    """Docker's 12-character id."""
    return hex_of(digest_or_id)[:12] if ":" in digest_or_id else digest_or_id[:12]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0..Ln) per the image spec: each layer identified with its parents."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else
                   "sha256:" + sha256_hex(f"{out[-1]} {diff_id}".encode()))
    return out
