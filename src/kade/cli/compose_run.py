"""`kade compose run`: a one-off container of a service (`<project>-<service>-run-<id>`,
oneoff label True), its dependencies brought up first unless --no-deps."""

from __future__ import annotations

import os
import sys

from kade.cli.errmap import Failed


def run_oneoff(ctx, a, c) -> int:
    from kade.compose import convert
    from kade.compose.apply import Graph, UpOptions
    from kade.util.ids import new_id
    project, service = a.project, c.service
    if service not in project.services:
        raise Failed(f"no such service: {service}")
    a.check([service])
    deps = [] if c.no_deps else [n for n in Graph(project, [service]).nodes if n != service]
    opts = UpOptions()
    if deps:
        a.check(deps)
        a.ensure_networks(deps)
        a.ensure_volumes(deps)
        a.converge(deps, a.ensure_images(deps, opts, None), opts)
    a.ensure_networks([service])
    a.ensure_volumes([service])
    image_id = a.ensure_images([service], opts, _build_progress())[service]
    options, networks = convert.create_options(project, service, 1, image_id, oneoff=True,
                                               peers=a.peer)
    _override(options, c, f"{project.name}-{service}-run-{new_id()[:12]}")
    from kade.compose.apply import _bind_dirs
    _bind_dirs(options["mounts"])
    cid = a.backend.create_container(options, networks)
    return _start(ctx, cid, options, c)


def _override(options: dict, c, name: str) -> None:
    from kade.volumes import parse_volume
    options["name"] = c.name or name
    options["labels"]["com.docker.compose.oneoff"] = "True"
    options["labels"].update(dict(x.partition("=")[::2] for x in c.label))
    if c.command:
        options["command"] = list(c.command)
    if c.entrypoint is not None:
        import shlex
        options["entrypoint"] = shlex.split(c.entrypoint) or [""]
    options["env"] = list(options.get("env") or []) + [
        e if "=" in e else f"{e}={os.environ.get(e, '')}" for e in c.env]
    if c.user:
        options["user"] = c.user
    if c.workdir:
        options["workdir"] = c.workdir
    options["mounts"] = list(options["mounts"]) + [parse_volume(v) for v in c.volume]
    if not c.service_ports:
        options["publish"] = []
    options["auto_remove"] = c.rm
    options["restart"] = "no"
    options["tty"] = not c.no_tty and sys.stdin.isatty() and not c.detach
    options["interactive"] = not c.detach


def _start(ctx, cid: str, options: dict, c) -> int:
    from kade.cli import attach as attach_mod
    from kade.engine import lifecycle
    engine = ctx.engine
    if c.detach:
        lifecycle.start(engine, cid).close()
        print(cid)
        return 0
    attach = {"stdin": options["interactive"], "tty": options["tty"]}
    raw = options["tty"] and os.isatty(0)
    with attach_mod.terminal(raw):
        started = lifecycle.start(engine, cid, attach)
        with attach_mod.forward_signals(started, options["tty"], True):
            return started.wait_exit()


def _build_progress():
    from kade.cli.compose_up import build_progress
    return build_progress()
