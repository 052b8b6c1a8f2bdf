"""`kade push [-a] [-q] [--compression gzip|zstd] NAME[:TAG]`, with docker's output."""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser

USAGE = "kade push [OPTIONS] NAME[:TAG]"


def parser(verb: str) -> ArgParser:
    p = ArgParser(verb, USAGE)
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="Push all tags of an image to the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--compression", default="gzip", choices=["gzip", "zstd"],
                   help="Compression of local layers: gzip (ISA-L) or zstd")
    p.add_argument("--platform", help="Accepted for docker's sake; an image has one here")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image signing (default true)")
    p.add_argument("name")
    return p


def main(ctx, verb: str, args: list[str]) -> int:
    ns = parser(verb).parse_args(args)
    from kade.engine import run as engine_run
    from kade.oci import reference
    from kade.remotes.progress import Display, discard
    parsed = reference.parse(ns.name, default_tag=False)
    if not (parsed.tag or parsed.digest or ns.all_tags) and not ns.quiet:
        print("Using default tag: latest", flush=True)
    emit = discard if ns.quiet else Display(sys.stdout)
    results = engine_run.push(ctx.engine, ns.name, all_tags=ns.all_tags,
                              compression=ns.compression, emit=emit)
    if ns.quiet:
        for r in results:
            print(f"{parsed.repository}:{r.tag}")
    return 0
