"""Compact JSON Web Tokens, as docker's token authentication uses them.

Three algorithms, chosen by the key file (`--token-key`):
- a PEM RSA key: RS256; a PEM EC P-256 key: ES256 (both through the
  `cryptography` package). A private key signs and verifies; a public key or a
  certificate only verifies tokens issued by another server.
- anything else is a shared secret: HS256, stdlib only.

The algorithm is the key's, never the token header's: a token whose `alg`
differs is refused, so `none` or HS256-with-a-public-key forgeries cannot pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from kade.errors import InvalidArgument
from kade.util import fastjson


class TokenInvalid(Exception):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Key:
    """A signing and/or verifying key; `alg` is RS256, ES256 or HS256."""

    def __init__(self, alg: str, private=None, public=None, secret: bytes | None = None):
        self.alg, self._private, self._public, self._secret = alg, private, public, secret

    @property
    def can_sign(self) -> bool:
        return self._secret is not None or self._private is not None

    @property
    def kid(self) -> str:
        """A short id of the key (docker's registry wants one in the header)."""
        return hashlib.sha256(self._material()).hexdigest()[:32]

    def _material(self) -> bytes:
        if self._secret is not None:
            return self._secret
        from cryptography.hazmat.primitives import serialization
        return self._public.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> bytes:
        if self.alg == "HS256":
            assert self._secret is not None
            return hmac.new(self._secret, data, hashlib.sha256).digest()
        from cryptography.hazmat.primitives import hashes
        if self.alg == "RS256":
            from cryptography.hazmat.primitives.asymmetric import padding
            return self._private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        r, s = utils.decode_dss_signature(self._private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        if self.alg == "HS256":
            return hmac.compare_digest(self.sign(data), signature)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        try:
            if self.alg == "RS256":
                from cryptography.hazmat.primitives.asymmetric import padding
                self._public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                from cryptography.hazmat.primitives.asymmetric import ec, utils
                if len(signature) != 64:
                    return False
                der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                                 int.from_bytes(signature[32:], "big"))
                self._public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def load_key(raw: bytes) -> Key:
    if b"-----BEGIN" not in raw:
        secret = raw.strip()
        if len(secret) < 16:
            raise InvalidArgument("a shared token key needs at least 16 bytes")
        return Key("HS256", secret=secret)
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
    except ImportError:
        raise InvalidArgument("a PEM token key needs the 'cryptography' package "
                              "(pip install cryptography), or use a shared secret "
                              "(HS256) file instead") from None
    private = public = None
    if b"PRIVATE KEY" in raw:
        private = serialization.load_pem_private_key(raw, password=None)
        public = private.public_key()
    elif b"CERTIFICATE" in raw:
        public = x509.load_pem_x509_certificate(raw).public_key()
    else:
        public = serialization.load_pem_public_key(raw)
    if isinstance(public, rsa.RSAPublicKey):
        return Key("RS256", private, public)
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
        return Key("ES256", private, public)
    raise InvalidArgument("token keys must be RSA or EC P-256 (or a shared secret)")


def encode(claims: dict, key: Key) -> str:
    header = {"typ": "JWT", "alg": key.alg, "kid": key.kid}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


def decode(token: str, key: Key, *, audience: str | None = None, issuer: str | None = None,
           leeway: float = 60.0, now: float | None = None) -> dict:
    """The verified claims of `token`, or TokenInvalid saying why not."""
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header = fastjson.loads(unb64url(head_b64))
        claims = fastjson.loads(unb64url(claims_b64))
        signature = unb64url(sig_b64)
    except ValueError:
        raise TokenInvalid("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != key.alg:
        raise TokenInvalid(f"token algorithm is not {key.alg}")
    if not key.verify(f"{head_b64}.{claims_b64}".encode(), signature):
        raise TokenInvalid("bad token signature")
    if not isinstance(claims, dict):
        raise TokenInvalid("token claims are not an object")
    _check_claims(claims, audience, issuer, leeway, time.time() if now is None else now)
    return claims


def _check_claims(claims: dict, audience, issuer, leeway: float, now: float) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or now > exp + leeway:
        raise TokenInvalid("token expired")
    if isinstance(nbf, (int, float)) and now + leeway < nbf:
        raise TokenInvalid("token not valid yet")
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenInvalid("token issuer does not match")
    if audience is not None:
        aud = claims.get("aud")
        if audience != aud and not (isinstance(aud, list) and audience in aud):
            raise TokenInvalid("token audience does not match")
