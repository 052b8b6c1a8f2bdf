"""Every endpoint of the distribution spec, against `kade registry serve` in a
subprocess (127.0.0.1, ephemeral port, its own root), with urllib."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading

import pytest
from registry_helpers import (DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Server, call,
                              make_image, push_blob, push_image, sha256)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(str(tmp_path_factory.mktemp("registry"))) as s:
        yield s


@pytest.fixture
def url(server):
    return server.url


def test_base_endpoint(url):
    r = call(url, "GET", "/v2/")
    assert r.status == 200 and r.json() == {}
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    assert call(url, "HEAD", "/v2/").status == 200


# -- blobs


def test_monolithic_upload_then_get_head_range_delete(url):
    data = os.urandom(100_000)
    digest = push_blob(url, "mono/blob", data)
    r = call(url, "HEAD", f"/v2/mono/blob/blobs/{digest}")
    assert r.status == 200 and r.header("Content-Length") == "100000"
    assert r.header("Docker-Content-Digest") == digest and r.body == b""
    r = call(url, "GET", f"/v2/mono/blob/blobs/{digest}")
    assert r.status == 200 and r.body == data
    r = call(url, "GET", f"/v2/mono/blob/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20]
    assert r.header("Content-Range") == "bytes 10-19/100000"
    r = call(url, "GET", f"/v2/mono/blob/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert r.body == data[-5:]
    r = call(url, "GET", f"/v2/mono/blob/blobs/{digest}", headers={"Range": "bytes=200000-"})
    assert r.status == 416 and r.header("Content-Range") == "bytes */100000"
    assert call(url, "DELETE", f"/v2/mono/blob/blobs/{digest}").status == 202
    r = call(url, "GET", f"/v2/mono/blob/blobs/{digest}")
    assert r.status == 404 and r.codes == ["BLOB_UNKNOWN"]
    assert call(url, "DELETE", f"/v2/mono/blob/blobs/{digest}").status == 404


def test_single_post_upload(url):
    data = b"single post body"
    r = call(url, "POST", f"/v2/single/blobs/uploads/?digest={sha256(data)}", data,
             {"Content-Type": "application/octet-stream"})
    assert r.status == 201 and r.header("Location") == f"/v2/single/blobs/{sha256(data)}"
    assert call(url, "GET", r.header("Location")).body == data


def test_chunked_upload_with_status_and_416(url):
    data = os.urandom(30_000)
    r = call(url, "POST", "/v2/chunked/blobs/uploads/", b"")
    assert r.status == 202
    loc, uid = r.header("Location"), r.header("Docker-Upload-UUID")
    assert loc.endswith(uid) and r.header("Range") == "0-0"
    r = call(url, "PATCH", loc, data[:10_000], {"Content-Range": "0-9999",
                                                "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.header("Range") == "0-9999"
    loc = r.header("Location")
    # out of order: 416, and nothing changes
    r = call(url, "PATCH", loc, data[20_000:], {"Content-Range": "20000-29999"})
    assert r.status == 416 and r.codes == ["BLOB_UPLOAD_INVALID"]
    r = call(url, "GET", loc)
    assert r.status == 204 and r.header("Range") == "0-9999"
    r = call(url, "PATCH", loc, data[10_000:20_000], {"Content-Range": "10000-19999"})
    assert r.status == 202 and r.header("Range") == "0-19999"
    # the last chunk comes with the closing PUT
    r = call(url, "PUT", f"{loc}?digest={sha256(data)}", data[20_000:],
             {"Content-Range": "20000-29999"})
    assert r.status == 201 and r.header("Docker-Content-Digest") == sha256(data)
    assert call(url, "GET", f"/v2/chunked/blobs/{sha256(data)}").body == data
    assert call(url, "GET", loc).codes == ["BLOB_UPLOAD_UNKNOWN"]


def test_streamed_patch_with_chunked_transfer_encoding(server):
    """What containers/image and docker do: PATCH with a chunked body, no Content-Range."""
    data = os.urandom(3 << 20)
    conn = http.client.HTTPConnection(server.host, server.port)
    conn.request("POST", "/v2/streamed/blobs/uploads/")
    r = conn.getresponse()
    r.read()
    loc = r.getheader("Location")
    conn.request("PATCH", loc, body=(data[i:i + 65536] for i in range(0, len(data), 65536)),
                 encode_chunked=True)
    r = conn.getresponse()
    r.read()
    assert r.status == 202 and r.getheader("Range") == f"0-{len(data) - 1}"
    conn.request("PUT", f"{r.getheader('Location')}?digest={sha256(data)}", body=b"")
    r = conn.getresponse()
    r.read()
    assert r.status == 201
    conn.request("GET", f"/v2/streamed/blobs/{sha256(data)}")
    assert conn.getresponse().read() == data


def test_expect_100_continue(server):
    data = b"expecting"
    conn = http.client.HTTPConnection(server.host, server.port)
    conn.putrequest("POST", f"/v2/expect/blobs/uploads/?digest={sha256(data)}")
    conn.putheader("Content-Length", str(len(data)))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    conn.sock.settimeout(10)
    assert conn.sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    conn.send(data)
    r = conn.getresponse()
    assert r.status == 201


def test_digest_mismatch_and_bad_digests(url):
    r = call(url, "POST", "/v2/bad/blobs/uploads/")
    loc = r.header("Location")
    r = call(url, "PUT", f"{loc}?digest={sha256(b'other')}", b"data")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    assert call(url, "HEAD", f"/v2/bad/blobs/{sha256(b'data')}").status == 404
    r = call(url, "POST", "/v2/bad/blobs/uploads/")
    r = call(url, "PUT", f"{r.header('Location')}?digest=sha256:nothex", b"data")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    r = call(url, "POST", "/v2/bad/blobs/uploads/")
    r = call(url, "PUT", r.header("Location"), b"data")
    assert r.status == 400 and r.codes == ["DIGEST_INVALID"]
    assert call(url, "GET", "/v2/bad/blobs/sha256:1234").codes == ["DIGEST_INVALID"]


def test_sha512(url):
    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = call(url, "POST", "/v2/five12/blobs/uploads/?digest-algorithm=sha512")
    assert r.status == 202
    r = call(url, "PUT", f"{r.header('Location')}?digest={digest}", data)
    assert r.status == 201 and r.header("Docker-Content-Digest") == digest
    r = call(url, "GET", f"/v2/five12/blobs/{digest}")
    assert r.body == data and r.header("Docker-Content-Digest") == digest
    r = call(url, "POST", "/v2/five12/blobs/uploads/?digest-algorithm=md5")
    assert r.status == 400


def test_cancel_upload(url):
    r = call(url, "POST", "/v2/cancel/blobs/uploads/")
    loc = r.header("Location")
    assert call(url, "DELETE", loc).status == 204
    assert call(url, "GET", loc).codes == ["BLOB_UPLOAD_UNKNOWN"]
    assert call(url, "PATCH", loc, b"x").status == 404
    assert call(url, "GET", "/v2/cancel/blobs/uploads/../../../x").status in (400, 404)


def test_cross_repository_mount(url):
    digest = push_blob(url, "mount/source", b"mount me")
    r = call(url, "POST", f"/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source")
    assert r.status == 201 and r.header("Location") == f"/v2/mount/target/blobs/{digest}"
    assert call(url, "GET", f"/v2/mount/target/blobs/{digest}").body == b"mount me"
    # unknown source or blob: an ordinary upload starts instead
    r = call(url, "POST", f"/v2/mount/other/blobs/uploads/?mount={digest}&from=mount/none")
    assert r.status == 202 and r.header("Location")
    assert call(url, "HEAD", f"/v2/mount/other/blobs/{digest}").status == 404


def test_concurrent_uploads_of_the_same_blob(server, url):
    data = os.urandom(2 << 20)
    errors = []

    def push(i):
        try:
            push_blob(url, f"race/r{i % 2}", data)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(2):
        assert call(url, "GET", f"/v2/race/r{i}/blobs/{sha256(data)}").body == data


# -- manifests


def test_manifest_by_tag_and_digest(url):
    image = make_image()
    digest = push_image(url, "man/img", "v1", image)
    assert digest == image.digest
    for ref in ("v1", digest):
        r = call(url, "GET", f"/v2/man/img/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status == 200 and r.body == image.manifest
        assert r.header("Content-Type") == OCI_MANIFEST
        assert r.header("Docker-Content-Digest") == digest
        r = call(url, "HEAD", f"/v2/man/img/manifests/{ref}")
        assert r.status == 200 and r.header("Content-Length") == str(len(image.manifest))
        assert r.header("Docker-Content-Digest") == digest


def test_docker_schema2_manifest(url):
    image = make_image(media_type=DOCKER_MANIFEST)
    push_image(url, "man/docker", "latest", image)
    accept = f"{DOCKER_MANIFEST}, application/vnd.docker.distribution.manifest.list.v2+json"
    r = call(url, "GET", "/v2/man/docker/manifests/latest", headers={"Accept": accept})
    assert r.header("Content-Type") == DOCKER_MANIFEST and r.body == image.manifest


def test_manifest_errors(url):
    image = make_image()
    r = call(url, "PUT", "/v2/man/missing/manifests/v1", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["MANIFEST_BLOB_UNKNOWN"]
    r = call(url, "PUT", "/v2/man/missing/manifests/v1", b"{not json",
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes == ["MANIFEST_INVALID"]
    r = call(url, "PUT", "/v2/man/missing/manifests/v1", b" " * ((4 << 20) + 1),
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 413 and r.codes == ["MANIFEST_INVALID"]
    push_image(url, "man/known", "v1", image)
    assert call(url, "GET", "/v2/man/known/manifests/nope").codes == ["MANIFEST_UNKNOWN"]
    assert call(url, "GET", "/v2/man/never/manifests/v1").codes == ["NAME_UNKNOWN"]
    assert call(url, "HEAD", "/v2/man/known/manifests/nope").status == 404
    r = call(url, "PUT", f"/v2/man/known/manifests/{sha256(b'x')}", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert r.codes == ["DIGEST_INVALID"]


def test_manifest_push_by_digest_with_tags(url):
    image = make_image([{"t": b"tags"}])
    for data in image.blobs.values():
        push_blob(url, "man/tags", data)
    r = call(url, "PUT", f"/v2/man/tags/manifests/{image.digest}?tag=a&tag=b", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 201 and r.header("OCI-Tag") == "a, b"
    assert call(url, "GET", "/v2/man/tags/tags/list").json()["tags"] == ["a", "b"]


def test_index_and_accept_negotiation(url):
    amd, arm = make_image([{"a": b"amd"}]), make_image([{"a": b"arm"}], arch="arm64")
    for img in (amd, arm):
        push_image(url, "man/multi", img.digest, img)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": len(arm.manifest),
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": OCI_MANIFEST, "digest": amd.digest, "size": len(amd.manifest),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    r = call(url, "PUT", "/v2/man/multi/manifests/latest", index, {"Content-Type": OCI_INDEX})
    assert r.status == 201
    r = call(url, "GET", "/v2/man/multi/manifests/latest",
             headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    assert r.header("Content-Type") == OCI_INDEX and r.body == index
    r = call(url, "GET", "/v2/man/multi/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.body == amd.manifest and r.header("Docker-Content-Digest") == amd.digest
    r = call(url, "GET", "/v2/man/multi/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert r.status == 404 and r.codes == ["MANIFEST_UNKNOWN"]
    assert call(url, "GET", "/v2/man/multi/manifests/latest").body == index
    # a child the index lists must be in the repository
    r = call(url, "PUT", "/v2/man/other/manifests/latest", index, {"Content-Type": OCI_INDEX})
    assert r.codes == ["MANIFEST_BLOB_UNKNOWN"]


def test_delete_manifest_by_tag_and_digest(url):
    image = make_image([{"d": b"delete me"}])
    digest = push_image(url, "man/del", "v1", image)
    call(url, "PUT", "/v2/man/del/manifests/v2", image.manifest, {"Content-Type": OCI_MANIFEST})
    assert call(url, "DELETE", "/v2/man/del/manifests/v1").status == 202
    assert call(url, "GET", "/v2/man/del/manifests/v1").status == 404
    assert call(url, "GET", "/v2/man/del/manifests/v2").status == 200
    assert call(url, "DELETE", f"/v2/man/del/manifests/{digest}").status == 202
    assert call(url, "GET", "/v2/man/del/manifests/v2").status == 404
    assert call(url, "GET", f"/v2/man/del/manifests/{digest}").status == 404
    assert call(url, "DELETE", f"/v2/man/del/manifests/{digest}").status == 404


def test_subject_and_referrers(url):
    base = make_image([{"b": b"base"}])
    subject = push_image(url, "ref/app", "v1", base)
    sig = make_image([{"s": b"signature"}], extra={
        "artifactType": "application/vnd.example.sig",
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(base.manifest)},
        "annotations": {"org.example": "yes"}})
    for data in sig.blobs.values():
        push_blob(url, "ref/app", data)
    r = call(url, "PUT", f"/v2/ref/app/manifests/{sig.digest}", sig.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert r.status == 201 and r.header("OCI-Subject") == subject
    r = call(url, "GET", f"/v2/ref/app/referrers/{subject}")
    assert r.status == 200 and r.header("Content-Type") == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sig.digest, "size": len(sig.manifest),
         "artifactType": "application/vnd.example.sig", "annotations": {"org.example": "yes"}}]}
    r = call(url, "GET", f"/v2/ref/app/referrers/{subject}?artifactType=application/other")
    assert r.json()["manifests"] == [] and r.header("OCI-Filters-Applied") == "artifactType"
    assert call(url, "GET", f"/v2/ref/none/referrers/{subject}").json()["manifests"] == []
    assert call(url, "GET", "/v2/ref/app/referrers/sha256:bad").status == 400


# -- listings


def test_tags_list_pagination(url):
    image = make_image([{"p": b"paginate"}])
    push_image(url, "list/tags", "v0", image)
    for tag in ("b", "a", "c", "d", "e"):
        call(url, "PUT", f"/v2/list/tags/manifests/{tag}", image.manifest,
             {"Content-Type": OCI_MANIFEST})
    assert call(url, "GET", "/v2/list/tags/tags/list").json() == {
        "name": "list/tags", "tags": ["a", "b", "c", "d", "e", "v0"]}
    r = call(url, "GET", "/v2/list/tags/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.header("Link") == '</v2/list/tags/tags/list?n=2&last=b>; rel="next"'
    r = call(url, "GET", "/v2/list/tags/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = call(url, "GET", "/v2/list/tags/tags/list?n=10&last=d")
    assert r.json()["tags"] == ["e", "v0"] and r.header("Link") is None
    r = call(url, "GET", "/v2/list/tags/tags/list?n=0")
    assert r.json()["tags"] == [] and r.header("Link") is None
    assert call(url, "GET", "/v2/list/tags/tags/list?n=x").status == 400
    assert call(url, "GET", "/v2/list/nothing/tags/list").codes == ["NAME_UNKNOWN"]


def test_catalog(url):
    image = make_image([{"c": b"catalog"}])
    for name in ("cat/b", "cat/a", "cat/a/deeper"):
        push_image(url, name, "latest", image)
    names = call(url, "GET", "/v2/_catalog").json()["repositories"]
    assert {"cat/a", "cat/a/deeper", "cat/b"} <= set(names) and names == sorted(names)
    r = call(url, "GET", "/v2/_catalog?n=1&last=cat/a")
    assert r.json()["repositories"] == ["cat/a/deeper"]
    assert r.header("Link").startswith("</v2/_catalog?n=1&last=cat%2Fa%2Fdeeper>")


# -- names, methods, errors


@pytest.mark.parametrize("path", ["/v2/UPPER/manifests/latest", "/v2/a..b/tags/list",
                                  "/v2/-x/blobs/uploads/"])
def test_invalid_names(url, path):
    r = call(url, "GET" if "uploads" not in path else "POST", path)
    assert r.status == 400 and r.codes == ["NAME_INVALID"]


def test_traversal_never_leaves_the_root(server, url):
    for path in ("/v2/../../etc/passwd", "/v2/a/../../../etc/tags/list",
                 "/v2/%2e%2e/%2e%2e/manifests/latest"):
        assert call(url, "GET", path).status in (400, 404)


def test_unsupported_method(url):
    r = call(url, "POST", "/v2/x/manifests/latest", b"")
    assert r.status == 405 and r.codes == ["UNSUPPORTED"]
    assert call(url, "GET", "/nothing").status == 404


def test_keep_alive_many_requests(server):
    conn = http.client.HTTPConnection(server.host, server.port)
    for _ in range(50):
        conn.request("GET", "/v2/")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"{}"
