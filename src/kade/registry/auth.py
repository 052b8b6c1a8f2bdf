"""Who may do what: no auth, htpasswd (Basic), or docker's token auth (Bearer).

Every request needs a list of `Access`es (resource type, name, actions):
`repository:<name>:pull` to read, `push` to write, `delete` to delete,
`registry:catalog:*` for `_catalog`; `/v2/` needs none but still needs
credentials. An authorizer grants them all or raises UNAUTHORIZED with the
`WWW-Authenticate` challenge the client needs:

    Basic realm="kade registry"
    Bearer realm="http://127.0.0.1:5000/token",service="kade",scope="repository:a:pull,push"

With token auth the registry only verifies tokens; `TokenIssuer` is the token
endpoint (docker's token spec: GET realm?service=&scope= with optional Basic
credentials, answering {"token": ..., "access_token": ..., "expires_in": ...}),
served by the registry itself when it holds a signing key.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from typing import TYPE_CHECKING, NamedTuple, Protocol

from kade.registry import errcode, jwt
from kade.registry.errcode import RegistryError

if TYPE_CHECKING:
    from kade.registry.htpasswd import Htpasswd

TOKEN_TTL = 300
BASIC_REALM = "kade registry"


class Access(NamedTuple):
    type: str
    name: str
    actions: tuple[str, ...]

    @property
    def scope(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(scope: str) -> Access | None:
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


class Authorizer(Protocol):
    def authorize(self, authorization: str | None, wanted: list[Access]) -> str | None:
        """The user granted `wanted` (None when anonymous), else RegistryError."""


class Open:
    def authorize(self, authorization: str | None, wanted: list[Access]) -> str | None:
        return None


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def unauthorized(challenge: str, wanted: list[Access], message: str) -> RegistryError:
    detail = [{"Type": a.type, "Name": a.name, "Action": action}
              for a in wanted for action in a.actions] or None
    return RegistryError(errcode.UNAUTHORIZED, detail, message=message,
                         headers={"WWW-Authenticate": challenge})


class Basic:
    def __init__(self, htpasswd: "Htpasswd", realm: str = BASIC_REALM):
        self.htpasswd = htpasswd
        self.realm = realm

    def authorize(self, authorization: str | None, wanted: list[Access]) -> str | None:
        creds = basic_credentials(authorization)
        if creds is not None and self.htpasswd.check(*creds):
            return creds[0]
        raise unauthorized(f'Basic realm="{self.realm}"', wanted, "authentication required")


class Token:
    def __init__(self, realm: str, service: str, key: jwt.Key, issuer: str | None = None):
        self.realm, self.service, self.key, self.issuer = realm, service, key, issuer

    def challenge(self, wanted: list[Access], error: str | None = None) -> str:
        parts = [f'realm="{self.realm}"', f'service="{self.service}"']
        if wanted:
            parts.append(f'scope="{" ".join(a.scope for a in wanted)}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def authorize(self, authorization: str | None, wanted: list[Access]) -> str | None:
        if not authorization or authorization[:7].lower() != "bearer ":
            raise unauthorized(self.challenge(wanted), wanted, "authentication required")
        try:
            claims = jwt.decode(authorization[7:].strip(), self.key, audience=self.service,
                                issuer=self.issuer)
        except jwt.TokenInvalid as e:
            raise unauthorized(self.challenge(wanted, "invalid_token"), wanted,
                               f"invalid token: {e}") from None
        granted = _granted(claims.get("access"))
        for access in wanted:
            have = granted.get((access.type, access.name), set())
            if not ("*" in have or set(access.actions) <= have):
                raise unauthorized(self.challenge(wanted, "insufficient_scope"), wanted,
                                   f"token does not grant {access.scope}")
        return claims.get("sub") or None


def _granted(access) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for entry in access if isinstance(access, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("actions"), list):
            key = (str(entry.get("type")), str(entry.get("name")))
            out.setdefault(key, set()).update(str(a) for a in entry["actions"])
    return out


class TokenIssuer:
    """The token endpoint. With an htpasswd file, anonymous callers get tokens
    granting nothing and wrong credentials are refused; without one, anyone
    gets what they ask for (a registry open to all, but speaking token auth)."""

    def __init__(self, key: jwt.Key, service: str, issuer: str,
                 htpasswd: "Htpasswd | None" = None, ttl: int = TOKEN_TTL):
        self.key, self.service, self.issuer = key, service, issuer
        self.htpasswd, self.ttl = htpasswd, ttl

    def issue(self, authorization: str | None, scopes: list[str],
              user: str | None = None, password: str | None = None) -> dict:
        if user is None:
            creds = basic_credentials(authorization)
            user, password = creds if creds else (None, None)
        if user is not None and self.htpasswd is not None \
                and not self.htpasswd.check(user, password or ""):
            raise RegistryError(errcode.UNAUTHORIZED, message="invalid username or password",
                                headers={"WWW-Authenticate": f'Basic realm="{BASIC_REALM}"'})
        anonymous = user is None
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                parsed = parse_scope(one)
                if parsed is not None and not (anonymous and self.htpasswd is not None):
                    access.append({"type": parsed.type, "name": parsed.name,
                                   "actions": list(parsed.actions)})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": self.service,
                  "exp": now + self.ttl, "nbf": now - 1, "iat": now,
                  "jti": os.urandom(12).hex(), "access": access}
        token = jwt.encode(claims, self.key)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": self.ttl,
                "issued_at": issued}
