"""Volumes: list, create, inspect, remove, prune (the CLI's `volume` verbs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from kade.api.router import Context, Route, json_response, no_content
from kade.errors import InvalidArgument
from kade.registry.httpd import Response

if TYPE_CHECKING:
    from kade.engine.listing import VolumeSummary


class Backend(Protocol):
    def list_volumes(self, filters: dict | None = None) -> list[VolumeSummary]: ...

    def create(self, name: str | None, labels: dict, driver: str, options: dict) -> dict: ...

    def get(self, name: str) -> dict: ...

    def remove(self, name: str, force: bool = False) -> None: ...

    def prune(self, all_: bool, match: Callable | None) -> tuple[list[str], int]: ...


class EngineBackend:
    """`kade volume`'s calls: Engine.list_volumes and the engine's VolumeService."""

    def __init__(self, engine):
        self.list_volumes = engine.list_volumes
        vols = engine.volumes
        self.create = vols.create
        self.get = vols.get
        self.remove = vols.remove
        self.prune = vols.prune


backend = EngineBackend


def routes() -> list[Route]:
    return [
        Route("GET", "/volumes", list_),
        Route("POST", "/volumes/create", create),
        Route("POST", "/volumes/prune", prune),
        Route("GET", "/volumes/{name}", inspect),
        Route("DELETE", "/volumes/{name}", remove),
    ]


def list_(ctx: Context) -> Response:
    b: Backend = ctx.backend
    vols = [b.get(v.name) for v in b.list_volumes(ctx.filters())]
    return json_response({"Volumes": vols, "Warnings": []})


def create(ctx: Context) -> Response:
    body = ctx.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("volume create: the body must be a JSON object")
    b: Backend = ctx.backend
    rec = b.create(body.get("Name") or None, _str_map(body, "Labels"),
                   body.get("Driver") or "local", _str_map(body, "DriverOpts"))
    return json_response(rec, status=201)


def _str_map(body: dict, key: str) -> dict:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"volume create: {key} must be an object")
    return {str(k): str(v) for k, v in value.items()}


def inspect(ctx: Context) -> Response:
    b: Backend = ctx.backend
    return json_response(b.get(ctx.params["name"]))


def remove(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.remove(ctx.params["name"], ctx.query_bool("force"))
    return no_content()


def prune(ctx: Context) -> Response:
    """API >= 1.42 prunes anonymous volumes only, unless the filter all=true;
    older clients meant every unused volume (dockerd's versioned default)."""
    filters = ctx.filters()
    all_values = filters.pop("all", [])
    all_ = not ctx.at_least(1, 42)
    if all_values:
        all_ = all_values[-1].strip().lower() in ("1", "true")
    match = None
    if filters:
        from kade.engine.prune import Filter
        raw = [f"{k}={v}" for k, values in filters.items() for v in values]
        match = Filter(raw, allowed=("label", "label!")).matches
    b: Backend = ctx.backend
    removed, space = b.prune(all_, match)
    return json_response({"VolumesDeleted": removed, "SpaceReclaimed": space})
