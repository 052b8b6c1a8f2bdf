"""Challenges, bearer tokens and basic auth, against the in-memory registry."""

from __future__ import annotations

import base64

import pytest

from kade.errors import Forbidden
from kade.oci import reference
from kade.remotes.auth import Credential, parse_challenges
from kade.remotes.client import Session
from kade.remotes.hosts import Hosts
from kade.remotes.memory import MemoryRegistry


def session(reg: MemoryRegistry, creds: dict | None = None) -> Session:
    creds = creds or {}
    return Session(Hosts(), lambda host: creds.get(host), reg, retry_delays=(0, 0))


def repo(s: Session, name: str = "registry.test/app"):
    return s.repository(reference.parse(name))


def put_app(reg: MemoryRegistry) -> None:
    reg.put_image("app", "latest", b'{"rootfs":{"diff_ids":[]}}', [])


# --- parsing ---------------------------------------------------------------------


def test_parse_bearer_challenge():
    (c,) = parse_challenges('Bearer realm="https://auth.docker.io/token",'
                            'service="registry.docker.io",scope="repository:library/busybox:pull"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}


def test_parse_several_challenges_and_quoting():
    cs = parse_challenges('Basic realm="Registry Realm", Bearer realm="https://a/t", '
                          'error="invalid_token", scope="repository:a:pull,push x\\"y"')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[0].params == {"realm": "Registry Realm"}
    assert cs[1].params["scope"] == 'repository:a:pull,push x"y'
    assert cs[1].params["error"] == "invalid_token"


def test_parse_unquoted_values_and_garbage():
    (c,) = parse_challenges("Bearer realm=https://a/t,service=reg")
    assert c.params == {"realm": "https://a/t", "service": "reg"}
    assert parse_challenges("") == []


# --- flows -----------------------------------------------------------------------


def test_anonymous_bearer_token_is_fetched_once_and_reused():
    reg = MemoryRegistry(auth="bearer")
    put_app(reg)
    r = repo(session(reg))
    r.get_manifest("latest")
    r.get_manifest("latest")
    tokens = reg.requests("GET", "auth.test/token")
    assert len(tokens) == 1
    assert "Authorization" not in tokens[0][2]
    assert "scope=repository%3Aapp%3Apull" in tokens[0][1]
    assert "service=registry.test" in tokens[0][1]
    # the second manifest GET went straight through with the cached token
    assert [h.get("Authorization", "")[:7] for m, u, h in reg.requests("GET", "/manifests/")] \
        == ["", "Bearer ", "Bearer "]


def test_bearer_token_with_credentials_sends_basic_to_the_token_server():
    reg = MemoryRegistry(auth="bearer", users={"alice": "s3cret"})
    put_app(reg)
    r = repo(session(reg, {"registry.test": Credential("alice", "s3cret")}))
    r.get_manifest("latest")
    (token_req,) = reg.requests("GET", "auth.test/token")
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert token_req[2]["Authorization"] == expected


def test_bearer_without_credentials_on_a_private_registry_is_denied():
    reg = MemoryRegistry(auth="bearer", users={"alice": "s3cret"})
    put_app(reg)
    with pytest.raises(Forbidden, match="unauthorized: authentication required"):
        repo(session(reg)).get_manifest("latest")


def test_wrong_password_is_one_clear_line():
    reg = MemoryRegistry(auth="bearer", users={"alice": "s3cret"})
    put_app(reg)
    with pytest.raises(Forbidden, match="incorrect username or password"):
        repo(session(reg, {"registry.test": Credential("alice", "nope")})).get_manifest("latest")


def test_basic_auth_challenge_is_answered_with_credentials():
    reg = MemoryRegistry(auth="basic", users={"bob": "pw"})
    put_app(reg)
    r = repo(session(reg, {"registry.test": Credential("bob", "pw")}))
    r.get_manifest("latest")
    r.get_manifest("latest")
    sent = [h.get("Authorization") for _, _, h in reg.requests("GET", "/manifests/")]
    basic = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert sent == [None, basic, basic]  # once challenged, sent up front


def test_basic_auth_without_credentials_fails_once():
    reg = MemoryRegistry(auth="basic", users={"bob": "pw"})
    put_app(reg)
    with pytest.raises(Forbidden, match="authentication required"):
        repo(session(reg)).get_manifest("latest")
    assert len(reg.requests("GET", "/manifests/")) == 1


def test_identity_token_uses_the_oauth_refresh_grant():
    reg = MemoryRegistry(auth="bearer", users={"alice": "pw"})
    reg.refresh_tokens["refresh-me"] = "alice"
    put_app(reg)
    r = repo(session(reg, {"registry.test": Credential("<token>", "refresh-me")}))
    r.get_manifest("latest")
    (post,) = reg.requests("POST", "auth.test/token")
    assert "Authorization" not in post[2]


def test_ping_checks_login():
    reg = MemoryRegistry(auth="bearer", users={"alice": "pw"})
    session(reg, {"registry.test": Credential("alice", "pw")}).ping("registry.test")
    with pytest.raises(Forbidden):
        session(reg, {"registry.test": Credential("alice", "bad")}).ping("registry.test")
