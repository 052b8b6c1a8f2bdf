"""Attacks on `kade registry serve`, run for real against the CLI on 127.0.0.1:
a slowloris of more connections than the server serves at once, a manifest
nested 100,000 deep, and pushes onto a full disk (a small tmpfs mounted in the
server's own mount namespace, so nothing outlives the test)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "registry"))
from registry_helpers import (OCI_MANIFEST, Server, call, make_image, push_blob,  # noqa: E402
                              sha256)

SLOW = 1100  # more than the server's 1024 requests at once
HEAD_TIMEOUT = 3  # seconds; the default is 20


def _enough_descriptors(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _slow_connection(addr) -> socket.socket:
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    s.setblocking(False)
    return s


def _cut(s: socket.socket) -> bool:
    """Whether the server ended this connection (a 408, a close or a reset)."""
    try:
        return s.recv(4096) is not None  # data (the 408) or b"" (closed)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _trickle(s: socket.socket) -> None:
    try:
        s.send(b"a")
    except OSError:
        pass


def test_slowloris_does_not_lock_real_clients_out(tmp_path):
    _enough_descriptors(2 * SLOW + 200)
    with Server(str(tmp_path / "root"), "--head-timeout", f"{HEAD_TIMEOUT}s") as server:
        addr = (server.host, server.port)
        slow = [_slow_connection(addr) for _ in range(SLOW)]
        blob = push_blob(server.url, "real/client", b"real data")
        open_ = set(range(SLOW))
        try:
            for _ in range(60):  # a byte a second from each, as long as the server lets it
                for i in list(open_):
                    if _cut(slow[i]):
                        open_.discard(i)
                    else:
                        _trickle(slow[i])
                r = call(server.url, "GET", f"/v2/real/client/blobs/{blob}")
                assert (r.status, r.body) == (200, b"real data")
                assert call(server.url, "GET", "/v2/").status == 200
                if not open_:
                    break
                time.sleep(1)
        finally:
            for s in slow:
                s.close()
        assert not open_, f"{len(open_)} trickling connections were never cut"
    assert "Traceback" not in server.stop()


def test_slowloris_cannot_stretch_the_head_deadline(tmp_path):
    """A byte every second keeps a head alive no longer than the deadline: the
    connection is cut while it is still trickling."""
    with Server(str(tmp_path / "root"), "--head-timeout", f"{HEAD_TIMEOUT}s") as server:
        s = _slow_connection((server.host, server.port))
        sent = 0
        try:
            while not _cut(s):
                assert sent < 60, "a trickling head outlived 20 times its deadline"
                _trickle(s)
                sent += 1
                time.sleep(1)
        finally:
            s.close()
        assert call(server.url, "GET", "/v2/").status == 200


def test_100000_deep_manifest_is_manifest_invalid(tmp_path):
    with Server(str(tmp_path / "root")) as server:
        for opening, closing in [(b"[", b"]"), (b'{"a":', b"}")]:
            deep = (b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() +
                    b'", "config": ' + opening * 100_000 + b"1" + closing * 100_000 + b"}")
            r = call(server.url, "PUT", "/v2/deep/manifests/v1", deep,
                     {"Content-Type": OCI_MANIFEST})
            assert r.status == 400 and r.codes == ["MANIFEST_INVALID"], (r.status, r.body)
        image = make_image()
        for data in image.blobs.values():
            push_blob(server.url, "deep", data)
        r = call(server.url, "PUT", "/v2/deep/manifests/v1", image.manifest,
                 {"Content-Type": OCI_MANIFEST})
        assert r.status == 201
    assert "Traceback" not in server.stop()


# -- a full disk


DISK = 8 << 20


@pytest.fixture
def full_disk_server(tmp_path):
    """The server with its root on an 8 MiB tmpfs, mounted in a mount namespace of
    its own; the test sees the layout through /proc/<pid>/root."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private tmpfs")
    root = tmp_path / "disk"
    root.mkdir()
    prefix = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
              f'mount -t tmpfs -o size={DISK} kade-test-full "$0" && exec "$@"', str(root)]
    server = Server(str(root), prefix=prefix)
    server.layout = f"/proc/{server.proc.pid}/root{root}"
    yield server
    server.stop()


def _files(layout: str) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(layout) for f in names]


def _assert_nothing_half_written(layout: str, digest: str) -> None:
    files = _files(layout)
    assert not [f for f in files if "/_uploads/" in f or "/.tmp-" in f], files
    blob = os.path.join(layout, "docker/registry/v2/blobs/sha256", digest[7:9], digest[7:],
                        "data")
    assert not os.path.exists(blob)


def _no_space(r) -> None:
    assert r.status == 500, (r.status, r.body)
    assert r.json() == {"errors": [{"code": "UNKNOWN", "message": "no space left on device"}]}


def test_full_disk_push_is_a_clear_error_and_leaves_nothing(full_disk_server):
    server = full_disk_server
    big = os.urandom(DISK + (4 << 20))
    # monolithic: POST then PUT with the whole body
    r = call(server.url, "POST", "/v2/full/blobs/uploads/", b"")
    r = call(server.url, "PUT", f"{r.header('Location')}?digest={sha256(big)}", big,
             {"Content-Type": "application/octet-stream"})
    _no_space(r)
    _assert_nothing_half_written(server.layout, sha256(big))
    # chunked, as docker pushes: the upload is gone with its partial bytes
    location = call(server.url, "POST", "/v2/full/blobs/uploads/", b"").header("Location")
    _no_space(call(server.url, "PATCH", location, big,
                   {"Content-Type": "application/octet-stream"}))
    assert call(server.url, "GET", location).codes == ["BLOB_UPLOAD_UNKNOWN"]
    _assert_nothing_half_written(server.layout, sha256(big))
    # the space came back, and the server still serves
    small = os.urandom(2 << 20)
    digest = push_blob(server.url, "full", small)
    assert call(server.url, "GET", f"/v2/full/blobs/{digest}").body == small
    log = server.stop()
    assert log.count("no space left on device") == 2, log
    assert "Traceback" not in log


def test_full_disk_manifest_put_is_a_clear_error(full_disk_server):
    server = full_disk_server
    image = make_image()
    for data in image.blobs.values():
        push_blob(server.url, "full", data)
    filler = os.path.join(server.layout, "filler")
    with open(filler, "wb") as f:
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    r = call(server.url, "PUT", "/v2/full/manifests/v1", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    _no_space(r)
    _assert_nothing_half_written(server.layout, image.digest)
    assert call(server.url, "GET", "/v2/full/manifests/v1").codes == ["MANIFEST_UNKNOWN"]
    os.unlink(filler)
    r = call(server.url, "PUT", "/v2/full/manifests/v1", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 201
    manifest = call(server.url, "GET", "/v2/full/manifests/v1")
    assert json.loads(manifest.body) == json.loads(image.manifest)
    log = server.stop()
    assert log.count("no space left on device") == 1 and "Traceback" not in log, log


def test_single_post_push_on_a_full_disk_names_the_cause(full_disk_server):
    """POST ?digest= with the body (one request): the errors body names the cause."""
    server = full_disk_server
    big = os.urandom(DISK + (1 << 20))
    req = urllib.request.Request(f"{server.url}/v2/full/blobs/uploads/?digest={sha256(big)}",
                                 data=big, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 500 and b"no space left on device" in e.value.read()
