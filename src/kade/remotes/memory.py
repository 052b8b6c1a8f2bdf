"""An in-memory registry behind the Transport seam, for tests of anything that
talks to registries (the client, pull, push) without sockets.

    reg = MemoryRegistry("registry.test", auth="bearer", users={"alice": "pw"})
    reg.put_image("app", "latest", config_bytes, [layer_blob, ...])
    session = Session(Hosts(), credentials, reg)        # reg is the transport

It speaks the distribution API a client needs: /v2/, manifests (GET, HEAD,
PUT), blobs (GET with Range, HEAD), uploads (POST, cross-repository mount,
PUT ?digest=), tags/list with n/last; auth none, "basic" or "bearer" (the
token server is https://auth.test/token). Faults are queued with `fail` and
`truncate`, or set with the `ignore_range`, `tls`, `redirect_blobs` and
`blob_override` knobs; every request is kept in `log` as (method, url, headers).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.parse
from collections import defaultdict

from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.remotes.transport import Response, TLSError, TransportError

TOKEN_HOST = "auth.test"


class MemoryRegistry:
    def __init__(self, host: str = "registry.test", *, auth: str | None = None,
                 users: dict[str, str] | None = None, tls: bool = True):
        self.host = host
        self.auth = auth
        self.users = users or {}
        self.tls = tls  # False: https requests fail as if the server spoke plain HTTP
        self.blobs: dict[str, bytes] = {}
        self.repo_blobs: dict[str, set[str]] = defaultdict(set)
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.uploads: dict[str, str] = {}
        self.log: list[tuple[str, str, dict]] = []
        self.ignore_range = False
        self.blob_override: dict[str, bytes] = {}  # digest -> wrong bytes served
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        self.redirect_blobs = False  # blob GETs answer 307 to /_storage/<digest>
        self._faults: list[list] = []  # [method, path fragment, status, times, body, headers]
        self._truncations: dict[str, list] = {}  # digest -> [at, times]
        self._tokens: dict[str, tuple[str, frozenset]] = {}
        self._lock = threading.Lock()
        self._n = 0

    # --- setting up --------------------------------------------------------------
    def put_blob(self, repo: str, data: bytes) -> str:
        d = dg.of_bytes(data)
        self.blobs[d] = data
        self.repo_blobs[repo].add(d)
        return d

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        d = dg.of_bytes(data)
        self.manifests[(repo, d)] = (data, media_type)
        if ref != d:
            self.manifests[(repo, ref)] = (data, media_type)
        return d

    def put_image(self, repo: str, tag: str | None, config: bytes, layers: list[bytes],
                  layer_type: str = mt.DOCKER_LAYER_GZIP, oci: bool = False) -> str:
        """Blobs and a schema 2 (or OCI) manifest; returns the manifest digest."""
        doc = {"schemaVersion": 2,
               "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
               "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                          "size": len(config), "digest": self.put_blob(repo, config)},
               "layers": [{"mediaType": layer_type, "size": len(b),
                           "digest": self.put_blob(repo, b)} for b in layers]}
        data = json.dumps(doc).encode()
        return self.put_manifest(repo, tag or dg.of_bytes(data), data, str(doc["mediaType"]))

    def fail(self, method: str, fragment: str, status: int, times: int = 1,
             body: bytes = b"", headers: dict | None = None) -> None:
        """Answer the next `times` requests whose path contains fragment with status."""
        self._faults.append([method, fragment, status, times, body, headers or {}])

    def truncate(self, digest: str, at: int, times: int = 1) -> None:
        """Cut the next `times` transfers of a blob after `at` bytes of the body."""
        self._truncations[digest] = [at, times]

    def requests(self, method: str | None = None, fragment: str = "") -> list:
        return [r for r in self.log if (method is None or r[0] == method) and fragment in r[1]]

    # --- the Transport -----------------------------------------------------------
    def request(self, method: str, url: str, headers: dict | None = None, body=None) -> Response:
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = body.read()
        with self._lock:
            self.log.append((method, url, headers))
        scheme, _, rest = url.partition("://")
        host, _, path = rest.partition("/")
        path = "/" + path
        if scheme == "https" and not self.tls and host == self.host:
            raise TLSError(f"{method} {url}: wrong version number")
        if host == TOKEN_HOST:
            return self._token(method, path, headers, body or b"")
        if host != self.host:
            raise TransportError(f"connect {scheme}://{host}: connection refused")
        fault = self._fault(method, path)
        if fault is not None:
            return fault
        if path.startswith("/_storage/"):  # where redirect_blobs sends blob GETs
            return self._blob(method, None, path[len("/_storage/"):], headers)
        denied = self._check_auth(path, headers)
        if denied is not None:
            return denied
        return self._route(method, path, headers, body or b"")

    def _fault(self, method: str, path: str) -> Response | None:
        with self._lock:
            for f in self._faults:
                if f[0] == method and f[1] in path and f[3] > 0:
                    f[3] -= 1
                    return _resp(f[2], f[4], f[5])
        return None

    # --- auth --------------------------------------------------------------------
    def _check_auth(self, path: str, headers: dict) -> Response | None:
        if self.auth is None:
            return None
        given = headers.get("Authorization", "")
        repo = _repo_of(path)
        scope = f"repository:{repo}:pull" if repo else ""
        if self.auth == "basic":
            if self._basic_ok(given):
                return None
            return _error(401, "UNAUTHORIZED", "authentication required",
                          {"www-authenticate": f'Basic realm="{self.host}"'})
        token = given.removeprefix("Bearer ")
        granted = self._tokens.get(token)
        if granted is not None and (not repo or any(s.startswith(f"repository:{repo}:")
                                                    for s in granted[1])):
            return None
        challenge = f'Bearer realm="https://{TOKEN_HOST}/token",service="{self.host}"'
        if scope:
            challenge += f',scope="{scope}"'
        return _error(401, "UNAUTHORIZED", "authentication required",
                      {"www-authenticate": challenge})

    def _basic_ok(self, given: str) -> bool:
        if not given.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(given[6:]).decode().partition(":")
        return self.users.get(user) == password and bool(user)

    def _token(self, method: str, path: str, headers: dict, body: bytes) -> Response:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        given = headers.get("Authorization", "")
        user = None
        if method == "POST":  # OAuth2: grant_type=refresh_token
            form = urllib.parse.parse_qs(body.decode())
            user = self.refresh_tokens.get(form.get("refresh_token", [""])[0])
            if form.get("grant_type") != ["refresh_token"] or user is None:
                return _error(401, "UNAUTHORIZED", "invalid refresh token")
            query = {"scope": form.get("scope", [""])[0].split()}
        elif given:
            if not self._basic_ok(given):
                return _error(401, "UNAUTHORIZED", "incorrect username or password")
            user = base64.b64decode(given[6:]).decode().partition(":")[0]
        scopes: frozenset[str] = frozenset()  # anonymous on a private registry: no access
        if user is not None or not self.users:
            scopes = frozenset(query.get("scope", []))
        with self._lock:
            self._n += 1
            token = f"token-{self._n}"
            self._tokens[token] = (user or "", scopes)
        key = "access_token" if method == "POST" else "token"
        return _resp(200, json.dumps({key: token, "expires_in": 300}).encode())

    # --- the API -------------------------------------------------------------------
    def _route(self, method: str, path: str, headers: dict, body: bytes) -> Response:
        split = urllib.parse.urlsplit(path)
        parts = split.path.split("/")
        if split.path in ("/v2/", "/v2"):
            return _resp(200, b"{}")
        query = urllib.parse.parse_qs(split.query)
        if "manifests" in parts:
            i = parts.index("manifests")
            return self._manifest(method, "/".join(parts[2:i]), parts[i + 1], headers, body)
        if "uploads" in parts:
            i = parts.index("blobs")
            repo = "/".join(parts[2:i])
            return self._upload(method, repo, parts[i + 2] if len(parts) > i + 2 else "",
                                query, body)
        if "blobs" in parts:
            i = parts.index("blobs")
            return self._blob(method, "/".join(parts[2:i]), parts[i + 1], headers)
        if split.path.endswith("/tags/list"):
            return self._tags(split.path[len("/v2/"):-len("/tags/list")], query)
        return _error(404, "NOT_FOUND", "no route")

    def _manifest(self, method, repo, ref, headers, body) -> Response:
        if method == "PUT":
            self.put_manifest(repo, ref, body, headers.get("Content-Type", ""))
            return _resp(201, b"", {"docker-content-digest": dg.of_bytes(body)})
        found = self.manifests.get((repo, ref))
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        data, media_type = found
        h = {"content-type": media_type, "docker-content-digest": dg.of_bytes(data),
             "content-length": str(len(data))}
        return _resp(200, b"" if method == "HEAD" else data, h)

    def _blob(self, method, repo, digest, headers) -> Response:
        if repo is not None and digest not in self.repo_blobs.get(repo, ()):
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        if repo is not None and self.redirect_blobs and method == "GET":
            return _resp(307, b"", {"location": f"https://{self.host}/_storage/{digest}"})
        data = self.blob_override.get(digest, self.blobs[digest])
        if method == "HEAD":
            return _resp(200, b"", {"content-length": str(len(data))})
        start, status = 0, 200
        rng = headers.get("Range", "")
        if rng.startswith("bytes=") and not self.ignore_range:
            start, status = int(rng[6:].split("-")[0]), 206
        body = data[start:]
        cut = self._truncations.get(digest)
        if cut and cut[1] > 0:
            cut[1] -= 1
            return _resp(status, body[:max(0, cut[0] - start)],
                         {"content-length": str(len(body))}, short=True)
        return _resp(status, body, {"content-length": str(len(body))})

    def _upload(self, method, repo, upload_id, query, body) -> Response:
        if method == "POST":
            mount, source = query.get("mount", [None])[0], query.get("from", [None])[0]
            if mount and source and mount in self.repo_blobs.get(source, ()):
                self.repo_blobs[repo].add(mount)
                return _resp(201, b"", {"location": f"/v2/{repo}/blobs/{mount}"})
            with self._lock:
                self._n += 1
                uid = f"u{self._n}"
            self.uploads[uid] = repo
            return _resp(202, b"", {"location": f"/v2/{repo}/blobs/uploads/{uid}?_state=x"})
        if method == "PUT" and upload_id in self.uploads:
            digest = query.get("digest", [""])[0]
            if dg.of_bytes(body, digest.partition(":")[0] or "sha256") != digest:
                return _error(400, "DIGEST_INVALID", "provided digest did not match "
                              "uploaded content")
            del self.uploads[upload_id]
            self.put_blob(repo, body)
            return _resp(201, b"", {"location": f"/v2/{repo}/blobs/{digest}"})
        return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")

    def _tags(self, repo, query) -> Response:
        tags = sorted({ref for (r, ref) in self.manifests if r == repo and ":" not in ref})
        if not tags:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
        last = query.get("last", [""])[0]
        tags = [t for t in tags if t > last]
        n = int(query.get("n", ["0"])[0] or 0)
        h = {}
        if n and len(tags) > n:
            tags = tags[:n]
            h["link"] = f'</v2/{repo}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
        return _resp(200, json.dumps({"name": repo, "tags": tags}).encode(), h)


def _repo_of(path: str) -> str:
    parts = urllib.parse.urlsplit(path).path.split("/")
    for word in ("manifests", "blobs", "tags"):
        if word in parts:
            return "/".join(parts[2:parts.index(word)])
    return ""


class _ShortBody(io.BytesIO):
    """A body that ends early, as a dropped connection does."""

    def readinto(self, b) -> int:
        n = super().readinto(b)
        if not n:
            raise ConnectionResetError("connection reset by peer")
        return n


def _resp(status: int, body: bytes, headers: dict | None = None, short: bool = False) -> Response:
    h = {"content-length": str(len(body)), **{k.lower(): v for k, v in (headers or {}).items()}}
    return Response(status, h, _ShortBody(body) if short else io.BytesIO(body))


def _error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return _resp(status, body, {"content-type": "application/json", **(headers or {})})
