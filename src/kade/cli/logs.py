"""`kade logs`: stdout and stderr kept apart, -f, --tail, --since, --until, -t."""

from __future__ import annotations

import sys
import time

from kade.cli.errmap import ArgParser


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("logs", "kade logs [OPTIONS] CONTAINER")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all",
        help="Number of lines to show from the end of the logs")
    p.add_argument("--since",
                   help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or "
                   "relative (e.g. 42m for 42 minutes)")
    p.add_argument("--until",
                   help="Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or "
                   "relative (e.g. 42m for 42 minutes)")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    p.add_argument("container")
    ns = p.parse_args(args)
    from kade.engine import logs
    from kade.util.units import parse_timestamp
    engine = ctx.engine
    cid = engine.containers.resolve(ns.container)
    record, _ = engine.containers.get(cid)
    now = time.time()
    since = parse_timestamp(ns.since, now) if ns.since else 0.0
    until = parse_timestamp(ns.until, now) if ns.until else 0.0
    try:
        tail = -1 if ns.tail == "all" else int(ns.tail)
    except ValueError:
        from kade.errors import InvalidArgument
        raise InvalidArgument(f'invalid value for "tail": "{ns.tail}"') from None
    entries, offset = logs.read(record["LogPath"], since=since, until=until, tail=tail)
    _print(entries, ns.timestamps)
    while ns.follow and not until:
        if not engine.containers.state(cid)["Running"]:
            entries, offset = logs.read(record["LogPath"], since=since, offset=offset)
            _print(entries, ns.timestamps)
            break
        logs.follow_sleep()
        entries, offset = logs.read(record["LogPath"], since=since, offset=offset)
        _print(entries, ns.timestamps)
    return 0


def _print(entries: list[dict], timestamps: bool) -> None:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for e in entries:
        line = e["log"].encode()
        if timestamps:
            line = e["time"].encode() + b" " + line
        (err if e["stream"] == "stderr" else out).write(line)
    out.flush()
    err.flush()
