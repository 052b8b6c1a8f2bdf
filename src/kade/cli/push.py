"""`kade push [-a] [-q] [--compression gzip|zstd] NAME[:TAG]`, with docker's output."""

from __future__ import annotations


from kade.cli.errmap import ArgParser

USAGE = "kade push [OPTIONS] NAME[:TAG]"


def parser(verb: str) -> ArgParser:
    p = ArgParser(verb, USAGE)
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="Push all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--compression", default="gzip", choices=["gzip", "zstd"],
                   help="Compression of local layers: gzip (ISA-L) or zstd")
    p.add_argument("--platform", help="Accepted for docker's sake; an image has one here")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image signing")
    p.add_argument("name")
    return p


def main(ctx, verb: str, args: list[str]) -> int:
    ns = parser(verb).parse_args(args)
    from kade.cli.pull import progress
    from kade.engine import run as engine_run
    parsed, emit = progress(ns)
    results = engine_run.push(ctx.engine, ns.name, all_tags=ns.all_tags,
                              compression=ns.compression, emit=emit)
    if ns.quiet:
        for r in results:
            print(f"{parsed.repository}:{r.tag}")
    return 0
