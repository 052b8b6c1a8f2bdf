"""`kade registry serve` with htpasswd, with token auth, with TLS; `kade registry gc`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess

import pytest
from registry_helpers import (KADE, Server, call, htpasswd_file, make_image, push_blob,
                              push_image, sha256)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("basic")
    ht = htpasswd_file(str(d / "htpasswd"), "alice", "wonderland")
    with Server(str(d / "root"), "--htpasswd", ht) as s:
        yield s


def test_htpasswd_refuses_anonymous_requests(basic_server):
    url = basic_server.url
    for method, path in [("GET", "/v2/"), ("POST", "/v2/a/blobs/uploads/"),
                         ("GET", "/v2/a/tags/list"), ("GET", "/v2/_catalog")]:
        r = call(url, method, path, b"" if method == "POST" else None)
        assert r.status == 401 and r.codes == ["UNAUTHORIZED"]
        assert r.header("WWW-Authenticate") == 'Basic realm="kade registry"'
    r = call(url, "GET", "/v2/", headers=basic("alice", "wrong"))
    assert r.status == 401


def test_htpasswd_user_can_push_and_pull(basic_server):
    url, auth = basic_server.url, basic("alice", "wonderland")
    assert call(url, "GET", "/v2/", headers=auth).status == 200
    image = make_image()
    digest = push_image(url, "private/img", "v1", image, auth)
    r = call(url, "GET", "/v2/private/img/manifests/v1", headers=auth)
    assert r.status == 200 and r.header("Docker-Content-Digest") == digest


def test_refused_upload_body_still_gets_its_answer(basic_server):
    r = call(basic_server.url, "POST", f"/v2/a/blobs/uploads/?digest={sha256(b'x' * 1)}",
             os.urandom(16 << 20))
    assert r.status == 401


# -- token auth: this server signs (HS256 shared key) and verifies


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("token")
    ht = htpasswd_file(str(d / "htpasswd"), "bob", "builder")
    key = d / "token.key"
    key.write_bytes(os.urandom(32).hex().encode())
    with Server(str(d / "root"), "--htpasswd", ht, "--token-realm", "/token",
                "--token-key", str(key)) as s:
        yield s


def bearer_challenge(header: str) -> dict:
    assert header.startswith("Bearer ")
    parts = {}
    for item in header[7:].split('",'):
        k, _, v = item.partition("=")
        parts[k] = v.strip('"')
    return parts


def get_token(server, challenge: dict, auth: dict | None) -> str:
    query = f"service={challenge['service']}"
    if "scope" in challenge:
        query += f"&scope={challenge['scope']}"
    r = call(challenge["realm"], "GET", f"{challenge['realm']}?{query}", headers=auth or {})
    assert r.status == 200, r.body
    doc = r.json()
    assert doc["token"] == doc["access_token"] and doc["expires_in"] > 0
    return doc["token"]


def test_token_flow(token_server):
    url = token_server.url
    r = call(url, "POST", "/v2/tok/app/blobs/uploads/", b"")
    assert r.status == 401
    challenge = bearer_challenge(r.header("WWW-Authenticate"))
    assert challenge["realm"] == f"{url}/token" and challenge["service"] == "kade-registry"
    assert challenge["scope"] == "repository:tok/app:pull,push"
    token = get_token(token_server, challenge, basic("bob", "builder"))
    auth = {"Authorization": f"Bearer {token}"}
    digest = push_blob(url, "tok/app", b"token pushed", auth)
    assert call(url, "GET", f"/v2/tok/app/blobs/{digest}", headers=auth).body == b"token pushed"
    # the token is for tok/app only
    r = call(url, "GET", f"/v2/tok/other/blobs/{digest}", headers=auth)
    assert r.status == 401 and "insufficient_scope" in r.header("WWW-Authenticate")


def test_token_endpoint_refuses_bad_credentials_and_gives_anonymous_nothing(token_server):
    url = token_server.url
    challenge = {"realm": f"{url}/token", "service": "kade-registry",
                 "scope": "repository:tok/app:pull"}
    r = call(url, "GET", f"/token?service=kade-registry&scope={challenge['scope']}",
             headers=basic("bob", "wrong"))
    assert r.status == 401
    token = get_token(token_server, challenge, None)
    r = call(url, "GET", "/v2/tok/app/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 401
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["access"] == [] and payload["aud"] == "kade-registry"


def test_token_post_form(token_server):
    url = token_server.url
    form = b"grant_type=password&username=bob&password=builder&service=kade-registry" \
           b"&scope=registry:catalog:*"
    r = call(url, "POST", "/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert call(url, "GET", "/v2/_catalog", headers=auth).status == 200


# -- TLS


def make_cert(directory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def test_tls(tmp_path):
    cert, key = make_cert(tmp_path)
    with Server(str(tmp_path / "root"), "--tls-cert", cert, "--tls-key", key) as s:
        assert s.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=cert)
        r = call(s.url, "GET", "/v2/", context=ctx)
        assert r.status == 200
        data = os.urandom(3 << 20)
        r = call(s.url, "POST", f"/v2/tls/blobs/uploads/?digest={sha256(data)}", data,
                 context=ctx)
        assert r.status == 201
        r = call(s.url, "GET", f"/v2/tls/blobs/{sha256(data)}", context=ctx)
        assert r.body == data


# -- gc


def test_gc_cli(tmp_path):
    root = str(tmp_path / "root")
    with Server(root) as s:
        image = make_image([{"keep": b"kept layer"}])
        push_image(s.url, "gc/app", "v1", image)
        orphan = push_blob(s.url, "gc/app", b"nobody references me")
        old = make_image([{"old": b"old layer"}])
        old_digest = push_image(s.url, "gc/app", "old", old)
        assert call(s.url, "DELETE", f"/v2/gc/app/manifests/{old_digest}").status == 202
    dry = subprocess.run(KADE + ["registry", "gc", "--root", root, "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    assert f"would remove blob {orphan}" in dry and "4 blobs unreferenced" in dry
    out = subprocess.run(KADE + ["registry", "gc", "--root", root], capture_output=True,
                         text=True, check=True).stdout
    assert f"removing blob {orphan}" in out
    with Server(root) as s:
        assert call(s.url, "HEAD", f"/v2/gc/app/blobs/{orphan}").status == 404
        for d in old.layers:
            assert call(s.url, "HEAD", f"/v2/gc/app/blobs/{d}").status == 404
        r = call(s.url, "GET", "/v2/gc/app/manifests/v1")
        assert r.status == 200
        for d in image.blobs:
            assert call(s.url, "HEAD", f"/v2/gc/app/blobs/{d}").status == 200


def test_gc_removes_stale_uploads_and_keeps_fresh_ones(tmp_path):
    root = str(tmp_path / "root")
    with Server(root) as s:
        uploads = {}
        for which in ("stale", "fresh", "hour-old"):
            loc = call(s.url, "POST", "/v2/gc/up/blobs/uploads/", b"").header("Location")
            r = call(s.url, "PATCH", loc, which.encode() * 1000)
            assert r.status == 202
            uploads[which] = loc
    base = os.path.join(root, "docker/registry/v2/repositories/gc/up/_uploads")
    ids = {which: loc.rsplit("/", 1)[1] for which, loc in uploads.items()}
    for which, age in (("stale", 8 * 24 * 3600), ("hour-old", 2 * 3600)):
        for name in ("data", "startedat"):
            path = os.path.join(base, ids[which], name)
            old = os.stat(path).st_mtime - age
            os.utime(path, (old, old))
    gc = KADE + ["registry", "gc", "--root", root]
    out = subprocess.run(gc + ["--dry-run"], capture_output=True, text=True, check=True).stdout
    assert f"would remove upload gc/up/{ids['stale']} (5kB, idle 8 days)" in out
    assert sorted(os.listdir(base)) == sorted(ids.values())
    out = subprocess.run(gc, capture_output=True, text=True, check=True).stdout
    assert f"removing upload gc/up/{ids['stale']}" in out and "; 1 stale uploads" in out
    assert sorted(os.listdir(base)) == sorted([ids["fresh"], ids["hour-old"]])
    out = subprocess.run(gc + ["--uploads-older-than", "1h"], capture_output=True, text=True,
                         check=True).stdout
    assert f"removing upload gc/up/{ids['hour-old']}" in out and ids["fresh"] not in out
    assert os.listdir(base) == [ids["fresh"]]
    with Server(root) as s:  # the fresh upload goes on where it was
        r = call(s.url, "GET", uploads["fresh"])
        assert r.status == 204 and r.header("Range") == "0-4999"
    r = subprocess.run(gc + ["--uploads-older-than", "-1h"], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.count("\n") == 1
    assert 'invalid argument "-1h" for "--uploads-older-than" flag' in r.stderr


def test_cli_usage_errors(tmp_path):
    r = subprocess.run(KADE + ["registry", "serve", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 125 and "unknown flag: --bogus" in r.stderr
    r = subprocess.run(KADE + ["registry", "serve", "--root", str(tmp_path), "--addr", "nope"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "invalid listen address" in r.stderr
    r = subprocess.run(KADE + ["registry", "frobnicate"], capture_output=True, text=True)
    # as docker answers an unknown subcommand of a group: its help, exit 1
    assert r.returncode == 1 and "kade registry COMMAND" in r.stderr


def ec_keys(directory) -> tuple[str, str]:
    crypto = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    from cryptography.hazmat.primitives import serialization
    private = crypto.generate_private_key(crypto.SECP256R1())
    priv, pub = directory / "token.pem", directory / "token.pub"
    priv.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pub.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(priv), str(pub)


def test_es256_tokens_from_this_server(tmp_path):
    priv, _ = ec_keys(tmp_path)
    with Server(str(tmp_path / "root"), "--token-realm", "/auth/token",
                "--token-key", priv) as s:
        r = call(s.url, "GET", "/v2/")
        challenge = bearer_challenge(r.header("WWW-Authenticate"))
        assert challenge["realm"] == f"{s.url}/auth/token"
        token = get_token(s, {**challenge, "scope": "repository:es/app:pull,push"}, None)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["alg"] == "ES256"
        push_blob(s.url, "es/app", b"es256", {"Authorization": f"Bearer {token}"})


def test_tokens_from_an_external_issuer(tmp_path):
    """A public key only: the registry verifies, and serves no token endpoint."""
    import time as _time

    from kade.registry import jwt
    priv, pub = ec_keys(tmp_path)
    with Server(str(tmp_path / "root"), "--token-realm", "http://127.0.0.1:9/token",
                "--token-key", pub, "--token-service", "outside") as s:
        assert call(s.url, "GET", "/token").status == 404
        now = int(_time.time())
        claims = {"iss": "kade-registry", "sub": "ci", "aud": "outside", "exp": now + 60,
                  "nbf": now, "access": [{"type": "repository", "name": "ext/app",
                                          "actions": ["pull", "push"]}]}
        with open(priv, "rb") as f:
            token = jwt.encode(claims, jwt.load_key(f.read()))
        auth = {"Authorization": f"Bearer {token}"}
        digest = push_blob(s.url, "ext/app", b"external", auth)
        assert call(s.url, "GET", f"/v2/ext/app/blobs/{digest}", headers=auth).status == 200
        assert call(s.url, "GET", f"/v2/ext/app/blobs/{digest}").status == 401
