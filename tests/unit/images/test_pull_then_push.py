"""kade.images.push against the in-memory registry, and push -> pull round trips."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest

from kade.errors import Forbidden, NotFound
from kade.images.pull import Puller
from kade.images.push import Pusher, manifest_bytes
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci import reference
from kade.oci.descriptor import Descriptor
from kade.remotes.client import Session
from kade.remotes.hosts import Hosts
from kade.remotes.memory import MemoryRegistry
from kade.remotes.sources import BlobSources

from test_pull import config_for, files, layer_tar, make_service  # noqa: E402 (same folder)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root "
                                "(overlay whiteouts, chown)")


def session(reg, creds=None) -> Session:
    return Session(Hosts(), lambda host: creds, reg, retry_delays=(0, 0))


class Push:
    def __init__(self, images, reg, compression="gzip", creds=None):
        self.messages: list[dict] = []
        self.pusher = Pusher(images, session(reg, creds), emit=self.messages.append,
                             sources=BlobSources(os.path.dirname(images.content.root)),
                             compression=compression)

    def __call__(self, ref: str):
        return self.pusher.push(reference.parse(ref))

    def lines(self) -> list[str]:
        return [(f"{m['id']}: " if "id" in m else "") + m["status"] for m in self.messages
                if "progressDetail" not in m]


def local_image(images, tars: list[bytes], tag: str) -> str:
    """An image as `kade import`/`commit` make them: uncompressed layer blobs."""
    layers = [images.ingest_layer(io.BytesIO(t)) for t in tars]
    return images.create(json.loads(config_for(tars)), layers, [tag])


@pytest.fixture
def images(tmp_path):
    return make_service(str(tmp_path / "kade"))


@pytest.fixture
def reg():
    return MemoryRegistry()


def test_push_compresses_local_layers_and_writes_dockers_manifest(images, reg):
    tars = [layer_tar({"a": b"1" * 5000}), layer_tar({"b": b"2"})]
    image_id = local_image(images, tars, "registry.test/app:1")
    push = Push(images, reg)
    result = push("registry.test/app:1")
    shorts = [dg.short_id(dg.of_bytes(t)) for t in tars]
    lines = push.lines()
    assert lines[:2] == [f"{shorts[1]}: Preparing", f"{shorts[0]}: Preparing"]
    assert sorted(lines[2:4]) == sorted(f"{s}: Pushed" for s in shorts)
    data, media_type = reg.manifests[("app", "1")]
    assert media_type == mt.DOCKER_MANIFEST
    assert lines[4] == f"1: digest: {dg.of_bytes(data)} size: {len(data)}"
    assert result.digest == dg.of_bytes(data)
    doc = json.loads(data)
    assert data.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType"')  # docker's layout
    assert doc["config"] == {"mediaType": mt.DOCKER_CONFIG, "size": len(
        images.content.read(image_id)), "digest": image_id}
    for layer, tar in zip(doc["layers"], tars):
        assert layer["mediaType"] == mt.DOCKER_LAYER_GZIP
        assert gzip.decompress(reg.blobs[layer["digest"]]) == tar
    assert images.record(image_id)["repo_digests"] == [f"registry.test/app@{result.digest}"]


def test_second_push_reuses_the_compressed_layers(images, reg):
    local_image(images, [layer_tar({"a": os.urandom(100_000)})], "registry.test/app:1")
    Push(images, reg)("registry.test/app:1")
    uploads = len(reg.requests("PUT", "/uploads/"))
    again = Push(images, reg)
    again("registry.test/app:1")
    assert any(line.endswith("Layer already exists") for line in again.lines())
    assert len(reg.requests("PUT", "/uploads/")) == uploads  # nothing uploaded again
    # an empty registry: the blob compressed last time is sent, not a new one
    other = MemoryRegistry()
    Push(images, other)("registry.test/app:1")
    assert set(other.blobs) == set(reg.blobs)


def test_cross_repository_mount(images, reg):
    local_image(images, [layer_tar({"a": b"x" * 1000})], "registry.test/one:1")
    images.tag(images.resolve("registry.test/one:1"), "registry.test/two:1")
    Push(images, reg)("registry.test/one:1")
    push = Push(images, reg)
    push("registry.test/two:1")
    assert any(line.endswith("Mounted from one") for line in push.lines())
    assert reg.requests("POST", "mount=")


def test_zstd_push_makes_an_oci_manifest(images, reg):
    import zstandard
    tar = layer_tar({"z": b"z" * 1000})
    local_image(images, [tar], "registry.test/app:z")
    Push(images, reg, compression="zstd")("registry.test/app:z")
    data, media_type = reg.manifests[("app", "z")]
    doc = json.loads(data)
    assert media_type == mt.OCI_MANIFEST and doc["config"]["mediaType"] == mt.OCI_CONFIG
    assert doc["layers"][0]["mediaType"] == mt.OCI_LAYER_ZSTD
    blob = reg.blobs[doc["layers"][0]["digest"]]
    assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read() == tar


def test_pulled_image_is_pushed_as_pulled_and_round_trips(images, reg, tmp_path):
    tar = layer_tar({"hello": b"there"})
    local_image(images, [tar], "registry.test/app:1")
    Push(images, reg)("registry.test/app:1")
    second = make_service(str(tmp_path / "second"))
    pulled = Puller(second, session(reg)).pull(reference.parse("registry.test/app:1"))
    assert pulled.image_id == images.resolve("registry.test/app:1")
    assert files(second, pulled.image_id) == {"hello": b"there"}
    other = MemoryRegistry("other.test")
    second.tag(pulled.image_id, "other.test/copy:1")
    Push(second, other)("other.test/copy:1")
    assert other.manifests[("copy", "1")][0] == reg.manifests[("app", "1")][0]


def test_push_unknown_image(images, reg):
    with pytest.raises(NotFound, match="does not exist locally with the tag: "
                       "registry.test/nope:1"):
        Push(images, reg)("registry.test/nope:1")


def test_push_without_login(images):
    reg = MemoryRegistry(auth="basic", users={"u": "p"})
    local_image(images, [layer_tar({"a": b"1"})], "registry.test/app:1")
    with pytest.raises(Forbidden, match="push access denied for registry.test/app.*kade login"):
        Push(images, reg)("registry.test/app:1")
    from kade.remotes.auth import Credential
    Push(images, reg, creds=Credential("u", "p"))("registry.test/app:1")
    assert ("app", "1") in reg.manifests


def test_manifest_bytes_match_dockers():
    """The manifest docker 28 pushed for kade's bootstrap busybox, byte for byte."""
    layer = Descriptor(mt.DOCKER_LAYER_GZIP, "sha256:181e5836e0a397de35afa893d2023a41c4cd948dc4"
                       "23d3198cd140194e8a8d60", 1069057)
    data, _ = manifest_bytes("sha256:b04236c33ebcf1f75aafea0d7b8604119062ac22eca68477f35bc09fc"
                             "a8d1193", 518, [layer], oci=False)
    assert dg.of_bytes(data) == ("sha256:3c629623f206e0c4f5d04c53a22e9e43c63a859e4ed27aa73c3f"
                                 "44ba97f3fc6d")
