"""The upload state machine: start, append in order, finish verified, cancel."""

import errno
import hashlib
import os
import threading

import pytest

from kade.registry import errcode, paths
from kade.registry.driver import PathNotFound, walk
from kade.registry.driver.filesystem import FilesystemDriver
from kade.registry.driver.inmemory import InMemoryDriver
from kade.registry.errcode import RegistryError
from kade.registry.store import open_store


def sha(data: bytes, algo: str = "sha256") -> str:
    return f"{algo}:{hashlib.new(algo, data).hexdigest()}"


@pytest.fixture
def store():
    return open_store(InMemoryDriver())


def upload(store, name, *chunks, digest=None):
    uid = store.uploads.start(name)
    for chunk in chunks:
        with store.uploads.open(name, uid) as up:
            up.write(chunk)
    with store.uploads.open(name, uid) as up:
        return up.finish(digest or sha(b"".join(chunks)))


def test_start_gives_an_empty_upload(store):
    uid = store.uploads.start("a")
    assert store.uploads.offset("a", uid) == 0
    with store.uploads.open("a", uid) as up:
        assert up.headers() == {"Location": f"/v2/a/blobs/uploads/{uid}", "Range": "0-0",
                                "Docker-Upload-UUID": uid}


def test_chunks_in_order_then_finish(store):
    digest = upload(store, "a", b"hello ", b"world")
    assert digest == sha(b"hello world")
    assert store.blobs.size("a", digest) == 11
    f, size = store.blobs.open("a", digest)
    assert f.read() == b"hello world"


def test_offset_and_range_follow_the_data(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.check_start(0)
        up.write(b"0123456789")
        assert up.headers()["Range"] == "0-9"
    assert store.uploads.offset("a", uid) == 10


def test_out_of_order_chunk_is_416_and_changes_nothing(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"abc")
    with store.uploads.open("a", uid) as up:
        with pytest.raises(RegistryError) as e:
            up.check_start(5)
    assert e.value.status == 416 and e.value.code is errcode.BLOB_UPLOAD_INVALID
    assert e.value.headers["Range"] == "0-2"
    assert store.uploads.offset("a", uid) == 3


def test_nothing_is_visible_before_finish(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"secret")
    assert not store.blobs.exists(sha(b"secret"))
    with pytest.raises(RegistryError) as e:
        store.blobs.size("a", sha(b"secret"))
    assert e.value.code is errcode.BLOB_UNKNOWN


def test_digest_mismatch_removes_the_upload(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"data")
        with pytest.raises(RegistryError) as e:
            up.finish(sha(b"other"))
    assert e.value.code is errcode.DIGEST_INVALID
    assert not store.blobs.exists(sha(b"data")) and not store.blobs.exists(sha(b"other"))
    with pytest.raises(RegistryError) as e:
        store.uploads.offset("a", uid)
    assert e.value.code is errcode.BLOB_UPLOAD_UNKNOWN


def test_finish_removes_the_upload_directory(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"x")
        up.finish(sha(b"x"))
    with pytest.raises(PathNotFound):
        store.driver.stat(paths.upload_dir("a", uid))


def test_cancel(store):
    uid = store.uploads.start("a")
    store.uploads.cancel("a", uid)
    with pytest.raises(RegistryError) as e:
        store.uploads.open("a", uid)
    assert e.value.code is errcode.BLOB_UPLOAD_UNKNOWN


@pytest.mark.parametrize("bad", ["../../../etc", "x", "0" * 36 + "/", "ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ"])
def test_bad_upload_ids_are_unknown(store, bad):
    with pytest.raises(RegistryError) as e:
        store.uploads.open("a", bad)
    assert e.value.code is errcode.BLOB_UPLOAD_UNKNOWN


def test_upload_survives_a_restart(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"before restart;")
    fresh = open_store(store.driver)  # a new process: no hash state in memory
    with fresh.uploads.open("a", uid) as up:
        assert up.offset == 15
        up.write(b"after")
        digest = up.finish(sha(b"before restart;after"))
    assert fresh.blobs.size("a", digest) == 20


def test_sha512(store):
    uid = store.uploads.start("a", "sha512")
    with store.uploads.open("a", uid) as up:
        up.write(b"abc")
        assert up.finish(sha(b"abc", "sha512")) == sha(b"abc", "sha512")


def test_other_algorithm_at_finish_rehashes(store):
    uid = store.uploads.start("a")  # hashing sha256 on the way
    with store.uploads.open("a", uid) as up:
        up.write(b"abc")
        assert up.finish(sha(b"abc", "sha512")).startswith("sha512:")


def test_unknown_algorithm(store):
    with pytest.raises(RegistryError) as e:
        store.uploads.start("a", "md5")
    assert e.value.code is errcode.DIGEST_INVALID


def test_size_limit():
    store = open_store(InMemoryDriver(), max_blob_size=10)
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid) as up:
        up.write(b"0123456789")
        with pytest.raises(RegistryError) as e:
            up.write(b"!")
    assert e.value.code is errcode.SIZE_INVALID and e.value.status == 413


def test_an_upload_serves_one_request_at_a_time(store):
    uid = store.uploads.start("a")
    with store.uploads.open("a", uid):
        with pytest.raises(RegistryError, match="busy"):
            store.uploads.open("a", uid)
    with store.uploads.open("a", uid):
        pass


def test_an_error_mid_request_keeps_what_was_written(store):
    uid = store.uploads.start("a")
    with pytest.raises(ConnectionError):
        with store.uploads.open("a", uid) as up:
            up.write(b"part")
            raise ConnectionError("client went away")
    with store.uploads.open("a", uid) as up:
        assert up.offset == 4
        up.write(b"rest")
        assert up.finish(sha(b"partrest"))


def test_concurrent_uploads_of_one_blob_on_the_filesystem(tmp_path):
    store = open_store(FilesystemDriver(str(tmp_path)))
    data = bytes(range(256)) * 4096
    digest, errors = sha(data), []

    def push(name):
        try:
            uid = store.uploads.start(name)
            with store.uploads.open(name, uid) as up:
                for i in range(0, len(data), 65536):
                    up.write(data[i:i + 65536])
                up.finish(digest)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=push, args=(f"repo{i % 3}",)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(3):
        f, size = store.blobs.open(f"repo{i}", digest)
        with f:
            assert size == len(data) and f.read() == data
    leftovers = [p for p in (tmp_path / "docker/registry/v2").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


class FullDisk(InMemoryDriver):
    """The in-memory driver with a disk of `room` bytes: writes past it fail ENOSPC."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def writer(self, path, append=False):
        w = super().writer(path, append)
        write = w.write

        def limited(data):
            if w.size + len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write(data)
        w.write = limited
        return w


def test_a_full_disk_cancels_the_upload_and_publishes_nothing():
    store = open_store(FullDisk(room=10))
    uid = store.uploads.start("a")
    with pytest.raises(OSError):
        with store.uploads.open("a", uid) as up:
            up.write(b"12345")
            up.write(b"67890abcdef")
    with pytest.raises(RegistryError) as e:  # its partial bytes are gone with it
        store.uploads.offset("a", uid)
    assert e.value.code == errcode.BLOB_UPLOAD_UNKNOWN
    assert not list(walk(store.driver, "/docker"))


def test_a_client_gone_keeps_the_upload_for_a_resume(store):
    uid = store.uploads.start("a")
    with pytest.raises(ConnectionResetError):
        with store.uploads.open("a", uid) as up:
            up.write(b"part")
            raise ConnectionResetError("client went away")
    assert store.uploads.offset("a", uid) == 4
