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
FILTERS = {"status", "name", "label", "ancestor", "exited", "id", "before", "since",
           "volume", "network", "health", "is-task", "publish", "expose"}


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


def make_row(engine, record: dict, state: dict, now: float, trunc: bool, size: bool) -> Row:
    from kade.engine import netview
    from kade.util.ids import parse_rfc3339
    from kade.util.units import human_duration
    cmd = " ".join([record["Path"], *record["Args"]])
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    created = parse_rfc3339(record["Created"])
    image = record["Config"]["Image"]
    row = Row(ID=record["Id"][:12] if trunc else record["Id"], Image=image,
              Command=f'"{cmd}"', CreatedAt=time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC",
                                                          time.gmtime(created)),
              RunningFor=human_duration(now - created) + " ago",
              Status=status_text(state, now), State=state["Status"],
              Ports=netview.ports_column(record, state),
              Names=record["Name"].lstrip("/"),
              Labels=",".join(f"{k}={v}" for k, v in (record["Config"].get("Labels") or {})
                              .items()),
              Mounts=",".join(m.get("Name") or m.get("Source", "") for m in record["Mounts"]),
              Networks=netview.networks_column(record), Size="")
    if size:
        from kade.util.units import human_size
        try:
            rw = engine.snapshots.usage(record["Id"])
        except Exception:
            rw = 0
        row["Size"] = f"{human_size(rw)} (virtual {human_size(rw + _image_size(engine, record))})"
    return row


def _image_size(engine, record: dict) -> int:
    rec = engine.db.get_image(record["Image"])
    return rec["size"] if rec else 0


def matches(engine, record: dict, state: dict, filters: dict) -> bool:
    if not filters:
        return True
    from kade.util.filters import match_label
    for key, values in filters.items():
        if key == "status" and state["Status"] not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in record["Name"].lstrip("/")
                                     for v in values):
            return False
        if key == "id" and not any(record["Id"].startswith(v) for v in values):
            return False
        if key == "label" and not all(match_label(record["Config"].get("Labels") or {}, v)
                                      for v in values):
            return False
        if key == "exited" and not (state["Status"] == "exited" and
                                    str(state["ExitCode"]) in values):
            return False
        if key == "ancestor" and not _ancestor(engine, record, values):
            return False
        if key == "volume" and not any(v in (m.get("Name"), m.get("Destination"))
                                       for m in record["Mounts"] for v in values):
            return False
    return True


def _ancestor(engine, record: dict, values: list[str]) -> bool:
    for v in values:
        try:
            if engine.images.resolve(v) == record["Image"]:
                return True
        except Exception:
            continue
    return False


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
    filters: dict = {}
    if ns.filter:  # kade.util.filters costs ~5 ms: only when asked
        from kade.util.filters import check_keys, parse_filters
        filters = parse_filters(ns.filter)
        check_keys(filters, FILTERS)
    engine = ctx.engine
    show_all = ns.all or ns.last >= 0 or ns.latest or bool(filters.get("status")) or \
        bool(filters.get("exited"))
    items = [(r, s) for r, s in engine.containers.list(all_=show_all)
             if matches(engine, r, s, filters)]
    if ns.latest:
        items = items[:1]
    elif ns.last >= 0:
        items = items[:ns.last]
    now = time.time()
    rows = [make_row(engine, r, s, now, not ns.no_trunc, ns.size) for r, s in items]
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows), end="\n" if rows else "")
        return 0
    fmt = ns.format or (DEFAULT_VIEW + ("\t{{.Size}}" if ns.size else ""))
    from kade.util.table import format_rows
    out = format_rows(fmt, rows, HEADERS)
    print(out, end="" if out.endswith("\n") or not out else "\n")
    return 0
