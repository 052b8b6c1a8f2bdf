"""`kade ps`: docker's columns, filters and --format."""

from __future__ import annotations

import time

from kade.cli.errmap import ArgParser

DEFAULT_VIEW = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
                "{{.Ports}}\t{{.Names}}")
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
           "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS",
           "Ports": "PORTS", "Names": "NAMES", "State": "STATE", "Size": "SIZE",
           "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
           "LocalVolumes": "LOCAL VOLUMES"}

TYPE_CHECKING = False  # not `from typing`: `kade ps` must not import it
if TYPE_CHECKING:
    from kade.cli.backend import PsBackend
    from kade.engine.listing import ContainerSummary


def status_text(state: dict, now: float) -> str:
    from kade.util.ids import parse_rfc3339
    from kade.util.units import human_duration
    s = state["Status"]
    if s in ("running", "paused"):
        up = "Up " + human_duration(now - parse_rfc3339(state["StartedAt"]))
        if s == "paused":
            return up + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health:
            return up + (" (health: starting)" if health == "starting" else f" ({health})")
        return up
    if s == "restarting":
        return (f"Restarting ({state['ExitCode']}) "
                f"{human_duration(now - parse_rfc3339(state['FinishedAt']))} ago")
    if s == "exited":
        return (f"Exited ({state['ExitCode']}) "
                f"{human_duration(now - parse_rfc3339(state['FinishedAt']))} ago")
    return s.capitalize()


class Row(dict):
    """A container as --format sees it; docker's field names."""
    go_struct = "*formatter.ContainerContext"  # an unknown field is an error, as there


def make_row(c: ContainerSummary, now: float, trunc: bool) -> Row:
    from kade.engine import netview
    from kade.util.units import human_duration
    cmd = c.command
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    row = Row(ID=c.id[:12] if trunc else c.id, Image=c.image,
              Command=f'"{cmd}"', CreatedAt=time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC",
                                                          time.gmtime(c.created)),
              RunningFor=human_duration(now - c.created) + " ago",
              Status=status_text(c.state, now), State=c.state["Status"],
              Ports=netview.ports_column(c.record, c.state), Names=c.name,
              Labels=",".join(f"{k}={v}" for k, v in c.labels.items()),
              Mounts=",".join(m.get("Name") or m.get("Source", "") for m in c.mounts),
              Networks=netview.networks_column(c.record), Size="")
    if c.size_rw is not None:
        from kade.util.units import human_size
        row["Size"] = f"{human_size(c.size_rw)} (virtual {human_size(c.size_root_fs or 0)})"
    return row


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("ps", "kade ps [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true",
        help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("-n", "--last", type=int, default=-1,
        help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true",
        help="Show the latest created container (includes all states)")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", metavar="filter", action="append", default=[],
        help="Filter output based on conditions provided")
    p.add_argument("--format", help="Pretty-print containers using a Go template")
    ns = p.parse_args(args)
    filters = None
    if ns.filter:  # kade.util.filters costs ~5 ms: only when asked
        from kade.util.filters import parse_filters
        filters = parse_filters(ns.filter)
    backend: PsBackend = ctx.engine
    items = backend.list_containers(all=ns.all, filters=filters, last=ns.last,
                                    latest=ns.latest, size=ns.size)
    now = time.time()
    rows = [make_row(c, now, not ns.no_trunc) for c in items]
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows), end="\n" if rows else "")
        return 0
    fmt = ns.format or (DEFAULT_VIEW + ("\t{{.Size}}" if ns.size else ""))
    from kade.util.table import format_rows
    out = format_rows(fmt, rows, HEADERS)
    print(out, end="" if out.endswith("\n") or not out else "\n")
    return 0
