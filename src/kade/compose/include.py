"""`include:`: other compose projects loaded on their own (their paths relative to
their own directory, their own .env) and added to this one. A resource defined
both here and there, differently, is an error; a file including itself again is
a cycle."""

from __future__ import annotations

import os

from kade.compose import dotenv
from kade.errors import InvalidArgument

_KINDS = ("services", "networks", "volumes", "secrets", "configs")


def apply(doc: dict, path: str, ctx) -> None:
    entries = doc.pop("include", None)
    if not isinstance(entries, list):
        return
    from kade.compose.loader import _Context, _read, load_model
    here = os.path.dirname(path) if path != "-" else ctx.working_dir
    for i, entry in enumerate(entries):
        entry = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "path" not in entry:
            raise InvalidArgument(f"validating {path}: include.{i} must be a string or "
                                  "a mapping with a path")
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        paths = [os.path.normpath(os.path.join(here, p)) for p in paths]
        for p in paths:
            if p in ctx.chain or p == path:
                chain = " include ".join([*ctx.chain, path, p])
                raise InvalidArgument(f"include cycle detected: {chain}")
        project_dir = os.path.normpath(os.path.join(
            here, entry.get("project_directory") or os.path.dirname(paths[0])))
        env = _environment(entry, here, project_dir, ctx)
        sub = _Context(ctx.opts, env, project_dir, ctx.chain + (path,))
        _add(doc, load_model([(p, _read(p, ctx.opts)) for p in paths], sub), paths[0])


def _environment(entry: dict, here: str, project_dir: str, ctx) -> dict:
    files = entry.get("env_file")
    files = [files] if isinstance(files, str) else list(files or [])
    files = [os.path.join(here, f) for f in files]
    default = os.path.join(project_dir, ".env")
    if not files and os.path.isfile(default):
        files = [default]
    values: dict = {}
    for f in files:
        values.update(dotenv.read(f, lambda k: ctx.opts.environ.get(k, values.get(k))))
    return {**ctx.env, **values, **ctx.opts.environ}


def _add(doc: dict, sub: dict, source: str) -> None:
    for kind in _KINDS:
        theirs = sub.get(kind) or {}
        if not theirs:
            continue
        ours = doc.get(kind)
        if not isinstance(ours, dict):
            ours = doc[kind] = {}
        for name, value in theirs.items():
            if name in ours and ours[name] != value:
                singular = kind[:-1]
                raise InvalidArgument(f"imported compose file {source} defines conflicting "
                                      f"{singular} {name}")
            ours[name] = value
