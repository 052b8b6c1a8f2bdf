"""Authorization: htpasswd (bcrypt) Basic auth, JWTs and docker's token auth."""

import base64
import json
import shutil
import subprocess
import time

import pytest

from kade.errors import InvalidArgument
from kade.registry import auth, errcode, jwt
from kade.registry.auth import Access
from kade.registry.errcode import RegistryError
from kade.registry.htpasswd import Htpasswd

SECRET = b"a shared secret of enough length"


def bcrypt_hash(password: str) -> str:
    try:
        import bcrypt
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", "-C", "4", "u", password],
                             capture_output=True, text=True, check=True).stdout
        return out.strip().split(":", 1)[1]
    pytest.skip("neither the bcrypt package nor htpasswd is installed")


@pytest.fixture
def htpasswd(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt_hash('wonderland')}\n"
                    "md5user:$apr1$abc$def\n# comment\n\n")
    return Htpasswd(str(path))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_htpasswd_checks_bcrypt(htpasswd):
    assert htpasswd.check("alice", "wonderland")
    assert htpasswd.check("alice", "wonderland")  # remembered
    assert not htpasswd.check("alice", "wrong")
    assert not htpasswd.check("bob", "wonderland")
    assert not htpasswd.check("md5user", "x")


def test_htpasswd_2y_entries_from_apache_htpasswd(tmp_path):
    if not shutil.which("htpasswd"):
        pytest.skip("apache2-utils is not installed")
    path = tmp_path / "ht"
    subprocess.run(["htpasswd", "-cbB", "-C", "4", str(path), "carol", "s3cret"], check=True,
                   capture_output=True)
    assert path.read_text().split(":", 1)[1].startswith("$2y$")
    assert Htpasswd(str(path)).check("carol", "s3cret")


def test_htpasswd_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "ht"
    path.write_text(f"a:{bcrypt_hash('one')}\n")
    ht = Htpasswd(str(path))
    assert ht.check("a", "one")
    path.write_text(f"a:{bcrypt_hash('two')}\nb:{bcrypt_hash('three')}\n")
    assert not ht.check("a", "one") and ht.check("a", "two") and ht.check("b", "three")


def test_basic_authorizer(htpasswd):
    authz = auth.Basic(htpasswd)
    assert authz.authorize(basic("alice", "wonderland"), []) == "alice"
    for header in (None, basic("alice", "nope"), "Basic !!!", "Bearer x"):
        with pytest.raises(RegistryError) as e:
            authz.authorize(header, [Access("repository", "a", ("pull",))])
        assert e.value.code is errcode.UNAUTHORIZED and e.value.status == 401
        assert e.value.headers["WWW-Authenticate"] == 'Basic realm="kade registry"'
        assert e.value.detail == [{"Type": "repository", "Name": "a", "Action": "pull"}]


def test_scopes():
    assert auth.parse_scope("repository:a/b:pull,push") == Access("repository", "a/b",
                                                                  ("pull", "push"))
    assert auth.parse_scope("registry:catalog:*") == Access("registry", "catalog", ("*",))
    assert auth.parse_scope("nonsense") is None
    assert Access("repository", "x", ("pull", "push")).scope == "repository:x:pull,push"


def claims(**over):
    now = int(time.time())
    base = {"iss": "kade", "sub": "alice", "aud": "svc", "exp": now + 60, "nbf": now - 1,
            "iat": now, "access": [{"type": "repository", "name": "a", "actions": ["pull"]}]}
    return {**base, **over}


def test_hs256_round_trip():
    key = jwt.load_key(SECRET)
    token = jwt.encode(claims(), key)
    assert jwt.decode(token, key, audience="svc", issuer="kade")["sub"] == "alice"


@pytest.mark.parametrize("change,reason", [
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
    (lambda t: "e30." + t.split(".", 1)[1], "algorithm"),
    (lambda t: "x.y", "malformed"),
])
def test_tampered_tokens(change, reason):
    key = jwt.load_key(SECRET)
    with pytest.raises(jwt.TokenInvalid, match=reason):
        jwt.decode(change(jwt.encode(claims(), key)), key)


def test_alg_none_is_refused():
    key = jwt.load_key(SECRET)
    header = jwt.b64url(json.dumps({"alg": "none"}).encode())
    body = jwt.b64url(json.dumps(claims()).encode())
    with pytest.raises(jwt.TokenInvalid, match="algorithm"):
        jwt.decode(f"{header}.{body}.", key)


def test_expiry_audience_issuer():
    key = jwt.load_key(SECRET)
    with pytest.raises(jwt.TokenInvalid, match="expired"):
        jwt.decode(jwt.encode(claims(exp=int(time.time()) - 3600), key), key)
    with pytest.raises(jwt.TokenInvalid, match="not valid yet"):
        jwt.decode(jwt.encode(claims(nbf=int(time.time()) + 3600), key), key)
    with pytest.raises(jwt.TokenInvalid, match="audience"):
        jwt.decode(jwt.encode(claims(), key), key, audience="other")
    with pytest.raises(jwt.TokenInvalid, match="issuer"):
        jwt.decode(jwt.encode(claims(), key), key, issuer="other")


def test_short_secret_is_refused():
    with pytest.raises(InvalidArgument):
        jwt.load_key(b"short")


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_asymmetric_keys(kind):
    crypto = pytest.importorskip("cryptography.hazmat.primitives.asymmetric")
    from cryptography.hazmat.primitives import serialization
    if kind == "rsa":
        private = crypto.rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = crypto.ec.generate_private_key(crypto.ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signer, verifier = jwt.load_key(pem), jwt.load_key(public_pem)
    assert signer.alg == verifier.alg == ("RS256" if kind == "rsa" else "ES256")
    assert signer.can_sign and not verifier.can_sign
    token = jwt.encode(claims(), signer)
    assert jwt.decode(token, verifier)["sub"] == "alice"
    # an HS256 token "signed" with the public key bytes must not pass
    forged = jwt.encode(claims(), jwt.Key("HS256", secret=public_pem))
    with pytest.raises(jwt.TokenInvalid):
        jwt.decode(forged, verifier)


def token_auth():
    key = jwt.load_key(SECRET)
    return auth.Token("http://127.0.0.1:1/token", "svc", key, "kade"), key


def test_token_authorizer_grants_by_scope():
    authz, key = token_auth()
    token = jwt.encode(claims(), key)
    assert authz.authorize(f"Bearer {token}", [Access("repository", "a", ("pull",))]) == "alice"
    with pytest.raises(RegistryError) as e:
        authz.authorize(f"Bearer {token}", [Access("repository", "a", ("pull", "push"))])
    challenge = e.value.headers["WWW-Authenticate"]
    assert challenge == ('Bearer realm="http://127.0.0.1:1/token",service="svc",'
                         'scope="repository:a:pull,push",error="insufficient_scope"')
    with pytest.raises(RegistryError):
        authz.authorize(f"Bearer {token}", [Access("repository", "b", ("pull",))])


def test_token_authorizer_challenges_without_token():
    authz, _ = token_auth()
    with pytest.raises(RegistryError) as e:
        authz.authorize(None, [])
    assert e.value.headers["WWW-Authenticate"] == \
        'Bearer realm="http://127.0.0.1:1/token",service="svc"'
    with pytest.raises(RegistryError) as e:
        authz.authorize("Bearer garbage", [])
    assert 'error="invalid_token"' in e.value.headers["WWW-Authenticate"]


def test_issuer_anonymous_without_htpasswd_gets_what_it_asks():
    authz, key = token_auth()
    issuer = auth.TokenIssuer(key, "svc", "kade")
    doc = issuer.issue(None, ["repository:a:pull,push"])
    assert doc["expires_in"] == auth.TOKEN_TTL and doc["token"] == doc["access_token"]
    authz.authorize("Bearer " + doc["token"], [Access("repository", "a", ("pull", "push"))])


def test_issuer_with_htpasswd(htpasswd):
    authz, key = token_auth()
    issuer = auth.TokenIssuer(key, "svc", "kade", htpasswd)
    anonymous = issuer.issue(None, ["repository:a:pull"])
    with pytest.raises(RegistryError):
        authz.authorize("Bearer " + anonymous["token"], [Access("repository", "a", ("pull",))])
    with pytest.raises(RegistryError) as e:
        issuer.issue(basic("alice", "bad"), ["repository:a:pull"])
    assert e.value.status == 401
    good = issuer.issue(basic("alice", "wonderland"), ["repository:a:pull,push",
                                                       "registry:catalog:*"])
    assert authz.authorize("Bearer " + good["token"],
                           [Access("repository", "a", ("push",)),
                            Access("registry", "catalog", ("*",))]) == "alice"
    form = issuer.issue(None, ["repository:a:pull"], "alice", "wonderland")
    authz.authorize("Bearer " + form["token"], [Access("repository", "a", ("pull",))])


def test_deeply_nested_token_is_malformed_not_a_crash():
    key = jwt.load_key(SECRET)
    deep = jwt.b64url(b"[" * 30_000 + b"]" * 30_000)
    with pytest.raises(jwt.TokenInvalid, match="malformed"):
        jwt.decode(f"{deep}.{deep}.", key)
