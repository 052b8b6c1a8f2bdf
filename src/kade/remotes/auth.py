"""Registry authentication: WWW-Authenticate challenges, bearer tokens, basic auth.

The flow (docker's token spec, distribution's auth/token):

    GET /v2/busybox/manifests/latest            -> 401
      WWW-Authenticate: Bearer realm="https://auth.example/token",
                        service="registry.example",scope="repository:busybox:pull"
    GET https://auth.example/token?service=registry.example&scope=repository:busybox:pull
      (with Basic credentials when we have some; anonymous otherwise)
                                                -> {"token": "...", "expires_in": 300}
    GET /v2/busybox/manifests/latest  Authorization: Bearer ...   -> 200

A `Basic` challenge is answered with the stored username and password. An
identity token (username "<token>" in docker's config) is exchanged through
OAuth2's refresh_token grant. Tokens are cached per host and scope set until
shortly before they expire.
"""

from __future__ import annotations

import base64
import threading
import time
import urllib.parse
from collections import namedtuple
from collections.abc import Callable

from kade.errors import Forbidden, Unavailable
from kade.remotes import errcode
from kade.remotes.transport import Transport
from kade.util import fastjson

Challenge = namedtuple("Challenge", "scheme params")  # scheme lower case; params dict
Credential = namedtuple("Credential", "username secret")  # username "<token>": identity token

IDENTITY_TOKEN_USER = "<token>"
MIN_TOKEN_LIFE = 60  # seconds, the token spec's default when expires_in is missing


def parse_challenges(header: str) -> list[Challenge]:
    """RFC 7235 challenges: `Bearer realm="x",scope="y", Basic realm="z"`."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    while i < n:
        i = _skip(header, i, " \t,")
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        token = header[start:i]
        if not token:
            break
        j = _skip(header, i, " \t")
        if j < n and header[j] == "=" and out:  # token68 or a param of the last challenge
            i = _param_value(header, j + 1, out[-1].params, token.lower())
            continue
        out.append(Challenge(token.lower(), {}))
        i = j
        i = _params(header, i, out[-1].params)
    return out


def _params(header: str, i: int, params: dict) -> int:
    n = len(header)
    while i < n:
        i = _skip(header, i, " \t,")
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        key = header[start:i]
        j = _skip(header, i, " \t")
        if not key or j >= n or header[j] != "=":
            return start  # the next challenge's scheme
        i = _param_value(header, j + 1, params, key.lower())
    return i


def _param_value(header: str, i: int, params: dict, key: str) -> int:
    n = len(header)
    i = _skip(header, i, " \t")
    if i < n and header[i] == '"':
        i += 1
        value = []
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            value.append(header[i])
            i += 1
        params[key] = "".join(value)
        return i + 1
    start = i
    while i < n and header[i] not in " \t,":
        i += 1
    params[key] = header[start:i]
    return i


def _skip(s: str, i: int, chars: str) -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def basic_header(cred: Credential) -> str:
    raw = f"{cred.username}:{cred.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Authorizer:
    """Remembers each host's challenge and tokens; thread-safe.

    credentials(host) -> Credential | None is asked when a challenge needs them.
    """

    def __init__(self, transport: Transport, credentials: Callable[[str], Credential | None],
                 user_agent: str = "kade"):
        self.transport = transport
        self.credentials = credentials
        self.user_agent = user_agent
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, frozenset], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        """The Authorization header for a request, from what we already know."""
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            cred = self.credentials(host)
            return basic_header(cred) if cred else None
        key = (host, frozenset(scopes))
        with self._lock:
            token = self._tokens.get(key)
        if token and token[1] > time.monotonic():
            return "Bearer " + token[0]
        return self._fetch_token(host, challenge, scopes)

    def challenged(self, host: str, www_authenticate: str, scopes: tuple[str, ...],
                   sent: str | None) -> str | None:
        """After a 401: the header to retry with, or None when retrying is useless."""
        challenges = parse_challenges(www_authenticate or "")
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or \
            next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is None:
            return None
        self._challenges[host] = chosen
        if chosen.scheme == "basic":
            cred = self.credentials(host)
            header = basic_header(cred) if cred else None
        else:
            extra = chosen.params.get("scope", "")
            wanted = tuple(dict.fromkeys(scopes + tuple(s for s in extra.split(" ") if s)))
            with self._lock:
                self._tokens.pop((host, frozenset(scopes)), None)
            header = self._fetch_token(host, chosen, wanted, cache_as=scopes)
        return header if header != sent else None

    def _fetch_token(self, host: str, challenge: Challenge, scopes: tuple[str, ...],
                     cache_as: tuple[str, ...] | None = None) -> str | None:
        realm = challenge.params.get("realm")
        if not realm:
            raise Unavailable(f'registry "{host}" sent a bearer challenge without a realm')
        cred = self.credentials(host)
        service = challenge.params.get("service", "")
        if cred and cred.username == IDENTITY_TOKEN_USER:
            doc = self._oauth_refresh(realm, service, scopes, cred.secret)
        else:
            doc = self._token_get(realm, service, scopes, cred)
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise Unavailable(f'the token server "{realm}" answered without a token')
        life = max(int(doc.get("expires_in") or MIN_TOKEN_LIFE), MIN_TOKEN_LIFE)
        with self._lock:
            self._tokens[(host, frozenset(cache_as or scopes))] = (
                token, time.monotonic() + life - 10)
        return "Bearer " + token

    def _token_get(self, realm: str, service: str, scopes: tuple[str, ...],
                   cred: Credential | None) -> dict:
        query = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"User-Agent": self.user_agent}
        if cred:
            headers["Authorization"] = basic_header(cred)
        return self._token_call("GET", url, headers, None)

    def _oauth_refresh(self, realm: str, service: str, scopes: tuple[str, ...],
                       refresh: str) -> dict:
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh,
                                       "service": service, "scope": " ".join(scopes),
                                       "client_id": "kade"}).encode()
        headers = {"User-Agent": self.user_agent,
                   "Content-Type": "application/x-www-form-urlencoded"}
        return self._token_call("POST", realm, headers, form)

    def _token_call(self, method: str, url: str, headers: dict, body: bytes | None) -> dict:
        with self.transport.request(method, url, headers, body) as resp:
            data = resp.read(1 << 20)
            status, reason = resp.status, resp.reason
        if status in (401, 403):
            err = errcode.from_response(status, reason, data, "")
            raise Forbidden(f"unauthorized: incorrect username or password ({err})")
        if status != 200:
            raise errcode.from_response(status, reason, data, f"token server {url.split('?')[0]}")
        try:
            doc = fastjson.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise Unavailable(f"the token server {url.split('?')[0]} answered with no json")
        return doc
