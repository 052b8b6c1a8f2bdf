"""top, stats and port: what a container runs, uses and publishes, as docker prints it."""

from __future__ import annotations

import sys
import time

from kade.cli.errmap import ArgParser
from kade.cli.errmap import Failed as _Failed
from kade.errors import KadeError

STATS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def main(ctx, verb: str, args: list[str]) -> int:
    return {"top": _top, "stats": _stats, "port": _port}[verb](ctx, args)


# --- top ------------------------------------------------------------------------
def _top(ctx, args: list[str]) -> int:
    # everything after the container goes to ps, flags included: no argparse here
    if not args or args[0] in ("-h", "--help"):
        from kade.cli.usage import describe
        sys.stdout.write(f"\nUsage:  kade top CONTAINER [ps OPTIONS]\n\n{describe('top')}\n")
        return 0 if args else _usage("top", '"kade top" requires at least 1 argument.')
    from kade.engine import stats
    engine = ctx.engine
    titles, rows = stats.top(engine, engine.containers.resolve(args[0]), args[1:] or None)
    from kade.util.table import tabwrite
    lines = ["\t".join(titles)] + ["\t".join(row) for row in rows]
    sys.stdout.write(tabwrite("\n".join(lines) + "\n", min_width=20))  # docker top's widths
    return 0


def _usage(verb: str, msg: str) -> int:
    from kade.util.escape import escape_lines
    sys.stderr.write(f"{escape_lines(msg)}\nSee 'kade {verb} --help'.\n")
    return 1


# --- port -----------------------------------------------------------------------
def _port(ctx, args: list[str]) -> int:
    p = ArgParser("port", "kade port CONTAINER [PRIVATE_PORT[/PROTO]]")
    p.add_argument("container")
    p.add_argument("private", nargs="?")
    ns = p.parse_args(args)
    from kade.engine import stats
    engine = ctx.engine
    cid = engine.containers.resolve(ns.container)
    if ns.private is None:
        for private, public in stats.ports(engine, cid):
            print(f"{private} -> {public}")
        return 0
    try:
        found = stats.port(engine, cid, ns.private)
    except KadeError:
        # docker names the port with its protocol, tcp when none was given
        private = ns.private if "/" in ns.private else f"{ns.private}/tcp"
        raise _Failed(f"Error: No public port '{private}' published for {ns.container}"
                      ) from None
    print("\n".join(found))
    return 0


# --- stats ----------------------------------------------------------------------
def _stats(ctx, args: list[str]) -> int:
    p = ArgParser("stats", "kade stats [OPTIONS] [CONTAINER...]")
    p.add_argument("-a", "--all", action="store_true",
        help="Show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true",
        help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("--format", default="", help="Pretty-print images using a Go template")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    ns = p.parse_args(args)
    engine = ctx.engine
    named: list[tuple[str, str | None]] = [(engine.containers.resolve(ref), ref)
                                           for ref in ns.containers]
    if ns.no_stream:
        _print_stats(engine, ns, named, None)
        return 0
    previous = None
    while True:  # docker redraws every second until interrupted
        previous = _print_stats(engine, ns, named, previous, clear=True)
        time.sleep(1.0)


def _print_stats(engine, ns, named: list[tuple[str, str | None]], previous,
                 clear: bool = False):
    from kade.engine import stats
    from kade.util.table import format_rows
    targets = named or [(r["Id"], None) for r, s in engine.containers.list(all_=ns.all)]
    usages, samples = stats.stats(engine, [cid for cid, _ in targets], previous=previous)
    rows = [stats_row(u, ref, ns.no_trunc) for u, (_, ref) in zip(usages, targets)]
    out = format_rows(ns.format, rows, STATS_HEADERS, default=STATS_DEFAULT)
    if clear and sys.stdout.isatty():
        out = "\033[2J\033[H" + out
    sys.stdout.write(out)
    sys.stdout.flush()
    return samples


def stats_row(u, ref: str | None, no_trunc: bool) -> dict:
    """One container as --format sees it; keys sorted, as docker's {{json .}} has them."""
    from kade.util.units import bytes_size, human_size
    cid = u.id if no_trunc else u.id[:12]
    return {
        "BlockIO": f"{human_size(u.block_read)} / {human_size(u.block_write)}",
        "CPUPerc": f"{u.cpu_percent:.2f}%",
        "Container": ref or cid,
        "ID": cid,
        "MemPerc": f"{u.memory_percent:.2f}%",
        "MemUsage": f"{bytes_size(u.memory)} / {bytes_size(u.memory_limit)}",
        "Name": u.name,
        "NetIO": f"{human_size(u.net_rx)} / {human_size(u.net_tx)}",
        "PIDs": str(u.pids),
    }
