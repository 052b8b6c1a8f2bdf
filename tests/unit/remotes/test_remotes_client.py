"""The repository client: manifests, blobs, uploads, errors, retries, mirrors."""

from __future__ import annotations

import json

import pytest

from kade.errors import FailedPrecondition, Forbidden, InvalidArgument, NotFound, Unavailable
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci import reference
from kade.remotes import errcode
from kade.remotes.client import MAX_MANIFEST, Session
from kade.remotes.hosts import Hosts
from kade.remotes.memory import MemoryRegistry
from kade.remotes.transport import TransportError


class Router:
    """One transport in front of several in-memory registries, by host."""

    def __init__(self, *registries: MemoryRegistry):
        self.by_host = {r.host: r for r in registries}

    def request(self, method, url, headers=None, body=None):
        host = url.split("://", 1)[1].split("/", 1)[0]
        if host not in self.by_host:
            raise TransportError(f"connect {url}: connection refused")
        return self.by_host[host].request(method, url, headers, body)


def session(transport, hosts: Hosts | None = None) -> Session:
    return Session(hosts or Hosts(), lambda h: None, transport, retry_delays=(0, 0))


def repo(transport, name="registry.test/app", push=False, hosts=None):
    return session(transport, hosts).repository(reference.parse(name), push=push)


@pytest.fixture
def reg() -> MemoryRegistry:
    r = MemoryRegistry()
    r.put_image("app", "latest", b'{"rootfs":{"diff_ids":[]}}', [])
    return r


# --- manifests -------------------------------------------------------------------


def test_get_manifest_by_tag_and_by_digest(reg):
    data, media_type, digest = repo(reg).get_manifest("latest")
    assert media_type == mt.DOCKER_MANIFEST and digest == dg.of_bytes(data)
    assert repo(reg).get_manifest(digest)[0] == data
    accept = reg.log[0][2]["Accept"]
    assert mt.OCI_INDEX in accept and mt.DOCKER_MANIFEST in accept


def test_manifest_not_matching_its_digest_is_refused(reg):
    data = reg.manifests[("app", "latest")][0]
    wrong = dg.of_bytes(b"something else")
    reg.manifests[("app", wrong)] = (data, mt.DOCKER_MANIFEST)
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        repo(reg).get_manifest(wrong)


def test_manifest_not_matching_the_registry_header_is_refused(reg):
    reg.fail("GET", "/manifests/latest", 200, body=b"{}",
             headers={"docker-content-digest": dg.of_bytes(b"[]"),
                      "content-type": mt.DOCKER_MANIFEST})
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        repo(reg).get_manifest("latest")


def test_oversized_manifest_is_refused(reg):
    big = b" " * (MAX_MANIFEST + 1)
    reg.put_manifest("app", "big", big, mt.DOCKER_MANIFEST)
    with pytest.raises(InvalidArgument, match="4 MiB limit"):
        repo(reg).get_manifest("big")


def test_put_manifest_and_head(reg):
    r = repo(reg, push=True)
    data = reg.manifests[("app", "latest")][0]
    digest = r.put_manifest("v2", data, mt.DOCKER_MANIFEST)
    assert digest == dg.of_bytes(data)
    assert r.head_manifest("v2") == digest
    assert r.head_manifest("nope") is None


def test_tags_follow_link_pagination(reg):
    data = reg.manifests[("app", "latest")][0]
    for tag in ("a", "b", "c"):
        reg.put_manifest("app", tag, data, mt.DOCKER_MANIFEST)
    r = repo(reg)
    # n=1000 in the first request; force small pages through the registry's answer
    reg.fail("GET", "/tags/list", 200, body=json.dumps({"tags": ["a"]}).encode(),
             headers={"link": '</v2/app/tags/list?n=1&last=a>; rel="next"'})
    assert r.tags() == ["a", "b", "c", "latest"]  # then pages of one tag each
    assert len(reg.requests("GET", "/tags/list")) == 4


def test_tags_of_unknown_repository():
    with pytest.raises(NotFound, match="name unknown"):
        repo(MemoryRegistry(), "registry.test/none").tags()


# --- errors and retries --------------------------------------------------------------


@pytest.mark.parametrize("status, cls, text", [
    (401, Forbidden, "unauthorized"), (403, Forbidden, "denied"),
    (404, NotFound, "manifest unknown"), (429, Unavailable, "toomanyrequests"),
    (500, Unavailable, "500 Internal Server Error"), (400, InvalidArgument, "manifest invalid"),
])
def test_error_statuses_become_one_line(reg, status, cls, text):
    code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "MANIFEST_UNKNOWN",
            429: "TOOMANYREQUESTS", 400: "MANIFEST_INVALID"}.get(status)
    body = json.dumps({"errors": [{"code": code, "message": text.split(": ")[-1]}]}).encode() \
        if code else b""
    reg.fail("GET", "/manifests/", status, times=5, body=body)
    with pytest.raises(cls) as info:
        repo(reg).get_manifest("latest")
    assert text in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, errcode.RegistryError) and info.value.status == status


def test_5xx_and_429_are_retried_then_succeed(reg):
    reg.fail("GET", "/manifests/", 503, times=1)
    reg.fail("GET", "/manifests/", 429, times=1, headers={"retry-after": "0"})
    repo(reg).get_manifest("latest")
    assert len(reg.requests("GET", "/manifests/")) == 3


def test_retries_are_bounded(reg):
    reg.fail("GET", "/manifests/", 500, times=10)
    with pytest.raises(Unavailable):
        repo(reg).get_manifest("latest")
    assert len(reg.requests("GET", "/manifests/")) == 3


def test_writes_are_not_retried(reg):
    reg.fail("PUT", "/manifests/", 500, times=10)
    with pytest.raises(Unavailable):
        repo(reg, push=True).put_manifest("x", b"{}", mt.DOCKER_MANIFEST)
    assert len(reg.requests("PUT")) == 1


def test_connection_refused_is_unavailable():
    with pytest.raises(Unavailable, match="connection refused"):
        repo(Router(), "nowhere.test/app").get_manifest("latest")


# --- blobs and uploads ---------------------------------------------------------------


def test_blob_range_and_redirect_without_authorization():
    reg = MemoryRegistry(auth="bearer")
    d = reg.put_blob("app", b"0123456789")
    reg.redirect_blobs = True
    with repo(reg).open_blob(d, offset=4) as body:
        assert body.status == 206 and body.read() == b"456789"
    storage = reg.requests("GET", "/_storage/")
    assert storage and "Authorization" not in storage[0][2]


def test_upload_mount_and_exists(reg):
    r = repo(reg, "registry.test/other", push=True)
    d = dg.of_bytes(b"layer")
    assert not r.blob_exists(d)
    r.upload_blob(b"layer", d, 5)
    assert r.blob_exists(d)
    third = repo(reg, "registry.test/third", push=True)
    assert third.mount_blob(d, "other") is None
    assert third.blob_exists(d)
    location = repo(reg, "registry.test/fourth", push=True).mount_blob(d, "nowhere")
    assert location and "/uploads/" in location


def test_upload_with_wrong_digest_is_refused(reg):
    with pytest.raises(InvalidArgument, match="digest invalid"):
        repo(reg, push=True).upload_blob(b"abc", dg.of_bytes(b"abd"), 3)


# --- endpoints: mirrors, plain http ------------------------------------------------


def test_mirror_is_tried_first_and_falls_back_to_the_registry(reg):
    mirror = MemoryRegistry("mirror.test")
    hosts = Hosts({"registries": {"registry.test": {"mirrors": ["https://mirror.test"]}}})
    r = repo(Router(reg, mirror), hosts=hosts)
    r.get_manifest("latest")  # the mirror has nothing: 404, then the registry
    assert mirror.requests("GET", "/manifests/latest")
    mirror.put_image("app", "latest", b'{"rootfs":{"diff_ids":[]}}', [])
    before = len(reg.log)
    r.get_manifest("latest")
    assert len(reg.log) == before  # served by the mirror


def test_unreachable_mirror_is_skipped_after_the_first_failure(reg):
    hosts = Hosts({"registries": {"registry.test": {"mirrors": ["down.test", "also.down"]}}})
    r = repo(Router(reg), hosts=hosts)
    r.get_manifest("latest")
    r.get_manifest("latest")
    assert all(ep.dead for ep in r.endpoints if ep.mirror)


def test_mirrors_are_never_used_for_push(reg):
    mirror = MemoryRegistry("mirror.test")
    hosts = Hosts({"registries": {"registry.test": {"mirrors": ["https://mirror.test"]}}})
    repo(Router(reg, mirror), push=True, hosts=hosts).blob_exists(dg.of_bytes(b"x"))
    assert mirror.log == []


def test_insecure_registry_falls_back_to_plain_http():
    reg = MemoryRegistry("localhost:5000", tls=False)
    reg.put_image("app", "latest", b"{}", [])
    r = repo(reg, "localhost:5000/app")
    r.get_manifest("latest")
    r.get_manifest("latest")
    schemes = [u.split(":")[0] for _, u, _ in reg.requests("GET", "/manifests/")]
    assert schemes == ["https", "http", "http"]


def test_secure_registry_does_not_fall_back():
    reg = MemoryRegistry("registry.test", tls=False)
    with pytest.raises(Unavailable, match="wrong version number"):
        repo(reg).get_manifest("latest")
    assert not reg.requests(fragment="http://")


def test_registry_error_body_is_parsed():
    codes, text = errcode.parse_errors(
        b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}')
    assert codes == ("NAME_UNKNOWN",)
    assert text == "name unknown: repository name not known to registry"
    assert errcode.parse_errors(b"<html>") == ((), "")
    err = errcode.from_response(409, "Conflict", b"", "x")
    assert isinstance(err, FailedPrecondition)
