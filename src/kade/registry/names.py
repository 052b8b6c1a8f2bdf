"""The spec's grammars: repository names, tags and digests.

A name is `component(/component)*`, each component `[a-z0-9]+` joined by `.`,
`_`, `__` or runs of `-`. No component can be empty, `.`, `..` or start with
`_`, so a valid name can never climb out of its directory nor collide with the
`_layers`, `_manifests` and `_uploads` directories kept beside it.
"""

from __future__ import annotations

import re

from kade.registry import errcode
from kade.registry.errcode import RegistryError

COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = rf"{COMPONENT}(?:/{COMPONENT})*"
TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
# only the algorithms we can verify; the spec's general grammar is wider
DIGEST = r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})"
ALGORITHMS = {"sha256": 64, "sha512": 128}
# docker clients refuse `host:port/name` longer than 255 characters
NAME_MAX = 255

_NAME_RE = re.compile(NAME)
_TAG_RE = re.compile(TAG)
_DIGEST_RE = re.compile(DIGEST)
_ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX or not _NAME_RE.fullmatch(name):
        raise RegistryError(errcode.NAME_INVALID, {"name": name},
                            message=f'invalid repository name "{name}"')
    return name


def is_tag(ref: str) -> bool:
    return _TAG_RE.fullmatch(ref) is not None


def is_digest(ref: str) -> bool:
    return ":" in ref and _ANY_DIGEST_RE.fullmatch(ref) is not None


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(errcode.MANIFEST_INVALID, {"tag": tag},
                            message=f'invalid tag "{tag}"')
    return tag


def validate_digest(digest: str) -> str:
    """A digest we can verify, else DIGEST_INVALID (400) as the spec asks."""
    if _DIGEST_RE.fullmatch(digest):
        return digest
    algo = digest.partition(":")[0]
    if is_digest(digest) and algo not in ALGORITHMS:
        raise RegistryError(errcode.DIGEST_INVALID, {"digest": digest},
                            message=f'unsupported digest algorithm "{algo}"')
    raise RegistryError(errcode.DIGEST_INVALID, {"digest": digest},
                        message=f'invalid digest "{digest}"')


def validate_algorithm(algo: str) -> str:
    if algo not in ALGORITHMS:
        raise RegistryError(errcode.DIGEST_INVALID, {"algorithm": algo},
                            message=f'unsupported digest algorithm "{algo}"')
    return algo
