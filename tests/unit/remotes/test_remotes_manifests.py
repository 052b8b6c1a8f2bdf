"""Manifest parsing and the platform choice in lists and indexes."""

from __future__ import annotations

import json

import pytest

from kade.errors import InvalidArgument, NotFound
from kade.oci import mediatypes as mt
from kade.remotes import manifests

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


def manifest(layer_type=mt.DOCKER_LAYER_GZIP, config_type=mt.DOCKER_CONFIG, **extra) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                       "config": {"mediaType": config_type, "size": 2, "digest": D},
                       "layers": [{"mediaType": layer_type, "size": 3, "digest": E}],
                       **extra}).encode()


def index(*platforms: dict, media_type=mt.OCI_INDEX) -> manifests.Index:
    data = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "size": 1, "digest": "sha256:" + f"{i:064x}",
         "platform": p} for i, p in enumerate(platforms)]}).encode()
    parsed = manifests.parse(data, "", "index")
    assert isinstance(parsed, manifests.Index)
    return parsed


def test_docker_manifest():
    m = manifests.parse(manifest(), mt.DOCKER_MANIFEST, "m")
    assert isinstance(m, manifests.Manifest)
    assert m.config.digest == D and [lay.digest for lay in m.layers] == [E]


def test_oci_manifest_without_media_type_field_uses_the_header():
    doc = json.loads(manifest(mt.OCI_LAYER_ZSTD, mt.OCI_CONFIG))
    del doc["mediaType"]
    m = manifests.parse(json.dumps(doc).encode(), mt.OCI_MANIFEST, "m")
    assert m.media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize("data, ctype, match", [
    (b"not json", "", "not valid json"),
    (b"[]", "", "not a json object"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "", "schema 1"),
    (b'{"mediaType": "application/vnd.example+json"}', "", 'unsupported media type'),
    (manifest(layer_type="application/x-weird"), "", 'unsupported media type "application/x-weird"'),
    (manifest(config_type="application/vnd.cncf.helm.config.v1+json"), "", "not a container image"),
    (json.dumps({"mediaType": mt.DOCKER_MANIFEST, "config": {}}).encode(), "", "malformed"),
])
def test_bad_manifests_get_one_clear_line(data, ctype, match):
    with pytest.raises(InvalidArgument, match=match):
        manifests.parse(data, ctype, "manifest for x:latest")


def test_select_host_like_platform_and_skip_attestations():
    idx = index({"os": "unknown", "architecture": "unknown"},
                {"os": "linux", "architecture": "arm64", "variant": "v8"},
                {"os": "linux", "architecture": "amd64"})
    assert manifests.select(idx, manifests.parse_platform("linux/amd64")).digest.endswith("2")
    assert manifests.select(idx, manifests.parse_platform("linux/arm64")).digest.endswith("1")
    assert manifests.select(idx, manifests.parse_platform("linux/aarch64/v8")).digest.endswith("1")


def test_variants():
    idx = index({"os": "linux", "architecture": "arm", "variant": "v6"},
                {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert manifests.select(idx, manifests.parse_platform("linux/arm")).digest.endswith("1")
    assert manifests.select(idx, manifests.parse_platform("linux/arm/v6")).digest.endswith("0")


def test_no_match_uses_dockers_words():
    idx = index({"os": "linux", "architecture": "s390x"})
    with pytest.raises(NotFound, match="no matching manifest for linux/amd64 in the manifest "
                       "list entries"):
        manifests.select(idx, manifests.parse_platform("linux/amd64"))


def test_parse_platform():
    assert manifests.parse_platform("linux/arm64/v8") == {"os": "linux", "architecture": "arm64",
                                                           "variant": "v8"}
    assert manifests.parse_platform("linux/x86_64") == {"os": "linux", "architecture": "amd64"}
    assert manifests.parse_platform(None)["os"] == "linux"
    with pytest.raises(InvalidArgument):
        manifests.parse_platform("linux//")
