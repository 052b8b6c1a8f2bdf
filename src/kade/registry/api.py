"""The distribution API (OCI distribution spec v1.1) over a `Store`.

    GET          /v2/                                   200 {}
    GET          /v2/_catalog?n=&last=                  repositories, paginated
    GET          /v2/<name>/tags/list?n=&last=          tags, paginated
    GET HEAD PUT DELETE /v2/<name>/manifests/<ref>      ref: a tag or a digest
    GET HEAD DELETE     /v2/<name>/blobs/<digest>       GET honours Range
    POST         /v2/<name>/blobs/uploads/              ?digest= (single POST),
                                                        ?mount=&from=, ?mount= alone (any
                                                        repository the caller may pull),
                                                        ?digest-algorithm=
    GET PATCH PUT DELETE /v2/<name>/blobs/uploads/<id>  status, chunk, finish, cancel
    GET          /v2/<name>/referrers/<digest>?artifactType=
    GET POST     <token path>                           token endpoint (when it signs)

Every answer carries `Docker-Distribution-API-Version: registry/2.0`; errors
are the spec's JSON envelope (kade.registry.errcode).
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from kade.oci import mediatypes as mt
from kade.registry import catalog, errcode, names, paths, ranges, uploads
from kade.registry.auth import Access, Open
from kade.registry.errcode import RegistryError
from kade.registry.httpd import Response
from kade.registry.manifests import MAX_MANIFEST_SIZE
from kade.util import fastjson

if TYPE_CHECKING:
    from kade.registry.auth import Authorizer, TokenIssuer
    from kade.registry.httpd import Request
    from kade.registry.store import Store

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_ROUTE = re.compile(
    rf"/v2/(?P<name>{names.NAME})/(?:(?P<kind>manifests|blobs|referrers)/(?P<ref>[^/]+)"
    r"|blobs/uploads/(?P<upload>[^/]*)|(?P<tags>tags/list))")
# the same shapes with any name, to tell NAME_INVALID from an unknown path
_LOOSE = re.compile(r"/v2/(?P<name>.+)/(?:manifests/[^/]+|blobs/.+|referrers/[^/]+|tags/list)")
EMPTY_DIGESTS = {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                 "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2"
                 "b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"}
_READ = ("pull",)
_WRITE = ("pull", "push")
_DELETE = ("delete",)


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _json(status: int, doc, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> Response:
    body = json.dumps(doc).encode()
    return Response(status, {**API_VERSION, "Content-Type": content_type, **(headers or {})},
                    body)


def error_response(e: RegistryError) -> Response:
    return Response(e.status, {**API_VERSION, "Content-Type": "application/json", **e.headers},
                    errcode.body(e))


def _not_allowed(method: str, path: str) -> RegistryError:
    return RegistryError(errcode.UNSUPPORTED, {"method": method, "path": path},
                         message=f"{method} is not supported on {path}")


def _accepts(header: str | None) -> set[str] | None:
    """Media types from Accept headers; None means anything goes."""
    if not header:
        return None
    types = {part.split(";", 1)[0].strip().lower() for part in header.split(",")}
    return None if "*/*" in types or "application/*" in types else types


class RegistryAPI:
    """The request handler: route, authorize, act, answer."""

    def __init__(self, store: "Store", authorizer: "Authorizer | None" = None,
                 token_issuer: "TokenIssuer | None" = None, token_path: str | None = None,
                 log=None):
        self.store = store
        self.authorizer = authorizer or Open()
        self.token_issuer = token_issuer
        self.token_path = token_path
        self.log = log or _log

    def __call__(self, req: "Request") -> Response:
        try:
            return self._dispatch(req)
        except RegistryError as e:
            return error_response(e)
        except OSError as e:
            err = errcode.storage_error(e)
            if err is None:
                raise
            self.log(f"error: {req.method} {req.path}: storage: {err.message}")
            return error_response(err)

    def _dispatch(self, req: "Request") -> Response:
        path, method = req.path, req.method
        m = _ROUTE.fullmatch(path)
        if m is not None:
            return self._repository(req, m)
        if path in ("/v2/", "/v2"):
            if method not in ("GET", "HEAD"):
                raise _not_allowed(method, path)
            self._authorize(req, [])
            return _json(200, {})
        if path == "/v2/_catalog":
            if method != "GET":
                raise _not_allowed(method, path)
            self._authorize(req, [Access("registry", "catalog", ("*",))])
            return self._catalog(req)
        if self.token_issuer is not None and path == self.token_path:
            return self._token(req)
        loose = _LOOSE.fullmatch(path)
        if loose is not None:
            names.validate_name(loose.group("name"))
        return Response(404, {**API_VERSION, "Content-Type": "text/plain"}, b"404 page not found\n")

    def _authorize(self, req: "Request", wanted: list[Access]) -> None:
        self.authorizer.authorize(req.headers.get("authorization"), wanted)

    # -- routing inside a repository

    def _repository(self, req: "Request", m: re.Match) -> Response:
        name, kind, method = m.group("name"), m.group("kind"), req.method
        if len(name) > names.NAME_MAX:
            names.validate_name(name)
        if kind == "blobs" and m.group("ref") == "uploads":
            kind, upload = "uploads", ""
        elif kind is None:
            upload = m.group("upload")
            kind = "tags" if upload is None else "uploads"
        handler = _METHODS[kind].get(method)
        if handler is None or (kind == "uploads" and (method == "POST") != (upload == "")):
            raise _not_allowed(method, req.path)
        if kind == "uploads":
            wanted = [Access("repository", name, _WRITE)]
            source = req.arg("from")
            if method == "POST" and req.arg("mount") and source:
                names.validate_name(source)
                wanted.append(Access("repository", source, _READ))
            self._authorize(req, wanted)
            return handler(self, req, name, upload)
        actions = _READ if method in ("GET", "HEAD") else _DELETE if method == "DELETE" else _WRITE
        self._authorize(req, [Access("repository", name, actions)])
        if kind == "tags":
            return handler(self, req, name)
        return handler(self, req, name, m.group("ref"))

    # -- blobs

    def _blob_head(self, req: "Request", name: str, digest: str) -> Response:
        names.validate_digest(digest)
        size = self.store.blobs.size(name, digest)
        return Response(200, {**API_VERSION, "Content-Type": "application/octet-stream",
                              "Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
                              "ETag": f'"{digest}"'}, length=size)

    def _blob_get(self, req: "Request", name: str, digest: str) -> Response:
        names.validate_digest(digest)
        size = self.store.blobs.size(name, digest)
        headers = {**API_VERSION, "Content-Type": "application/octet-stream",
                   "Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
                   "ETag": f'"{digest}"', "Cache-Control": "max-age=31536000"}
        try:
            span = ranges.parse_range(req.headers.get("range"), size)
        except ranges.Unsatisfiable:
            return Response(416, {**API_VERSION, "Content-Range": f"bytes */{size}"})
        status, start, length = 200, 0, size
        if span is not None:
            status, start, length = 206, span[0], span[1] - span[0] + 1
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        f = self.store.driver.reader(paths.blob_data(digest), start)
        return Response(status, headers, file=f, offset=start, length=length)

    def _blob_delete(self, req: "Request", name: str, digest: str) -> Response:
        names.validate_digest(digest)
        self.store.blobs.unlink(name, digest)
        return Response(202, {**API_VERSION, "Docker-Content-Digest": digest})

    # -- uploads

    def _upload_post(self, req: "Request", name: str, upload: str) -> Response:
        mount, source = req.arg("mount"), req.arg("from")
        if mount:
            names.validate_digest(mount)
            if self.store.blobs.mount(name, source, mount) if source \
                    else self._mount_found(req, name, mount):
                return self._created(name, mount)
        digest = req.arg("digest")
        if digest is not None and (req.body.present or digest in EMPTY_DIGESTS):
            names.validate_digest(digest)
            upload_id = self.store.uploads.start(name, digest.partition(":")[0])
            return self._receive(req, name, upload_id, digest)
        upload_id = self.store.uploads.start(name, req.arg("digest-algorithm") or "sha256")
        return Response(202, {**API_VERSION, **uploads.headers(name, upload_id, 0)})

    def _mount_found(self, req: "Request", name: str, digest: str) -> bool:
        """A mount without `from`, which the spec lets a registry honour when it finds
        the blob: from the first repository holding it that the caller may pull, so
        knowing a digest never yields bytes one could not read anyway."""
        if not self.store.blobs.exists(digest):
            return False
        if self.store.blobs.linked(name, digest):
            return True
        for source in catalog.repositories(self.store.driver, ("_layers",)):
            if source == name or not self.store.blobs.linked(source, digest):
                continue
            try:
                self._authorize(req, [Access("repository", source, _READ)])
            except RegistryError:
                continue
            return self.store.blobs.mount(name, source, digest)
        return False

    def _upload_status(self, req: "Request", name: str, upload: str) -> Response:
        offset = self.store.uploads.offset(name, upload)
        return Response(204, {**API_VERSION, **uploads.headers(name, upload, offset)})

    def _upload_patch(self, req: "Request", name: str, upload: str) -> Response:
        with self.store.uploads.open(name, upload) as up:
            self._append(req, up)
            return Response(202, {**API_VERSION, **up.headers()})

    def _upload_put(self, req: "Request", name: str, upload: str) -> Response:
        digest = req.arg("digest")
        if not digest:
            raise RegistryError(errcode.DIGEST_INVALID, message="a digest query parameter "
                                "is required to finish an upload")
        names.validate_digest(digest)
        return self._receive(req, name, upload, digest)

    def _upload_delete(self, req: "Request", name: str, upload: str) -> Response:
        self.store.uploads.cancel(name, upload)
        return Response(204, dict(API_VERSION))

    def _receive(self, req: "Request", name: str, upload_id: str, digest: str) -> Response:
        with self.store.uploads.open(name, upload_id) as up:
            if req.body.present:
                self._append(req, up)
            up.finish(digest)
        return self._created(name, digest)

    @staticmethod
    def _append(req: "Request", up) -> None:
        header = req.headers.get("content-range")
        length = req.body.length
        if header is not None:
            span = ranges.parse_chunk_range(header)
            if span is None:
                raise RegistryError(errcode.BLOB_UPLOAD_INVALID, {"Content-Range": header},
                                    status=416, message=f'bad Content-Range "{header}"',
                                    headers=up.headers())
            up.check_start(span[0])
            if length is not None and length != span[1] - span[0] + 1:
                raise RegistryError(errcode.SIZE_INVALID, {"Content-Range": header},
                                    status=416, headers=up.headers(),
                                    message=f'Content-Range "{header}" does not match '
                                            f"Content-Length {length}")
        if length:
            up.check_room(length)
        for piece in req.body.pieces():
            up.write(piece)

    def _created(self, name: str, digest: str) -> Response:
        return Response(201, {**API_VERSION, "Location": f"/v2/{name}/blobs/{digest}",
                              "Docker-Content-Digest": digest})

    # -- manifests

    def _manifest_get(self, req: "Request", name: str, ref: str) -> Response:
        manifests = self.store.manifests
        accepted = _accepts(req.headers.get("accept"))
        if req.method == "HEAD" and accepted is None:
            digest, media_type, size = manifests.head(name, ref)
            return Response(200, self._manifest_headers(digest, media_type), length=size)
        m = manifests.get(name, ref)
        if accepted is not None and m.media_type not in accepted:
            m = self._negotiate(name, ref, m, accepted)
        return Response(200, self._manifest_headers(m.digest, m.media_type), m.data)

    @staticmethod
    def _manifest_headers(digest: str, media_type: str) -> dict[str, str]:
        return {**API_VERSION, "Content-Type": media_type, "Docker-Content-Digest": digest,
                "ETag": f'"{digest}"'}

    def _negotiate(self, name: str, ref: str, m, accepted: set[str]):
        """An index the client cannot read: its linux/amd64 manifest, as distribution does."""
        if m.media_type in mt.INDEXES and accepted & mt.MANIFESTS:
            children = fastjson.loads(m.data).get("manifests") or []
            for child in children:
                platform = child.get("platform") or {}
                if platform.get("os") == "linux" and platform.get("architecture") == "amd64" \
                        and child.get("mediaType") in accepted:
                    return self.store.manifests.get(name, child["digest"])
        raise RegistryError(errcode.MANIFEST_UNKNOWN, {"mediaType": m.media_type},
                            message=f'manifest "{ref}" is a {m.media_type}, which the '
                                    "request's Accept header does not allow")

    def _manifest_put(self, req: "Request", name: str, ref: str) -> Response:
        body = req.body
        if body.length is not None and body.length > MAX_MANIFEST_SIZE:
            raise _too_big(body.length)
        data = bytearray()
        for piece in body.pieces():
            data += piece
            if len(data) > MAX_MANIFEST_SIZE:
                raise _too_big(len(data))
        extra = req.query.get("tag", []) if names.is_digest(ref) and req.raw_query else []
        digest, parsed = self.store.manifests.put(name, ref, bytes(data),
                                                  req.headers.get("content-type"), extra)
        headers = {**API_VERSION, "Location": f"/v2/{name}/manifests/{digest}",
                   "Docker-Content-Digest": digest}
        if parsed.subject is not None:
            headers["OCI-Subject"] = parsed.subject["digest"]
        if extra:
            headers["OCI-Tag"] = ", ".join(extra)
        return Response(201, headers)

    def _manifest_delete(self, req: "Request", name: str, ref: str) -> Response:
        self.store.manifests.delete(name, ref)
        return Response(202, dict(API_VERSION))

    # -- listings

    def _tags(self, req: "Request", name: str) -> Response:
        tags = self.store.manifests.tags(name)
        n, last = catalog.parse_n(req.arg("n")), req.arg("last")
        chunk, more = catalog.page(tags, n, last)
        headers = {}
        if more:
            headers["Link"] = (f'</v2/{name}/tags/list?n={n or len(chunk)}&last='
                               f'{quote(chunk[-1])}>; rel="next"')
        return _json(200, {"name": name, "tags": chunk}, headers)

    def _catalog(self, req: "Request") -> Response:
        repos = catalog.repositories(self.store.driver)
        n, last = catalog.parse_n(req.arg("n")), req.arg("last")
        chunk, more = catalog.page(repos, n, last)
        headers = {}
        if more:
            headers["Link"] = (f'</v2/_catalog?n={n or len(chunk)}&last='
                               f'{quote(chunk[-1], safe="")}>; rel="next"')
        return _json(200, {"repositories": chunk}, headers)

    def _referrers(self, req: "Request", name: str, digest: str) -> Response:
        names.validate_digest(digest)
        artifact_type = req.arg("artifactType")
        found = self.store.manifests.referrers(name, digest, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return _json(200, {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found},
                     headers, content_type=mt.OCI_INDEX)

    # -- token endpoint

    def _token(self, req: "Request") -> Response:
        assert self.token_issuer is not None
        if req.method == "GET":
            scopes = req.query.get("scope", [])
            doc = self.token_issuer.issue(req.headers.get("authorization"), scopes)
            return _json(200, doc)
        if req.method != "POST":
            raise _not_allowed(req.method, req.path)
        form = parse_qs(req.body.read(64 << 10).decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant != "password":
            raise RegistryError(errcode.UNSUPPORTED, {"grant_type": grant}, status=400,
                                message=f'unsupported grant_type "{grant}"')
        doc = self.token_issuer.issue(None, form.get("scope", []),
                                      (form.get("username") or [""])[0],
                                      (form.get("password") or [""])[0])
        return _json(200, doc)


def _too_big(size: int) -> RegistryError:
    return RegistryError(errcode.MANIFEST_INVALID, {"size": size}, status=413,
                         message=f"manifest over the limit of {MAX_MANIFEST_SIZE} bytes")


_METHODS: dict[str, dict[str, Any]] = {
    "blobs": {"GET": RegistryAPI._blob_get, "HEAD": RegistryAPI._blob_head,
              "DELETE": RegistryAPI._blob_delete},
    "uploads": {"POST": RegistryAPI._upload_post, "GET": RegistryAPI._upload_status,
                "PATCH": RegistryAPI._upload_patch, "PUT": RegistryAPI._upload_put,
                "DELETE": RegistryAPI._upload_delete},
    "manifests": {"GET": RegistryAPI._manifest_get, "HEAD": RegistryAPI._manifest_get,
                  "PUT": RegistryAPI._manifest_put, "DELETE": RegistryAPI._manifest_delete},
    "referrers": {"GET": RegistryAPI._referrers},
    "tags": {"GET": RegistryAPI._tags},
}
