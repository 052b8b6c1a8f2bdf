"""`kade events`: the engine's events, in docker's line format or a --format template."""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser, escape
from kade.errors import KadeError


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("events", "kade events [OPTIONS]")
    p.add_argument("-f", "--filter", metavar="filter", action="append", default=[],
        help="Filter output based on conditions provided")
    p.add_argument("--format", default="", help="Format the output using the given Go template")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    ns = p.parse_args(args)
    try:
        return _follow(ctx.engine, ns)
    except KadeError as e:
        sys.stderr.write(f"Error response from daemon: {escape(str(e))}\n")
        return 1


def _follow(engine, ns) -> int:
    from kade.engine import stats
    from kade.util.filters import parse_filters
    from kade.util.units import parse_timestamp
    since = parse_timestamp(ns.since) if ns.since else None
    until = parse_timestamp(ns.until) if ns.until else None
    fmt = "{{json .}}" if ns.format == "json" else ns.format
    template = None
    if fmt:
        from kade.util import gotemplate
        template = gotemplate.compile(fmt.replace("\\t", "\t").replace("\\n", "\n"))
    for ev in stats.events(engine, since=since, until=until,
                           filters=parse_filters(ns.filter)):
        line = template.execute(ev) if template else stats.event_line(ev)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0
