"""The API over the in-memory driver, through the real HTTP server on a socketpair:
routing, name checks, negotiation and the non-sendfile body path."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import threading

import pytest

from kade.registry import auth, jwt
from kade.registry.api import RegistryAPI
from kade.registry.driver.inmemory import InMemoryDriver
from kade.registry.httpd import Server
from kade.registry.store import open_store


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def connect(api):
    server_sock, client_sock = socket.socketpair()
    t = threading.Thread(target=Server(api).serve_connection, args=(server_sock,), daemon=True)
    t.start()
    c = http.client.HTTPConnection("localhost")
    c.sock = client_sock
    yield c
    client_sock.close()
    t.join(timeout=10)


@pytest.fixture
def conn():
    with connect(RegistryAPI(open_store(InMemoryDriver()))) as c:
        yield c


def ask(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()


def test_blob_round_trip_without_sendfile(conn):
    data = bytes(range(256)) * 1000
    r, _ = ask(conn, "POST", f"/v2/mem/blobs/uploads/?digest={sha(data)}", data)
    assert r.status == 201
    r, body = ask(conn, "GET", f"/v2/mem/blobs/{sha(data)}")
    assert body == data
    r, body = ask(conn, "GET", f"/v2/mem/blobs/{sha(data)}", headers={"Range": "bytes=256-511"})
    assert r.status == 206 and body == bytes(range(256))
    r, body = ask(conn, "GET", f"/v2/mem/blobs/{sha(data)}", headers={"Range": "bytes=500-0"})
    assert r.status == 416 and r.getheader("Content-Range") == f"bytes */{len(data)}"


def test_names_with_route_words_in_them(conn):
    data = b"tricky"
    for name in ("blobs", "a/manifests/b", "tags/list", "x/blobs/uploads"):
        r, _ = ask(conn, "POST", f"/v2/{name}/blobs/uploads/?digest={sha(data)}", data)
        assert r.status == 201, name
        r, body = ask(conn, "GET", f"/v2/{name}/blobs/{sha(data)}")
        assert body == data


def test_errors_are_json_with_the_api_version(conn):
    r, body = ask(conn, "GET", "/v2/UP/tags/list")
    assert r.status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    assert r.getheader("Docker-Distribution-API-Version") == "registry/2.0"
    r, body = ask(conn, "PUT", "/v2/a/blobs/uploads/", b"")
    assert r.status == 405


def test_manifest_type_follows_the_field_not_the_header(conn):
    config = b"{}"
    ask(conn, "POST", f"/v2/m/blobs/uploads/?digest={sha(config)}", config)
    doc = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": sha(config), "size": 2}, "layers": []}
    r, _ = ask(conn, "PUT", "/v2/m/manifests/t", json.dumps(doc).encode(),
               {"Content-Type": "application/json"})
    assert r.status == 201
    r, _ = ask(conn, "HEAD", "/v2/m/manifests/t")
    assert r.getheader("Content-Type") == "application/vnd.oci.image.manifest.v1+json"


def test_an_invalid_reference_is_unknown_except_to_put(conn):
    """The conformance suite's `.INVALID_MANIFEST_NAME`: 404 to read or delete, 400 to push."""
    for method in ("GET", "HEAD", "DELETE"):
        r, body = ask(conn, method, "/v2/m/manifests/.INVALID_MANIFEST_NAME")
        assert r.status == 404, method
        if method != "HEAD":
            assert json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN", method
    r, body = ask(conn, "PUT", "/v2/m/manifests/.INVALID_MANIFEST_NAME", b"{}",
                  {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status == 400 and json.loads(body)["errors"][0]["code"] == "MANIFEST_INVALID"


def test_mount_without_from_finds_the_blob(conn):
    data = b"held by one repository"
    ask(conn, "POST", f"/v2/src/blobs/uploads/?digest={sha(data)}", data)
    r, _ = ask(conn, "POST", f"/v2/dst/blobs/uploads/?mount={sha(data)}")
    assert r.status == 201 and r.getheader("Location") == f"/v2/dst/blobs/{sha(data)}"
    assert ask(conn, "GET", f"/v2/dst/blobs/{sha(data)}")[1] == data
    missing = sha(b"held by none")
    r, _ = ask(conn, "POST", f"/v2/dst/blobs/uploads/?mount={missing}")
    assert r.status == 202 and "/v2/dst/blobs/uploads/" in r.getheader("Location")
    assert ask(conn, "HEAD", f"/v2/dst/blobs/{missing}")[0].status == 404


def test_mount_without_from_reads_only_what_the_token_may_pull():
    """The attack: knowing a secret blob's digest, mount it into a repository one
    may push to, then read it there. It must start an upload instead."""
    key = jwt.load_key(b"a shared secret of enough length")
    api = RegistryAPI(open_store(InMemoryDriver()),
                      auth.Token("http://127.0.0.1:1/token", "svc", key, "kade"))
    issuer = auth.TokenIssuer(key, "svc", "kade")

    def bearer(*scopes):
        return {"Authorization": "Bearer " + issuer.issue(None, list(scopes))["token"]}

    secret = b"only the owner may pull this"
    with connect(api) as conn:
        r, _ = ask(conn, "POST", f"/v2/owner/blobs/uploads/?digest={sha(secret)}", secret,
                   bearer("repository:owner:pull,push"))
        assert r.status == 201
        mine = bearer("repository:mallory:pull,push", "repository:public:pull")
        r, _ = ask(conn, "POST", f"/v2/mallory/blobs/uploads/?mount={sha(secret)}", None, mine)
        assert r.status == 202
        r, _ = ask(conn, "GET", f"/v2/mallory/blobs/{sha(secret)}", None, mine)
        assert r.status == 404
        allowed = bearer("repository:mallory:pull,push", "repository:owner:pull")
        r, _ = ask(conn, "POST", f"/v2/mallory/blobs/uploads/?mount={sha(secret)}", None,
                   allowed)
        assert r.status == 201


def test_package_exports_are_pinned_and_cheap():
    import kade.registry
    assert sorted(kade.registry.__all__) == ["Config", "collect_garbage", "serve"]
    code = ("import sys, kade.registry; print(sorted(m for m in sys.modules "
            "if m.startswith('kade.registry.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
