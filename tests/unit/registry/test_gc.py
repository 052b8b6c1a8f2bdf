"""Mark and sweep: what no manifest reaches goes, the rest stays."""

import hashlib
import json
import os
import time

import pytest

from kade.registry import gc, paths
from kade.registry.driver.inmemory import InMemoryDriver
from kade.registry.errcode import RegistryError
from kade.registry.store import open_store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store():
    return open_store(InMemoryDriver())


def blob(store, name, data):
    uid = store.uploads.start(name)
    with store.uploads.open(name, uid) as up:
        up.write(data)
        return up.finish(sha(data))


def manifest(store, name, layer: bytes, **extra) -> tuple[str, bytes]:
    config = b'{"c": "%s"}' % layer
    blob(store, name, layer)
    blob(store, name, config)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": sha(config), "size": len(config)},
           "layers": [{"mediaType": "x", "digest": sha(layer), "size": len(layer)}], **extra}
    data = json.dumps(doc).encode()
    store.manifests.put(name, sha(data), data, OCI_MANIFEST)
    return sha(data), data


def test_unreferenced_blobs_are_swept(store):
    kept, _ = manifest(store, "a", b"kept layer")
    orphan = blob(store, "a", b"orphan")
    result = gc.collect(store.driver)
    assert result.removed == [orphan]
    assert not store.blobs.exists(orphan)
    assert store.blobs.exists(kept) and store.blobs.exists(sha(b"kept layer"))
    assert not store.blobs.linked("a", orphan)


def test_dry_run_removes_nothing(store):
    orphan = blob(store, "a", b"orphan")
    lines = []
    result = gc.collect(store.driver, dry_run=True, log=lines.append)
    assert result.removed == [orphan] and store.blobs.exists(orphan)
    assert lines == [f"would remove blob {orphan}"]


def test_deleted_manifest_frees_its_blobs(store):
    digest, _ = manifest(store, "a", b"layer one")
    store.manifests.delete("a", digest)
    result = gc.collect(store.driver)
    assert set(result.removed) == {digest, sha(b"layer one"), sha(b'{"c": "layer one"}')}


def test_index_children_are_kept(store):
    child, data = manifest(store, "a", b"child layer")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": len(data)}]}).encode()
    store.manifests.put("a", "multi", index, OCI_INDEX)
    # the child stays reachable through the index even without its own revision
    store.driver.delete(paths.revision_dir("a", child))
    result = gc.collect(store.driver)
    assert result.removed == []
    assert store.blobs.exists(sha(b"child layer"))


def test_referrers_keep_their_subject(store):
    subject, data = manifest(store, "a", b"subject layer")
    manifest(store, "a", b"signature", subject={"mediaType": OCI_MANIFEST, "digest": subject,
                                                 "size": len(data)})
    store.driver.delete(paths.revision_dir("a", subject))
    assert gc.collect(store.driver).removed == []
    assert store.blobs.exists(sha(b"subject layer"))


def test_blobs_shared_across_repositories(store):
    digest_a, _ = manifest(store, "a", b"shared")
    manifest(store, "b", b"shared", annotations={"in": "b"})
    store.manifests.delete("a", digest_a)
    removed = gc.collect(store.driver).removed
    assert removed == [digest_a]
    assert store.blobs.size("b", sha(b"shared")) == len(b"shared")


def test_stale_uploads_are_purged(store):
    uid = store.uploads.start("a")
    assert gc.collect(store.driver).uploads == []
    assert store.uploads.offset("a", uid) == 0
    assert gc.collect(store.driver, upload_max_age=-1).uploads == [f"a/{uid}"]
    with pytest.raises(RegistryError):
        store.uploads.offset("a", uid)


def test_mark_on_a_filesystem_root(tmp_path):
    from kade.registry.driver.filesystem import FilesystemDriver
    store = open_store(FilesystemDriver(str(tmp_path)))
    manifest(store, "x/y", b"layer")
    orphan = blob(store, "x/y", b"orphan")
    os.utime(tmp_path, (time.time(), time.time()))
    assert gc.collect(store.driver).removed == [orphan]
