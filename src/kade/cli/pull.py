"""`kade pull [-a] [-q] [--platform P] NAME[:TAG|@DIGEST]`, with docker's output."""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser

USAGE = "kade pull [OPTIONS] NAME[:TAG|@DIGEST]"


def parser(verb: str) -> ArgParser:
    p = ArgParser(verb, USAGE)
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="Download all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image verification")
    p.add_argument("name")
    return p


def main(ctx, verb: str, args: list[str]) -> int:
    ns = parser(verb).parse_args(args)
    from kade.engine import run as engine_run
    parsed, emit = progress(ns)
    results = engine_run.pull(ctx.engine, ns.name, all_tags=ns.all_tags, platform=ns.platform,
                              emit=emit)
    print(parsed.repository if ns.all_tags else results[0].name)
    return 0


def progress(ns):
    """docker's preamble for pull and push: the parsed name, the default-tag line,
    and where the progress messages go (a live display, or nowhere with -q)."""
    from kade.oci import reference
    from kade.remotes.progress import Display, discard
    parsed = reference.parse(ns.name, default_tag=False)
    if not (parsed.tag or parsed.digest or ns.all_tags) and not ns.quiet:
        print("Using default tag: latest", flush=True)
    return parsed, (discard if ns.quiet else Display(sys.stdout))
