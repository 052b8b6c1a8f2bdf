"""Build: POST /build (a tar context on the body; the legacy builder's query and
its streamed messages) and POST /build/prune."""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol

from kade.api import progress
from kade.api.router import Context, Route, json_lines, json_response, stream_response
from kade.errors import InvalidArgument, NotImplementedYet
from kade.registry.httpd import Response

Emit = Callable[[dict], None]
_STEP = re.compile(r"^\[(?:\S+ )?(\d+)/(\d+)\] (.*)$", re.S)


class Backend(Protocol):
    def build(self, body, dockerfile: str | None, tags: list[str], options: dict,
              progress: Any) -> str: ...

    def prune(self, all_: bool, until: float | None) -> tuple[list[str], int]: ...


class EngineBackend:
    """`kade build`'s and `kade builder prune`'s engine calls."""

    def __init__(self, engine):
        self.engine = engine

    def build(self, body, dockerfile, tags, options, progress) -> str:
        from kade.engine import build as engine_build
        req = engine_build.BuildRequest("-", dockerfile, tags=tags, stdin=body, **options)
        return engine_build.build(self.engine, req, progress)

    def prune(self, all_, until):
        from kade.engine import prune
        return prune.build_cache(self.engine, all_=all_, until=until)


backend = EngineBackend


def routes() -> list[Route]:
    return [Route("POST", "/build", build), Route("POST", "/build/prune", prune)]


class LegacyProgress:
    """The builder's progress calls as dockerd's legacy builder's stream:
    {"stream": "Step 1/3 : FROM busybox\\n"}, the steps' output, " ---> Using cache"."""

    def __init__(self, emit: Emit, quiet: bool = False):
        self.emit = emit
        self.quiet = quiet
        self.n = 0

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.emit({"stream": text})

    def start(self, name: str) -> int:
        self.n += 1
        m = _STEP.match(name)
        self._say(f"Step {m.group(1)}/{m.group(2)} : {m.group(3)}\n" if m else f"{name}\n")
        return self.n

    def log(self, v: int, data: bytes) -> None:
        self._say(data.decode(errors="replace"))

    def cached(self, v: int) -> None:
        self._say(" ---> Using cache\n")

    def done(self, v: int) -> None:
        pass

    def error(self, v: int, message: str) -> None:
        pass  # the build's exception ends the stream with docker's errorDetail

    def warn(self, message: str) -> None:
        self._say(f"[Warning] {message}\n")

    def close(self) -> None:
        pass


def _finish(image_id: str, tags: list[str], quiet: bool) -> list[dict]:
    from kade.oci import reference
    out: list[dict] = [{"aux": {"ID": image_id}}]
    if quiet:
        return out + [{"stream": image_id + "\n"}]
    out.append({"stream": f"Successfully built {image_id[7:19]}\n"})
    out += [{"stream": f"Successfully tagged {reference.parse(t).familiar()}\n"} for t in tags]
    return out


def build(ctx: Context) -> Response:
    if ctx.query("remote"):
        raise NotImplementedYet("remote build contexts (git, URLs) are not supported; send "
                                "the context as a tar body")
    tags = ctx.req.query.get("t", []) if ctx.req.raw_query else []
    options = _options(ctx)
    quiet = ctx.query_bool("q")
    body = progress.body_file(ctx)
    b: Backend = ctx.backend

    def work(emit: Emit) -> str:
        from kade.build.backend import StepFailed
        try:
            return b.build(body, ctx.query("dockerfile") or None, list(tags), options,
                           LegacyProgress(emit, quiet))
        except StepFailed as e:  # the legacy builder's last words, and the step's code
            raise StepFailed(f"The command '{e.command}' returned a non-zero code: "
                             f"{e.code}", e.code, e.command) from None
    msgs = progress.messages(work, lambda image_id: _finish(image_id, list(tags), quiet))
    return stream_response(json_lines(msgs))


def _options(ctx: Context) -> dict:
    network = ctx.query("networkmode") or "default"
    if network not in ("default", "none", "host", "bridge"):
        raise InvalidArgument(f'network mode "{network}" not supported by kade build: use '
                              "default, none or host")
    return {"build_args": _str_map(ctx, "buildargs"), "labels": _str_map(ctx, "labels"),
            "target": ctx.query("target") or None, "no_cache": ctx.query_bool("nocache"),
            "pull": ctx.query_bool("pull"), "cache_from": _str_list(ctx, "cachefrom"),
            "network": network, "secrets": {}, "platform": ctx.query("platform") or None}


def _str_map(ctx: Context, name: str) -> dict[str, str]:
    value = ctx.query_json(name) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name}: a JSON object is required")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _str_list(ctx: Context, name: str) -> list[str]:
    value = ctx.query_json(name) or []
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid {name}: a JSON array is required")
    return [str(v) for v in value]


def prune(ctx: Context) -> Response:
    until = None
    for key, values in ctx.filters().items():
        if key not in ("until", "unused-for"):
            raise InvalidArgument(f'invalid filter "{key}": build prune takes until=')
        from kade.util.units import parse_timestamp
        until = parse_timestamp(values[-1])
    b: Backend = ctx.backend
    removed, space = b.prune(ctx.query_bool("all"), until)
    return json_response({"CachesDeleted": removed, "SpaceReclaimed": space})
