"""Images: list, inspect, history, tag, remove, prune, pull and import (create), push,
save (get), load, commit, search, distribution."""

from __future__ import annotations

from typing import Iterator

from kade.api import progress
from kade.api.router import (Context, Route, json_lines, json_response, stream_response)
from kade.api.routers.images_backend import Backend, EngineBackend
from kade.errors import InvalidArgument, NotImplementedYet
from kade.registry.httpd import Response

__all__ = ["Backend", "backend", "routes"]
backend = EngineBackend


def routes() -> list[Route]:
    return [
        Route("GET", "/images/json", list_),
        Route("POST", "/images/create", create),
        Route("POST", "/images/load", load),
        Route("POST", "/images/prune", prune),
        Route("GET", "/images/search", search),
        Route("GET", "/images/get", save),
        Route("POST", "/commit", commit),
        Route("GET", "/distribution/{name:.*}/json", distribution),
        Route("GET", "/images/{name:.*}/json", inspect),
        Route("GET", "/images/{name:.*}/history", history),
        Route("GET", "/images/{name:.*}/get", save_one),
        Route("POST", "/images/{name:.*}/tag", tag),
        Route("POST", "/images/{name:.*}/push", push),
        Route("DELETE", "/images/{name:.*}", remove),
    ]


def list_(ctx: Context) -> Response:
    filters = ctx.filters()
    if ctx.query("filter"):  # API < 1.41's single reference filter
        filters.setdefault("reference", []).append(ctx.query("filter") or "")
    b: Backend = ctx.backend
    return json_response([_summary(b, img)
                          for img in b.list_images(all=ctx.query_bool("all"),
                                                   filters=filters)])


def _summary(b: Backend, img) -> dict:
    from kade.oci import reference
    tags = [reference.parse_stored(t).familiar() for t in img.repo_tags]
    digests = [f"{reference.parse_stored(repo).familiar_name()}@{d}"
               for repo, d in img.repo_digests.items()]
    return {"Id": img.id, "ParentId": "", "RepoTags": tags, "RepoDigests": digests,
            "Created": int(img.created), "Size": img.size, "SharedSize": -1,
            "VirtualSize": img.size, "Labels": b.labels(img.id), "Containers": -1}


def inspect(ctx: Context) -> Response:
    b: Backend = ctx.backend
    return json_response(b.inspect(ctx.params["name"]))


def history(ctx: Context) -> Response:
    b: Backend = ctx.backend
    return json_response(b.history(ctx.params["name"]))


def tag(ctx: Context) -> Response:
    repo = ctx.query("repo")
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    target = f"{repo}:{ctx.query('tag')}" if ctx.query("tag") else repo
    b: Backend = ctx.backend
    b.tag(ctx.params["name"], target)
    return Response(201)


def remove(ctx: Context) -> Response:
    """noprune: kade never deletes untagged parents apart from the image's own
    layers, so there is nothing more to keep."""
    b: Backend = ctx.backend
    out = b.remove(ctx.params["name"], ctx.query_bool("force"))
    return json_response([{kind: value} for kind, value in out])


def prune(ctx: Context) -> Response:
    filters = ctx.filters()
    dangling = filters.pop("dangling", ["true"])
    all_ = dangling[-1].strip().lower() in ("0", "false")
    raw = [f"{k}={v}" for k, values in filters.items() for v in values]
    b: Backend = ctx.backend
    out, space = b.prune(all_, raw)
    return json_response({"ImagesDeleted": [{kind: value} for kind, value in out] or None,
                          "SpaceReclaimed": space})


# --- pull, import, push: docker's progress streams --------------------------------
def create(ctx: Context) -> Response:
    if ctx.query("fromSrc") is not None:
        return _import(ctx)
    image = ctx.query("fromImage")
    if not image:
        raise InvalidArgument("fromImage or fromSrc is required")
    tag = ctx.query("tag") or ""
    if tag:
        image = f"{image}@{tag}" if ":" in tag else f"{image}:{tag}"
    creds = progress.registry_credentials(ctx.header("X-Registry-Auth"))
    b: Backend = ctx.backend
    platform = ctx.query("platform") or None
    msgs = progress.messages(lambda emit: b.pull(image, platform, emit, creds))
    return stream_response(json_lines(msgs))


def _import(ctx: Context) -> Response:
    if ctx.query("fromSrc") != "-":
        raise NotImplementedYet("importing from a URL is not supported yet; "
                                "send the archive as the body (fromSrc=-)")
    repo = ctx.query("repo") or None
    if repo and ctx.query("tag"):
        repo = f"{repo}:{ctx.query('tag')}"
    changes = ctx.req.query.get("changes", []) if ctx.req.raw_query else []
    b: Backend = ctx.backend
    image_id = b.import_(progress.body_file(ctx), repo, list(changes),
                         ctx.query("message") or "")
    return stream_response(json_lines(iter([{"status": image_id}])))


def push(ctx: Context) -> Response:
    name = ctx.params["name"]
    tag = ctx.query("tag") or ""
    ref = f"{name}:{tag}" if tag else name
    creds = progress.registry_credentials(ctx.header("X-Registry-Auth"))
    b: Backend = ctx.backend

    def done(results) -> list[dict]:
        return [{"progressDetail": {}, "aux": {"Tag": r.tag, "Digest": r.digest,
                                               "Size": r.size}} for r in results]
    msgs = progress.messages(lambda emit: b.push(ref, not tag, emit, creds), done)
    return stream_response(json_lines(msgs))


# --- save, load, commit ------------------------------------------------------------
def save(ctx: Context) -> Response:
    names = ctx.req.query.get("names", []) if ctx.req.raw_query else []
    if not names:
        raise InvalidArgument("no image names given (names=...)")
    return _tarball(ctx, list(names))


def save_one(ctx: Context) -> Response:
    return _tarball(ctx, [ctx.params["name"]])


def _tarball(ctx: Context, names: list[str]) -> Response:
    b: Backend = ctx.backend
    f = b.save(names)
    return stream_response(_chunks(f), "application/x-tar")


def _chunks(f) -> Iterator[bytes]:
    try:
        while True:
            data = f.read(1 << 20)
            if not data:
                return
            yield data
    finally:
        f.close()


def load(ctx: Context) -> Response:
    b: Backend = ctx.backend
    lines = b.load(progress.body_file(ctx))  # quiet hides progress bars: there are none
    return stream_response(json_lines(iter([{"stream": line + "\n"} for line in lines])))


def commit(ctx: Context) -> Response:
    """The body, a container config, carries the changes docker's CLI sends as
    `changes` query values; kade applies those (the config's other fields are the
    container's own)."""
    container = ctx.query("container")
    if not container:
        raise InvalidArgument("a container is required (container=...)")
    ctx.json(default={})
    repo = ctx.query("repo") or None
    if repo and ctx.query("tag"):
        repo = f"{repo}:{ctx.query('tag')}"
    changes = ctx.req.query.get("changes", []) if ctx.req.raw_query else []
    b: Backend = ctx.backend
    image_id = b.commit(container, repo, list(changes), ctx.query("comment") or "",
                        ctx.query("author") or "", ctx.query_bool("pause", True))
    return json_response({"Id": image_id}, status=201)


def search(ctx: Context) -> Response:
    raise NotImplementedYet("search is not supported: kade talks to registries through "
                            "the distribution API, which has no search")


def distribution(ctx: Context) -> Response:
    creds = progress.registry_credentials(ctx.header("X-Registry-Auth"))
    b: Backend = ctx.backend
    return json_response(b.distribution(ctx.params["name"], creds))
