"""version, info, system df|prune|check."""

from __future__ import annotations

import platform
import sys

from kade.cli.common import confirm
from kade.cli.errmap import ArgParser, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.cli.backend import SystemBackend
    from kade.engine.diskusage import DiskUsage, UsageSummary


def main(ctx, verb: str, args: list[str]) -> int:
    if verb == "version":
        return _version(args)
    if verb == "info":
        return _info(ctx, args)
    # args[0] is a subcommand: cli.main answers for any other word
    sub = {"df": _df, "prune": _prune, "check": _check, "info": _info, "monitor": _monitor,
           "service": _service}
    return sub[args[0]](ctx, args[1:])


def _version(args) -> int:
    p = ArgParser("version", "kade version")
    p.add_argument("--short", action="store_true", hidden=True)  # what `kade -v` runs
    ns = p.parse_args(args)
    from kade import __version__
    if ns.short:
        print(f"Kade version {__version__}")
        return 0
    print(f"Client: Kade\n Version:           {__version__}\n Python version:    "
          f"{platform.python_version()}\n OS/Arch:           linux/{platform.machine()}")
    return 0


def _info(ctx, args) -> int:
    ArgParser("info", "kade info").parse_args(args)
    engine = ctx.engine
    items = engine.containers.list(all_=True)
    running = sum(1 for _, s in items if s["Status"] == "running")
    paused = sum(1 for _, s in items if s["Status"] == "paused")
    print(f"Containers: {len(items)}\n Running: {running}\n Paused: {paused}\n Stopped: "
          f"{len(items) - running - paused}\nImages: {len(engine.db.images())}\n"
          f"Storage Driver: {engine.driver}\nKade Root Dir: {engine.root}\n"
          f"Kernel Version: {platform.release()}")
    return 0


def _df(ctx, args) -> int:
    p = ArgParser("system df", "kade system df [OPTIONS]")
    p.add_argument("-v", "--verbose", action="store_true",
        help="Show detailed information on space usage")
    p.add_argument("--format", help="Pretty-print images using a Go template")
    ns = p.parse_args(args)
    from kade.util.table import format_rows
    backend: SystemBackend = ctx.engine
    usage = backend.disk_usage()
    fmt = ns.format or "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    print(format_rows(fmt, [_summary_row(u) for u in usage.summary], {
        "Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
        "Reclaimable": "RECLAIMABLE"}), end="")
    if ns.verbose:
        for title, fmt, rows, headers in _df_verbose(usage):
            print(f"\n{title}:")
            print(format_rows(fmt, rows, headers), end="")
    return 0


def _summary_row(u: UsageSummary) -> dict:
    from kade.util.units import human_size
    reclaim = human_size(u.reclaimable)
    if u.type != "Build Cache":  # docker shows the share of the rest, not of the cache
        pct = int(100 * u.reclaimable / u.size) if u.size else 0
        reclaim = f"{reclaim} ({pct}%)"
    return {"Type": u.type, "TotalCount": u.total_count, "Active": u.active,
            "Size": human_size(u.size), "Reclaimable": reclaim}


def _df_verbose(usage: DiskUsage) -> list:
    """df -v's three tables: (title, format, rows, headers)."""
    from kade.util.units import human_size
    return [
        ("Images space usage", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}"
         "\t{{.Containers}}",
         [dict(_repo_tag(t), ID=i.id[7:19], Size=human_size(i.size), Containers=i.containers)
          for i in usage.images for t in (i.repo_tags or [""])],
         {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE",
          "Containers": "CONTAINERS"}),
        ("Containers space usage", "table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t"
         "{{.Names}}",
         [{"ID": c.id[:12], "Image": c.image, "Size": human_size(c.size), "Status": c.status,
           "Names": c.name} for c in usage.containers],
         {"ID": "CONTAINER ID", "Image": "IMAGE", "Size": "SIZE", "Status": "STATUS",
          "Names": "NAMES"}),
        ("Local Volumes space usage", "table {{.Name}}\t{{.Links}}\t{{.Size}}",
         [{"Name": v.name, "Links": v.links, "Size": human_size(v.size)}
          for v in usage.volumes],
         {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    ]


def _repo_tag(name: str) -> dict:
    """REPOSITORY and TAG as `images` shows them: the familiar name, which keeps a
    registry and namespace (`localhost:5000/team/app`) and drops only docker.io/library."""
    if not name:
        return {"Repository": "<none>", "Tag": "<none>"}
    from kade.oci import reference
    ref = reference.parse_stored(name)
    return {"Repository": ref.familiar_name(), "Tag": ref.tag or "<none>"}


def _prune(ctx, args) -> int:
    p = ArgParser("system prune", "kade system prune [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true",
        help="Remove all unused images not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune volumes")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
        help="Provide filter values (e.g. 'label=<key>=<value>')")
    ns = p.parse_args(args)
    from kade.engine import prune
    flt = prune.system_filter(ns.filter, ns.volumes)  # bad filters fail before the question
    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if ns.volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them"
                 if ns.all else "  - all dangling images")
    lines.append("  - unreferenced content and unfinished writes")
    if not confirm("\n".join(lines), ns.force):
        return 0
    from kade.util.units import human_size
    out = prune.system(ctx.engine, ns.all, ns.volumes, flt)
    if out["containers"]:
        print("Deleted Containers:\n" + "\n".join(out["containers"]) + "\n")
    if out["networks"]:
        print("Deleted Networks:\n" + "\n".join(out["networks"]) + "\n")
    if out["volumes"]:
        print("Deleted Volumes:\n" + "\n".join(out["volumes"]) + "\n")
    if out["images"]:
        print("Deleted Images:\n" + "\n".join(f"{k}: {v}" for k, v in out["images"]) + "\n")
    print(f"Total reclaimed space: {human_size(out['space'])}")
    return 0


def _check(ctx, args) -> int:
    p = ArgParser("system check", "kade system check [--repair]")
    p.add_argument("--repair", action="store_true", help="Repair the problems found")
    ns = p.parse_args(args)
    from kade.engine.check import check
    problems = check(ctx.engine, repair=ns.repair)
    for line in problems:
        print(line)
    if not problems:
        print("store is consistent")
        return 0
    if ns.repair:
        print(f"repaired {len(problems)} problem(s)")
        return 0
    sys.stderr.write(f"{len(problems)} problem(s) found; run 'kade system check --repair'\n")
    return 1


def _monitor(ctx, args) -> int:
    """`kade system monitor stop`: end the root's idle container supervisor."""
    p = ArgParser("system monitor", "kade system monitor stop")
    p.add_argument("action", metavar="stop")
    if p.parse_args(args).action != "stop":
        raise UsageError(f'unknown action "{args[0]}": kade system monitor stop')
    import time
    from kade.engine import monitorclient
    from kade.engine.core import Engine
    root = Engine(ctx.root, ctx.driver).root
    deadline = time.monotonic() + 5  # monitors of just-removed containers are finishing
    while time.monotonic() < deadline:
        if monitorclient.shutdown(root):
            return 0
        time.sleep(0.05)
    sys.stderr.write("Error: no idle container monitor to stop\n")
    return 1


def _service(ctx, args) -> int:
    """`kade system service`: the Docker Engine API (kade.api)."""
    p = ArgParser("system service", "kade system service [OPTIONS]")
    p.add_argument("--socket", metavar="string", help="Unix socket to listen on "
                   "(default /run/kade/docker.sock)")
    p.add_argument("-H", "--host", action="append", default=[], metavar="list",
                   help="Daemon socket(s) to listen on: unix://PATH, tcp://127.0.0.1:PORT, fd://")
    p.add_argument("-t", "--time", default="5", metavar="int",
                   help="Time until the service exits when idle, in seconds (0: never)")
    p.add_argument("-d", "--detach", action="store_true", help="Run in the background")
    p.add_argument("--docker-socket", action="store_true",
                   help="Listen at /var/run/docker.sock too")
    p.add_argument("--group", metavar="string",
                   help="Group of the unix socket (default: docker, when it exists)")
    p.add_argument("--tlsverify", action="store_true", help="Require clients' TLS certificates")
    p.add_argument("--tlscacert", metavar="string", help="Trust certs signed only by this CA")
    p.add_argument("--tlscert", metavar="string", help="Path to TLS certificate file")
    p.add_argument("--tlskey", metavar="string", help="Path to TLS key file")
    ns = p.parse_args(args)
    from kade.api import service
    return service.main(ctx.root, ns, ctx.driver)
