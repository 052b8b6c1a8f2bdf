"""`kade compose [-f FILE]... [-p NAME] COMMAND`: docker compose's front door.

Each subcommand is a function in SUBCOMMANDS taking (ctx, global options, args);
the apply layer's commands live in compose_up.py and compose_verbs.py, imported on use.
"""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser, Failed

# docker compose's commands that Kade does not have yet
PLANNED = ("attach", "commit", "export", "scale", "stats", "watch")


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("compose", "kade compose [OPTIONS] COMMAND")
    p.add_argument("-f", "--file", metavar="stringArray", action="append", default=[],
                   help="Compose configuration files")
    p.add_argument("-p", "--project-name", help="Project name")
    p.add_argument("--project-directory", metavar="string",
                   help="Specify an alternate working directory\n"
                        "(default: the path of the, first specified, Compose file)")
    p.add_argument("--env-file", metavar="stringArray", action="append", default=[],
                   help="Specify an alternate environment file")
    p.add_argument("--profile", metavar="stringArray", action="append", default=[],
                   help="Specify a profile to enable")
    p.add_argument("command", nargs="...")
    ns = p.parse_args(args)
    if not ns.command:
        from kade.cli.usage import group_usage
        return group_usage("compose", [])
    sub, rest = ns.command[0], ns.command[1:]
    if sub in ("help", "-h", "--help"):
        from kade.cli.usage import group_usage
        return group_usage("compose", ["--help"])
    handler = SUBCOMMANDS.get(sub)
    if handler is None:
        if sub in PLANNED:
            raise Failed(f"kade compose: '{sub}' is not implemented yet")
        raise Failed(f"unknown docker command: \"compose {sub}\"")
    return handler(ctx, ns, rest)


def load_project(ns, services: list[str] | None = None, interpolate: bool = True):
    """The project the global options name; the loader's warnings go to stderr as
    docker compose prints them."""
    from kade.compose import Options, load
    opts = Options(files=ns.file, project_name=ns.project_name,
                   project_directory=ns.project_directory, env_files=ns.env_file,
                   profiles=ns.profile, interpolate=interpolate, services=services)
    project = load(opts)
    for warning in project.warnings:
        sys.stderr.write(f"WARN[0000] {warning}\n")
    return project


def _config(ctx, ns, args: list[str]) -> int:
    p = ArgParser("compose config", "kade compose config [OPTIONS] [SERVICE...]")
    p.add_argument("--services", action="store_true", help="Print the service names, one per line.")
    p.add_argument("--volumes", action="store_true", help="Print the volume names, one per line.")
    p.add_argument("--profiles", action="store_true", help="Print the profile names, one per line.")
    p.add_argument("--images", action="store_true", help="Print the image names, one per line.")
    p.add_argument("--hash", metavar="string", help="Print the service config hash, one per line.")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Only validate the configuration, don't print anything.")
    p.add_argument("--format", metavar="string", default="yaml", choices=("yaml", "json"),
                   help="Format the output. Values: [yaml | json]")
    p.add_argument("--no-interpolate", action="store_true",
                   help="Don't interpolate environment variables.")
    p.add_argument("--resolve-image-digests", action="store_true",
                   help="Pin image tags to digests.")
    p.add_argument("-o", "--output", metavar="string",
                   help="Save to file (default to stdout)")
    p.add_argument("services_arg", nargs="*", metavar="SERVICE")
    c = p.parse_args(args)
    if c.resolve_image_digests:
        raise Failed("kade compose config: --resolve-image-digests is not supported")
    project = load_project(ns, c.services_arg, interpolate=not c.no_interpolate)
    if c.services_arg:
        _select(project, c.services_arg)
    text = _render(project, c)
    if c.quiet:
        return 0
    _write(text, c.output)
    return 0


def _render(project, c) -> str:
    if c.services:
        return _lines(project.services)
    if c.volumes:
        return _lines(project.resources("volumes"))
    if c.profiles:
        return _lines(project.profiles())
    if c.images:
        return _lines(project.image(s) for s in project.services)
    if c.hash is not None:
        return _hashes(project, c.hash)
    return project.to_json() if c.format == "json" else project.to_yaml()


def _lines(items) -> str:
    return "".join(f"{x}\n" for x in items)


def _hashes(project, spec: str) -> str:
    names = list(project.services) if spec.strip() == "*" else \
        [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in project.services:
            raise Failed(f"no such service: {name}")
    return "".join(f"{n} {project.config_hash(n)}\n" for n in names)


def _select(project, names: list[str]) -> None:
    """Keep the named services and what they depend on, as compose does."""
    keep: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in keep or name not in project.services:
            continue
        keep.add(name)
        todo += list(project.services[name].get("depends_on") or {})
    project.model["services"] = {n: s for n, s in project.services.items() if n in keep}


def _write(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


def _lazy(module: str, name: str):
    def run(ctx, ns, args):
        import importlib
        return getattr(importlib.import_module(module), name)(ctx, ns, args)
    return run


SUBCOMMANDS = {"config": _config,
               "up": _lazy("kade.cli.compose_up", "up"),
               "down": _lazy("kade.cli.compose_up", "down")}
for _verb in ("ps logs run start stop restart kill pause unpause rm create wait build pull "
              "push images top port cp ls events version").split():
    SUBCOMMANDS[_verb] = _lazy("kade.cli.compose_verbs", _verb)
SUBCOMMANDS["exec"] = _lazy("kade.cli.compose_verbs", "exec_")
