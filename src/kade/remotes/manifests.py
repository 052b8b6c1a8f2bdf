"""Manifests as a registry serves them: parse, check, pick a platform.

Kade pulls Docker's schema 2 (a manifest, a manifest list) and the OCI image
spec's (a manifest, an index). A manifest names one config and its layers; a
list or index names one manifest per platform, and `select` picks the one
for the host or for `--platform os/arch[/variant]`, as docker does: the os and
the architecture must match, the variant too when one is asked for (arm64
means v8, arm means v7 when none is given). Entries for `unknown/unknown`
(build attestations) are never chosen.
"""

from __future__ import annotations

from collections import namedtuple

from kade.errors import InvalidArgument, NotFound
from kade.oci import mediatypes as mt
from kade.oci.descriptor import Descriptor
from kade.oci.platform import host
from kade.util import fastjson

CONFIGS = {mt.DOCKER_CONFIG, mt.OCI_CONFIG}
LAYERS = mt.LAYERS | {
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
_SCHEMA1 = {"application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws"}
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm",
                 "armel": "arm", "i386": "386", "i686": "386"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}

Manifest = namedtuple("Manifest", "media_type config layers")  # Descriptor, [Descriptor]
Index = namedtuple("Index", "media_type manifests")  # [Descriptor]


def parse(data: bytes, content_type: str, what: str) -> Manifest | Index:
    """A manifest or an index; anything else is refused with one clear line."""
    try:
        doc = fastjson.loads(data)
    except ValueError as e:  # UnicodeDecodeError is one
        raise InvalidArgument(f"{what} is not valid json: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what} is not a json object")
    media_type = doc.get("mediaType") or content_type or _guess(doc)
    if media_type in _SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InvalidArgument(f"{what} is a docker schema 1 manifest, which kade does not "
                              "support; push the image again with a current client")
    try:
        if media_type in mt.INDEXES or (media_type not in mt.MANIFESTS and "manifests" in doc
                                        and media_type in ("", "application/json")):
            return Index(media_type, [Descriptor.from_json(d) for d in doc["manifests"]])
        if media_type in mt.MANIFESTS or (media_type in ("", "application/json")
                                          and "layers" in doc):
            return _manifest(doc, media_type, what)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidArgument(f"{what} is malformed") from None
    raise InvalidArgument(f'{what} has the unsupported media type "{media_type}"')


def _guess(doc: dict) -> str:
    if "manifests" in doc:
        return mt.OCI_INDEX
    return mt.OCI_MANIFEST if "layers" in doc else ""


def _manifest(doc: dict, media_type: str, what: str) -> Manifest:
    config = Descriptor.from_json(doc["config"])
    if config.media_type not in CONFIGS:
        raise InvalidArgument(f'{what}: the config has the unsupported media type '
                              f'"{config.media_type}" (not a container image)')
    layers = [Descriptor.from_json(d) for d in doc.get("layers") or []]
    for layer in layers:
        if layer.media_type not in LAYERS:
            raise InvalidArgument(f'{what}: layer {layer.digest} has the unsupported media '
                                  f'type "{layer.media_type}"')
    for d in [config, *layers]:
        _check_descriptor(d, what)
    return Manifest(media_type or mt.OCI_MANIFEST, config, layers)


def _check_descriptor(d: Descriptor, what: str) -> None:
    from kade.oci import digest as dg
    dg.validate(d.digest)
    if d.size < 0:
        raise InvalidArgument(f"{what}: negative size for {d.digest}")


def parse_platform(text: str | None) -> dict:
    """"linux/arm64/v8" -> {"os", "architecture", "variant"}; None -> the host."""
    if not text:
        return normalize(host())
    parts = text.lower().split("/")
    if len(parts) == 1:
        parts = ["linux", parts[0]]  # docker accepts a bare os too, but an arch is likelier
        if parts[1] in ("linux", "windows", "darwin", "freebsd"):
            parts = [parts[1], host()["architecture"]]
    if len(parts) > 3 or not all(parts):
        raise InvalidArgument(f'invalid platform "{text}": use os/arch[/variant]')
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return normalize(out)


def normalize(platform: dict) -> dict:
    arch = _ARCH_ALIASES.get(platform.get("architecture", ""), platform.get("architecture", ""))
    variant = platform.get("variant") or None
    if arch == "arm64" and variant == "8":
        variant = "v8"
    out = {"os": platform.get("os", ""), "architecture": arch}
    if variant:
        out["variant"] = variant
    return out


def matches(candidate: dict | None, want: dict) -> bool:
    if not candidate:
        return False
    have = normalize(candidate)
    if have["os"] != want["os"] or have["architecture"] != want["architecture"]:
        return False
    default = _DEFAULT_VARIANT.get(want["architecture"])
    wanted = want.get("variant") or default
    got = have.get("variant") or default
    if want.get("variant"):
        return got == wanted
    return got == wanted or have.get("variant") is None


def select(index: Index, want: dict) -> Descriptor:
    """The manifest for a platform; docker's error when there is none."""
    for d in index.manifests:
        if d.media_type in mt.MANIFESTS or d.media_type == "" or d.media_type in mt.INDEXES:
            if matches(d.platform, want):
                return d
    name = "/".join(p for p in (want["os"], want["architecture"], want.get("variant")) if p)
    raise NotFound(f"no matching manifest for {name} in the manifest list entries")


def platform_string(p: dict) -> str:
    return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
