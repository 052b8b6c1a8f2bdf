"""Manifests, tags and referrers over the in-memory driver."""

import hashlib
import json

import pytest

from kade.registry import errcode, manifests
from kade.registry.driver.inmemory import InMemoryDriver
from kade.registry.errcode import RegistryError
from kade.registry.store import open_store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store():
    return open_store(InMemoryDriver())


def put_blob(store, name, data):
    uid = store.uploads.start(name)
    with store.uploads.open(name, uid) as up:
        up.write(data)
        return up.finish(sha(data))


def desc(data: bytes, media_type: str) -> dict:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data)}


def image(store, name, layer=b"layer", config=b"{}", **extra) -> bytes:
    put_blob(store, name, layer)
    put_blob(store, name, config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": desc(config, "application/vnd.oci.image.config.v1+json"),
           "layers": [desc(layer, "application/vnd.oci.image.layer.v1.tar")], **extra}
    return json.dumps(doc).encode()


def test_put_by_tag_get_by_tag_and_digest(store):
    data = image(store, "a")
    digest, parsed = store.manifests.put("a", "latest", data, OCI_MANIFEST)
    assert digest == sha(data) and parsed.subject is None
    for ref in ("latest", digest):
        m = store.manifests.get("a", ref)
        assert (m.digest, m.media_type, m.data) == (digest, OCI_MANIFEST, data)
    assert store.manifests.head("a", "latest") == (digest, OCI_MANIFEST, len(data))
    assert store.manifests.tags("a") == ["latest"]


def test_exact_bytes_are_kept(store):
    data = image(store, "a").replace(b", ", b",   ")
    digest, _ = store.manifests.put("a", "v1", data, OCI_MANIFEST)
    assert store.manifests.get("a", "v1").data == data and digest == sha(data)


def test_put_by_digest_must_match(store):
    data = image(store, "a")
    with pytest.raises(RegistryError) as e:
        store.manifests.put("a", "sha256:" + "0" * 64, data, OCI_MANIFEST)
    assert e.value.code is errcode.DIGEST_INVALID
    digest, _ = store.manifests.put("a", sha(data), data, OCI_MANIFEST, ["t1", "t2"])
    assert store.manifests.tags("a") == ["t1", "t2"]


def test_unknown_blobs_are_refused(store):
    data = image(store, "a")
    with pytest.raises(RegistryError) as e:
        store.manifests.put("b", "latest", data, OCI_MANIFEST)
    assert e.value.code is errcode.MANIFEST_BLOB_UNKNOWN
    assert len(e.value.detail["digests"]) == 2


def test_index_children_must_exist(store):
    child = image(store, "a")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [desc(child, OCI_MANIFEST)]}).encode()
    with pytest.raises(RegistryError) as e:
        store.manifests.put("a", "multi", index, OCI_INDEX)
    assert e.value.code is errcode.MANIFEST_BLOB_UNKNOWN
    store.manifests.put("a", sha(child), child, OCI_MANIFEST)
    store.manifests.put("a", "multi", index, OCI_INDEX)
    assert store.manifests.get("a", "multi").media_type == OCI_INDEX


@pytest.mark.parametrize("data,content_type,words", [
    (b"not json", OCI_MANIFEST, "not JSON"),
    (b"[]", OCI_MANIFEST, "not a JSON object"),
    (b'{"schemaVersion": 1}', OCI_MANIFEST, "schemaVersion"),
    (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "text/plain", "unsupported"),
    (b'{"schemaVersion": 2, "mediaType": "%s", "config": 1}' % OCI_MANIFEST.encode(),
     OCI_MANIFEST, "config"),
    (b'{"schemaVersion": 2, "mediaType": "%s"}' % OCI_INDEX.encode(), OCI_INDEX, "manifests"),
    (b'{"schemaVersion": 2, "mediaType": "%s", "config": {}}' % OCI_MANIFEST.encode(),
     DOCKER_MANIFEST, "does not match"),
])
def test_invalid_manifests(store, data, content_type, words):
    with pytest.raises(RegistryError, match=words) as e:
        store.manifests.put("a", "x", data, content_type)
    assert e.value.code is errcode.MANIFEST_INVALID


def test_bad_descriptor(store):
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "x", "digest": "nope", "size": 1}, "layers": []}
    with pytest.raises(RegistryError, match="invalid digest"):
        store.manifests.put("a", "x", json.dumps(doc).encode(), OCI_MANIFEST)


def test_size_limit_is_413(store):
    big = b" " * (manifests.MAX_MANIFEST_SIZE + 1)
    with pytest.raises(RegistryError) as e:
        store.manifests.put("a", "x", big, OCI_MANIFEST)
    assert e.value.status == 413


def test_media_type_from_content_type_when_the_field_is_absent(store):
    data = image(store, "a")
    doc = json.loads(data)
    del doc["mediaType"]
    raw = json.dumps(doc).encode()
    _, parsed = store.manifests.put("a", "x", raw, OCI_MANIFEST + "; charset=utf-8")
    assert parsed.media_type == OCI_MANIFEST
    assert manifests.media_type_of(raw) == OCI_MANIFEST


def test_unknown_references(store):
    with pytest.raises(RegistryError) as e:
        store.manifests.get("nothing", "latest")
    assert e.value.code is errcode.NAME_UNKNOWN
    store.manifests.put("a", "latest", image(store, "a"), OCI_MANIFEST)
    with pytest.raises(RegistryError) as e:
        store.manifests.get("a", "other")
    assert e.value.code is errcode.MANIFEST_UNKNOWN
    with pytest.raises(RegistryError) as e:
        store.manifests.get("a", "sha256:" + "1" * 64)
    assert e.value.code is errcode.MANIFEST_UNKNOWN
    with pytest.raises(RegistryError):
        store.manifests.tags("nothing")


@pytest.mark.parametrize("ref", [".INVALID_MANIFEST_NAME", "-x", "a" * 129])
def test_a_reference_that_is_no_tag_nor_digest_names_no_manifest(store, ref):
    store.manifests.put("a", "latest", image(store, "a"), OCI_MANIFEST)
    for read in (store.manifests.get, store.manifests.head, store.manifests.delete):
        with pytest.raises(RegistryError) as e:
            read("a", ref)
        assert (e.value.code, e.value.status) == (errcode.MANIFEST_UNKNOWN, 404), read
    with pytest.raises(RegistryError) as e:
        store.manifests.put("a", ref, image(store, "a"), OCI_MANIFEST)
    assert (e.value.code, e.value.status) == (errcode.MANIFEST_INVALID, 400)
    assert f'"{ref}" is neither a tag nor a digest' in e.value.message
    assert store.manifests.tags("a") == ["latest"]


def test_delete_by_tag_keeps_the_manifest(store):
    digest, _ = store.manifests.put("a", "latest", image(store, "a"), OCI_MANIFEST)
    store.manifests.delete("a", "latest")
    assert store.manifests.tags("a") == []
    assert store.manifests.get("a", digest).digest == digest


def test_delete_by_digest_removes_its_tags(store):
    digest, _ = store.manifests.put("a", "v1", image(store, "a"), OCI_MANIFEST)
    store.manifests.tag("a", "v2", digest)
    other, _ = store.manifests.put("a", "v3", image(store, "a", layer=b"other"), OCI_MANIFEST)
    store.manifests.delete("a", digest)
    assert store.manifests.tags("a") == ["v3"]
    with pytest.raises(RegistryError) as e:
        store.manifests.get("a", digest)
    assert e.value.code is errcode.MANIFEST_UNKNOWN


def test_referrers(store):
    subject = "sha256:" + "5" * 64  # need not exist
    sig = image(store, "a", config=b'{"sig": 1}', subject={"mediaType": OCI_MANIFEST,
                "digest": subject, "size": 10}, artifactType="application/vnd.example.sig",
                annotations={"k": "v"})
    sbom = image(store, "a", config=b'{"sbom": 1}',
                 subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 10})
    d_sig, parsed = store.manifests.put("a", sha(sig), sig, OCI_MANIFEST)
    assert parsed.subject["digest"] == subject
    d_sbom, _ = store.manifests.put("a", sha(sbom), sbom, OCI_MANIFEST)
    found = {d["digest"]: d for d in store.manifests.referrers("a", subject)}
    assert found[d_sig] == {"mediaType": OCI_MANIFEST, "digest": d_sig, "size": len(sig),
                            "artifactType": "application/vnd.example.sig",
                            "annotations": {"k": "v"}}
    assert found[d_sbom]["artifactType"] == "application/vnd.oci.image.config.v1+json"
    only = store.manifests.referrers("a", subject, "application/vnd.example.sig")
    assert [d["digest"] for d in only] == [d_sig]
    store.manifests.delete("a", d_sig)
    assert [d["digest"] for d in store.manifests.referrers("a", subject)] == [d_sbom]
    assert store.manifests.referrers("other", subject) == []


@pytest.mark.parametrize("opening,closing", [(b"[", b"]"), (b'{"a":', b"}")])
def test_deeply_nested_manifest_is_invalid(store, opening, closing):
    deep = b'{"schemaVersion": 2, "x": ' + opening * 100_000 + b"1" + closing * 100_000 + b"}"
    with pytest.raises(RegistryError) as e:
        store.manifests.put("a", "v1", deep, OCI_MANIFEST)
    assert e.value.code == errcode.MANIFEST_INVALID and e.value.status == 400
    assert "exceeded max depth" in e.value.message
