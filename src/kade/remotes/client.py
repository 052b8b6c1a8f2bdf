"""The distribution API of one repository: manifests, blobs, uploads, tags.

    session = Session(Hosts.load(root), DockerConfig())
    repo = session.repository(reference.parse("localhost:5000/app"))
    data, media_type, digest = repo.get_manifest("latest")
    with repo.open_blob(layer_digest) as body: ...
    repo.put_manifest("latest", data, media_type)

Every request carries the Authorization the Authorizer knows for the
repository's scopes and is sent once more after a 401 that taught it
something. GET and HEAD are retried on 429 and 5xx with a short backoff
(Retry-After is honoured up to a bound). Reads go to the mirrors first and
fall back, in order, to the registry itself. Redirects (blob storage) are
followed without the registry's Authorization.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO

from kade.errors import InvalidArgument, NotFound, Unavailable
from kade.oci import digest as dg
from kade.oci.reference import Reference
from kade.remotes import errcode
from kade.remotes.auth import Authorizer, Credential
from kade.remotes.hosts import Endpoint, Hosts
from kade.remotes.transport import HTTPTransport, Response, TLSError, Transport, TransportError
from kade.util import fastjson

MAX_MANIFEST = 4 << 20  # bytes; distribution and containerd refuse bigger manifests too
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
RETRY_DELAYS = (0.5, 1.5)  # seconds before the 2nd and 3rd attempt of a GET or HEAD
MAX_RETRY_AFTER = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "kade/0.1"


class Session:
    """What every repository of one command shares: hosts, credentials, transport,
    tokens. Safe to use from several threads."""

    def __init__(self, hosts: Hosts | None = None,
                 credentials: Callable[[str], Credential | None] | None = None,
                 transport: Transport | None = None, *,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS):
        self.hosts = hosts or Hosts()
        self.credentials = credentials or (lambda host: None)
        self.transport = transport or HTTPTransport()
        self.retry_delays = retry_delays
        self.auth = Authorizer(self.transport, self._credential_for, USER_AGENT)
        self._endpoint_hosts: dict[str, str] = {}  # endpoint host -> registry domain

    def _credential_for(self, host: str) -> Credential | None:
        return self.credentials(self._endpoint_hosts.get(host, host))

    def repository(self, ref: Reference, *, push: bool = False) -> "Repository":
        endpoints = self.hosts.endpoints(ref.domain, push=push)
        for ep in endpoints:
            if not ep.mirror:
                self._endpoint_hosts[ep.host] = ref.domain
        return Repository(self, ref.domain, ref.path, endpoints, push=push)

    def ping(self, domain: str) -> None:
        """GET /v2/ with credentials: what `login` checks."""
        repo = Repository(self, domain, "", self.hosts.endpoints(domain, push=True), push=True)
        self._endpoint_hosts[repo.endpoints[-1].host] = domain
        with repo.request("GET", "/v2/", what=f"login to {domain}", scopes=()):
            pass

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close:
            close()


class Repository:
    """One repository (`path`, e.g. library/busybox) of one registry."""

    def __init__(self, session: Session, domain: str, path: str, endpoints: list[Endpoint],
                 *, push: bool = False):
        self.session = session
        self.domain = domain
        self.path = path
        self.endpoints = endpoints
        self.scopes = (f"repository:{path}:pull,push" if push else f"repository:{path}:pull",)

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    # --- manifests -------------------------------------------------------------
    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest by tag or digest, verified."""
        what = f"manifest for {self.name}{'@' if ':' in reference else ':'}{reference}"
        with self.request("GET", f"/v2/{self.path}/manifests/{reference}", what=what,
                          headers={"Accept": MANIFEST_ACCEPT}) as resp:
            data = _read_bounded(resp, MAX_MANIFEST, what)
            media_type = resp.headers.get("content-type", "").split(";")[0].strip()
            header_digest = resp.headers.get("docker-content-digest")
        return data, media_type, _verified_digest(data, reference, header_digest, what)

    def head_manifest(self, reference: str) -> str | None:
        """The digest a tag points to, or None when the registry does not have it."""
        try:
            with self.request("HEAD", f"/v2/{self.path}/manifests/{reference}",
                              what=f"manifest {reference}",
                              headers={"Accept": MANIFEST_ACCEPT}) as resp:
                return resp.headers.get("docker-content-digest")
        except NotFound:
            return None

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        if len(data) > MAX_MANIFEST:
            raise InvalidArgument(f"manifest of {len(data)} bytes is over the 4 MiB limit")
        with self.request("PUT", f"/v2/{self.path}/manifests/{reference}", body=data,
                          headers={"Content-Type": media_type},
                          what=f"put manifest {self.name}:{reference}", push=True,
                          ok=(200, 201, 202)) as resp:
            given = resp.headers.get("docker-content-digest")
        mine = dg.of_bytes(data)
        return given if given and given.startswith("sha512:") else mine

    def tags(self) -> list[str]:
        out: list[str] = []
        path: str | None = f"/v2/{self.path}/tags/list?n=1000"
        while path:
            with self.request("GET", path, what=f"tags of {self.name}") as resp:
                doc = _json(_read_bounded(resp, MAX_MANIFEST, "tags list"), "tags list")
                link = resp.headers.get("link", "")
            out += [t for t in (doc.get("tags") or []) if isinstance(t, str)]
            path = _next_link(link)
        return out

    # --- blobs -----------------------------------------------------------------
    def open_blob(self, digest: str, offset: int = 0) -> Response:
        """A blob's body from offset (a 206 answer) or from 0 (a 200 answer)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.request("GET", f"/v2/{self.path}/blobs/{digest}", headers=headers,
                            what=f"blob {digest}", ok=(200, 206))

    def blob_exists(self, digest: str) -> bool:
        try:
            with self.request("HEAD", f"/v2/{self.path}/blobs/{digest}", what=f"blob {digest}",
                              push=True):
                return True
        except NotFound:
            return False

    def mount_blob(self, digest: str, source_path: str) -> str | None:
        """Cross-repository mount: None when mounted, else the upload URL to use."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_path})
        scopes = self.scopes + (f"repository:{source_path}:pull",)
        with self.request("POST", f"/v2/{self.path}/blobs/uploads/?{query}", body=b"",
                          what=f"mount {digest}", ok=(201, 202), push=True,
                          scopes=scopes) as resp:
            if resp.status == 201:
                return None
            return resp.headers.get("location")

    def upload_blob(self, body: BinaryIO | bytes, digest: str, size: int,
                    location: str | None = None) -> None:
        """A monolithic upload: POST for a location (unless given), then PUT the bytes."""
        if location is None:
            with self.request("POST", f"/v2/{self.path}/blobs/uploads/", body=b"",
                              what=f"upload {digest}", ok=(202,), push=True) as resp:
                location = resp.headers.get("location")
        if not location:
            raise Unavailable(f"the registry gave no upload location for {self.name}")
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}{urllib.parse.urlencode({'digest': digest})}"
        with self.request("PUT", url, body=body, what=f"upload {digest}", ok=(201, 204),
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Length": str(size)}, push=True):
            pass

    # --- the request loop ------------------------------------------------------
    def request(self, method: str, path_or_url: str, *, what: str,
                headers: dict | None = None, body: BinaryIO | bytes | None = None,
                ok: tuple[int, ...] = (200,), push: bool = False,
                scopes: tuple[str, ...] | None = None) -> Response:
        """Send to the first endpoint that answers well; raise the registry's error."""
        endpoints = [e for e in self.endpoints if not (push and e.mirror) and not e.dead]
        last: Exception | None = None
        for ep in endpoints:
            try:
                return self._at(ep, method, path_or_url, what, headers or {}, body, ok,
                                self.scopes if scopes is None else scopes)
            except (TransportError, errcode.RegistryError) as e:
                if not ep.mirror:
                    raise
                if isinstance(e, TransportError):
                    ep.dead = True
                last = e
        raise last or Unavailable(f"{what}: no endpoint to ask")

    def _at(self, ep: Endpoint, method, path_or_url, what, headers, body, ok, scopes) -> Response:
        attempt = 0
        while True:
            resp = self._authorized(ep, method, path_or_url, headers, body, scopes)
            if resp.status in ok:
                return resp
            if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers \
                    and method in ("GET", "HEAD"):  # blob storage; never a body to resend
                resp.close()
                return self._redirected(resp.headers["location"], ep, method, headers, what, ok)
            delay = self._retry_delay(resp, method, attempt)
            if delay is None:
                raise self._error(resp, what)
            resp.close()
            time.sleep(delay)
            attempt += 1

    def _authorized(self, ep: Endpoint, method, path_or_url, headers, body, scopes) -> Response:
        url = path_or_url if "://" in path_or_url else ep.base + path_or_url
        sent = self.session.auth.header(ep.host, scopes)
        resp = self._send(ep, method, url, headers, body, sent)
        if resp.status != 401:
            return resp
        retry = self.session.auth.challenged(ep.host, resp.headers.get("www-authenticate", ""),
                                             scopes, sent)
        if retry is None:
            return resp
        resp.close()
        _rewind(body)
        return self._send(ep, method, url, headers, body, retry)

    def _send(self, ep: Endpoint, method, url, headers, body, authorization) -> Response:
        h = {"User-Agent": USER_AGENT, **headers}
        if authorization:
            h["Authorization"] = authorization
        try:
            return self.session.transport.request(method, url, h, body)
        except TLSError:
            if not (ep.can_fall_back() or ep.scheme == "http" and url.startswith("https:")):
                raise  # (the second case: another thread has just fallen back)
            ep.scheme = "http"  # an insecure registry without TLS, as docker allows
            _rewind(body)
            url = "http://" + url.split("://", 1)[1]
            return self.session.transport.request(method, url, h, body)

    def _redirected(self, location, ep, method, headers, what, ok) -> Response:
        for _ in range(MAX_REDIRECTS):
            if "://" not in location:
                location = ep.base + location
            h = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            resp = self.session.transport.request(method, location, {"User-Agent": USER_AGENT,
                                                                      **h})
            if resp.status in ok:
                return resp
            if resp.status not in (301, 302, 303, 307, 308) or "location" not in resp.headers:
                raise self._error(resp, what)
            location = resp.headers["location"]
            resp.close()
        raise Unavailable(f"{what}: too many redirects")

    def _retry_delay(self, resp: Response, method: str, attempt: int) -> float | None:
        if method not in ("GET", "HEAD") or attempt >= len(self.session.retry_delays):
            return None
        if resp.status != 429 and resp.status < 500:
            return None
        delay = self.session.retry_delays[attempt]
        after = resp.headers.get("retry-after", "")
        if after.isdigit() and delay:
            delay = min(max(delay, float(after)), MAX_RETRY_AFTER)
        return delay

    def _error(self, resp: Response, what: str) -> Exception:
        try:
            body = resp.read(1 << 16) if resp.status != 204 else b""
        except (OSError, ValueError):
            body = b""
        finally:
            resp.close()
        return errcode.from_response(resp.status, resp.reason, body, what)


def _rewind(body) -> None:
    if body is not None and not isinstance(body, bytes) and hasattr(body, "seek"):
        body.seek(0)


def _read_bounded(resp: Response, limit: int, what: str) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        resp.close()
        raise InvalidArgument(f"{what}: {declared} bytes is over the {limit >> 20} MiB limit")
    chunks, size = [], 0
    while chunk := resp.read(min(1 << 20, limit + 1 - size) or 1):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise InvalidArgument(f"{what}: more than the {limit >> 20} MiB limit")
    data = b"".join(chunks)
    if declared.isdigit() and len(data) != int(declared):
        raise Unavailable(f"{what}: truncated: got {len(data)} of {declared} bytes")
    return data


def _verified_digest(data: bytes, reference: str, header: str | None, what: str) -> str:
    """The manifest's digest; it must match a digest reference and the registry's header."""
    if ":" in reference:  # a digest; tags have no colon
        algo = reference.partition(":")[0]
        if algo not in ("sha256", "sha512"):
            raise InvalidArgument(f'{what}: unsupported digest algorithm "{algo}"')
        got = dg.of_bytes(data, algo)
        if got != reference:
            raise InvalidArgument(f"{what}: digest mismatch: the registry sent content whose "
                                  f'digest is "{got}"')
        return reference
    got = dg.of_bytes(data)
    if header and header.startswith(("sha256:", "sha512:")):
        mine = dg.of_bytes(data, header.partition(":")[0])
        if mine != header:
            raise InvalidArgument(f'{what}: digest mismatch: the registry says "{header}", '
                                  f'the content is "{mine}"')
    return got


def _json(data: bytes, what: str) -> dict:
    try:
        doc = fastjson.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"{what} is not valid json: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what} is not a json object")
    return doc


def _next_link(link: str) -> str | None:
    """RFC 5988 `Link: </v2/x/tags/list?last=a&n=2>; rel="next"`."""
    if 'rel="next"' not in link:
        return None
    start, end = link.find("<"), link.find(">")
    return link[start + 1:end] if 0 <= start < end else None
