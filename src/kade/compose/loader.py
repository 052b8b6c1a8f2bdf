"""From compose files to a Project: the pipeline drawn in kade.compose's docstring."""

from __future__ import annotations

import os
import sys

from kade.compose import canonical, checks, dotenv, files, merge, schema
from kade.compose.interpolate import interpolate
from kade.compose.model import Project
from kade.compose.yamlfile import parse
from kade.errors import InvalidArgument

RESOURCES = ("networks", "volumes", "secrets", "configs")


class Options:
    """What `kade compose`'s global flags say. `environ` defaults to os.environ."""

    def __init__(self, files: list[str] | None = None, project_name: str | None = None,
                 project_directory: str | None = None, env_files: list[str] | None = None,
                 profiles: list[str] | None = None, interpolate: bool = True,
                 environ: dict[str, str] | None = None, cwd: str | None = None,
                 stdin=None, services: list[str] | None = None):
        self.files = list(files or [])
        self.project_name = project_name
        self.project_directory = project_directory
        self.env_files = list(env_files or [])
        self.profiles = list(profiles or [])
        self.interpolate = interpolate
        self.environ = dict(os.environ if environ is None else environ)
        self.cwd = cwd or os.getcwd()
        self.stdin = stdin
        self.services = list(services or [])
        self.warnings: list[str] = []


class _Context:
    """One load: the environment for interpolation, the working directory that relative
    paths start from, and the files already being read (for include cycles)."""

    def __init__(self, opts: Options, env: dict[str, str], working_dir: str, chain=()):
        self.opts, self.env, self.working_dir, self.chain = opts, env, working_dir, chain

    def lookup(self, name: str):
        return self.env.get(name)

    def warn(self, message: str) -> None:
        if message not in self.opts.warnings:
            self.opts.warnings.append(message)


def load(opts: Options) -> Project:
    paths = _config_paths(opts)
    working_dir = os.path.abspath(os.path.join(opts.cwd, opts.project_directory or (
        os.path.dirname(paths[0]) if paths[0] != "-" else ".")))
    env = _environment(opts, working_dir)
    texts = [(p, _read(p, opts)) for p in paths]
    name = _project_name(opts, env, texts, working_dir)
    env["COMPOSE_PROJECT_NAME"] = name
    ctx = _Context(opts, env, working_dir)
    model = load_model(texts, ctx)
    where = ", ".join(p if p != "-" else "(stdin)" for p in paths)
    if not model:
        raise InvalidArgument(f"{where}: empty compose file")
    return _project(model, name, ctx, paths, where)


def _config_paths(opts: Options) -> list[str]:
    if opts.files:
        return [f if f == "-" else os.path.abspath(os.path.join(opts.cwd, f))
                for f in opts.files]
    listed = opts.environ.get("COMPOSE_FILE")
    if listed:
        sep = opts.environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        return [os.path.abspath(os.path.join(opts.cwd, f)) for f in listed.split(sep) if f]
    return files.find(opts.project_directory or opts.cwd)


def _read(path: str, opts: Options) -> str:
    if path == "-":
        stream = opts.stdin or sys.stdin
        return stream.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise InvalidArgument(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise InvalidArgument(f"read {path}: is a directory") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"failed to parse {path}: yaml: invalid UTF-8") from None


def _environment(opts: Options, working_dir: str) -> dict[str, str]:
    """The .env file (or --env-file files), under the process environment, which wins."""
    env: dict[str, str] = {}
    paths = [os.path.join(opts.cwd, p) for p in opts.env_files]
    if not paths and os.path.isfile(os.path.join(working_dir, ".env")):
        paths = [os.path.join(working_dir, ".env")]
    for path in paths:
        env.update(dotenv.read(path, lambda k: opts.environ.get(k, env.get(k))))
    env.update(opts.environ)
    return env


def _project_name(opts: Options, env: dict, texts: list, working_dir: str) -> str:
    if opts.project_name:
        return files.check_name(opts.project_name)
    if env.get("COMPOSE_PROJECT_NAME"):
        return files.check_name(env["COMPOSE_PROJECT_NAME"])
    declared = ""
    for path, text in texts:
        for doc in parse(text, path):
            if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"]:
                declared = doc["name"]
    if declared and opts.interpolate:
        declared = interpolate({"name": declared}, env.get, texts[0][0])["name"]
    source = declared or os.path.basename(working_dir)
    name = files.normalize_name(source)
    if not name:
        raise InvalidArgument(f"project name must not be empty: \"{source}\" has no "
                              "lowercase letter, digit, dash or underscore to keep")
    return name


# -- files to one canonical mapping -------------------------------------------------

def load_model(texts: list, ctx: _Context) -> dict:
    """Each file's documents, interpolated, with their includes and extends applied,
    merged onto the ones before, validated and made canonical."""
    model: dict = {}
    for path, text in texts:
        for doc in parse(text, path):
            model = _add_document(model, doc, path, ctx)
    return model


def _add_document(model: dict, doc, path: str, ctx: _Context) -> dict:
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: top-level object must be a mapping")
    bad = next((k for k in doc if not isinstance(k, str)), None)
    if bad is not None:
        raise InvalidArgument(f"{path}: non-string key in top level: {bad}")
    if ctx.opts.interpolate:
        doc = interpolate(doc, ctx.lookup, path, ctx.warn)
    from kade.compose import include
    include.apply(doc, path, ctx)
    _apply_extends(doc, path, ctx)
    model = merge.enforce_unicity(merge.merge(model, doc))
    failure = schema.validate(model)
    if failure:
        raise InvalidArgument(f"validating {path}: {failure}")
    model.pop("version", None)
    return merge.enforce_unicity(_canonical(model, path, ctx))


def _canonical(model: dict, where: str, ctx: _Context) -> dict:
    services = model.get("services") or {}
    model["services"] = {n: canonical.service(n, s or {}, ctx.working_dir, ctx.lookup, where)
                         for n, s in services.items()}
    return model


# -- extends ------------------------------------------------------------------------

def _apply_extends(doc: dict, path: str, ctx: _Context) -> None:
    services = doc.get("services")
    if not isinstance(services, dict):
        return
    for name in list(services):
        services[name] = _extended(name, services, path, ctx, ())


def _extended(name: str, services: dict, path: str, ctx: _Context, chain: tuple) -> dict:
    svc = services[name]
    if not isinstance(svc, dict) or "extends" not in svc:
        return svc
    ext = svc["extends"]
    ext = {"service": ext} if isinstance(ext, str) else ext
    if not isinstance(ext, dict) or not isinstance(ext.get("service"), str):
        return svc  # the schema names what is wrong with it
    if (path, name) in chain:
        cycle = " -> ".join(f"{n}" for _, n in chain + ((path, name),))
        raise InvalidArgument(f"{path}: services.{name}.extends: circular reference: {cycle}")
    base_services, base_path = services, path
    if ext.get("file"):
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), ext["file"]))
        base_services = _services_of(base_path, ctx)
    target = ext["service"]
    if target not in base_services:
        raise InvalidArgument(f"{path}: services.{name}.extends: cannot extend service "
                              f"\"{name}\": service \"{target}\" not found in {base_path}")
    base = _extended(target, base_services, base_path, ctx, chain + ((path, name),))
    if base_path != path:  # its relative paths are relative to its own file
        base = canonical.service(target, base or {}, os.path.dirname(base_path),
                                 ctx.lookup, base_path)
    own = {k: v for k, v in svc.items() if k != "extends"}
    return merge.merge(merge.strip(base or {}), own, ("services", name))


def _services_of(path: str, ctx: _Context) -> dict:
    docs = parse(_read(path, ctx.opts), path)
    services: dict = {}
    for doc in docs:
        if ctx.opts.interpolate:
            doc = interpolate(doc, ctx.lookup, path, ctx.warn)
        if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
            services.update(doc["services"])
    return services


# -- the project ------------------------------------------------------------------

def _project(model: dict, name: str, ctx: _Context, paths: list[str], where: str) -> Project:
    model = dict(model)
    model.pop("name", None)
    services = model.pop("services", {}) or {}
    active, disabled = _profiles(services, ctx)
    model["services"] = active
    canonical.default_network(model)
    for kind in RESOURCES:
        if model.get(kind):
            model[kind] = {k: canonical.resource(kind, k, v, name, ctx.working_dir)
                           for k, v in model[kind].items()}
    checks.check(model, disabled, where)
    for svc in active.values():
        _resolve_env_files(svc, ctx)
    return Project(name=name, working_dir=ctx.working_dir, model=model,
                   config_files=paths, environment=ctx.env, disabled=disabled,
                   warnings=ctx.opts.warnings)


def _profiles(services: dict, ctx: _Context) -> tuple[dict, dict]:
    """Services without profiles always run; others when one of theirs is enabled by
    --profile or COMPOSE_PROFILES (`*`: all), or when named on the command line."""
    enabled = set(ctx.opts.profiles)
    if not enabled and ctx.env.get("COMPOSE_PROFILES"):
        enabled = {p.strip() for p in ctx.env["COMPOSE_PROFILES"].split(",") if p.strip()}
    for svc_name in ctx.opts.services:
        if svc_name not in services:
            raise InvalidArgument(f"no such service: {svc_name}")
        enabled.update(services[svc_name].get("profiles") or ())
    active: dict[str, dict] = {}
    disabled: dict[str, dict] = {}
    for n, svc in sorted(services.items()):
        profiles = svc.get("profiles") or []
        on = not profiles or "*" in enabled or enabled.intersection(profiles)
        (active if on else disabled)[n] = svc
    return active, disabled


def _resolve_env_files(svc: dict, ctx: _Context) -> None:
    """env_file contents go into environment, under what environment sets itself."""
    if not svc.get("env_file"):
        return
    values: dict = {}
    for entry in svc["env_file"]:
        if not entry.get("required", True) and not os.path.exists(entry["path"]):
            continue
        values.update(dotenv.read(entry["path"], lambda k: ctx.env.get(k, values.get(k))))
    env = svc.get("environment") or {}
    values.update({k: v for k, v in env.items() if v is not None or k not in values})
    svc["environment"] = values
