"""`kade inspect`: containers or images, docker's JSON array or --format."""

from __future__ import annotations

import json
import sys

from kade import errors
from kade.cli.errmap import ArgParser, escape


def emit(getters, fmt: str | None, names: list[str], kind: str) -> int:
    results, failed = [], 0
    for name, get in zip(names, getters):
        try:
            results.append(get())
        except errors.NotFound:
            # docker's client words it so, capital N (objectNotFoundError)
            sys.stderr.write(f"Error: No such {kind}: {escape(name)}\n")
            failed = 1
    if fmt:
        from kade.util.gotemplate import render
        for obj in results:
            print(render(fmt, obj))
    else:
        print(json.dumps(results, indent=4))
    return failed


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("inspect", "kade inspect [OPTIONS] NAME|ID [NAME|ID...]")
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    p.add_argument("-s", "--size", action="store_true",
        help="Display total file sizes if the type is container")
    p.add_argument("--type", choices=["container", "image"], help="Return JSON for specified type")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    ns = p.parse_args(args)
    engine = ctx.engine

    def getter(name):
        def get():
            if ns.type != "image":
                try:
                    return engine.containers.inspect(engine.containers.resolve(name))
                except errors.NotFound:
                    if ns.type == "container":
                        raise
            from kade.images.inspect import inspect_image
            return inspect_image(engine, name)
        return get
    kind = ns.type or "object"
    return emit([getter(n) for n in ns.names], ns.format, ns.names, kind)
