"""`kade volume create|ls|inspect|rm|prune`."""

from __future__ import annotations

from kade.cli.common import confirm, each
from kade.cli.errmap import ArgParser

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.cli.backend import VolumeBackend


def main(ctx, verb: str, args: list[str]) -> int:
    """`args[0]` is a subcommand: cli.main answers for any other word."""
    handlers = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
                "remove": _rm, "prune": _prune}
    return handlers[args[0]](ctx, args[1:])


def _create(ctx, args):
    p = ArgParser("volume create", "kade volume create [OPTIONS] [VOLUME]")
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("--label", action="append", default=[], help="Set metadata for a volume")
    p.add_argument("-o", "--opt", metavar="map", action="append", default=[],
                   help="Set driver specific options")
    p.add_argument("--name", help="Specify volume name")
    p.add_argument("name_arg", nargs="?")
    ns = p.parse_args(args)
    volumes = ctx.engine.volumes
    labels = dict((x.partition("=")[0], x.partition("=")[2]) for x in ns.label)
    opts = dict((x.partition("=")[0], x.partition("=")[2]) for x in ns.opt)
    rec = volumes.create(ns.name_arg or ns.name, labels, ns.driver, opts)
    print(rec["Name"])
    return 0


def _ls(ctx, args):
    p = ArgParser("volume ls", "kade volume ls [OPTIONS]")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    p.add_argument("-f", "--filter", metavar="filter", action="append", default=[],
        help="Provide filter values (e.g. 'dangling=true')")
    p.add_argument("--format", help="Pretty-print volumes using a Go template")
    ns = p.parse_args(args)
    from kade.util.filters import parse_filters
    backend: VolumeBackend = ctx.engine
    rows = [{"Driver": v.driver, "Name": v.name, "Scope": v.scope, "Mountpoint": v.mountpoint,
             "Labels": ",".join(f"{k}={x}" for k, x in v.labels.items())}
            for v in backend.list_volumes(parse_filters(ns.filter))]
    if ns.quiet:
        print("\n".join(r["Name"] for r in rows), end="\n" if rows else "")
        return 0
    from kade.util.table import format_rows
    out = format_rows(ns.format or "table {{.Driver}}\t{{.Name}}", rows,
                      {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
                       "Mountpoint": "MOUNTPOINT", "Labels": "LABELS"})
    print(out, end="" if out.endswith("\n") or not out else "\n")
    return 0


def _inspect(ctx, args):
    p = ArgParser("volume inspect", "kade volume inspect [OPTIONS] VOLUME [VOLUME...]")
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    p.add_argument("names", nargs="+")
    ns = p.parse_args(args)
    volumes = ctx.engine.volumes
    from kade.cli.inspect import emit
    return emit([lambda n=n: volumes.get(n) for n in ns.names], ns.format, ns.names, "volume")


def _rm(ctx, args):
    p = ArgParser("volume rm", "kade volume rm [OPTIONS] VOLUME [VOLUME...]")
    p.add_argument("-f", "--force", action="store_true",
        help="Force the removal of one or more volumes")
    p.add_argument("names", nargs="+")
    ns = p.parse_args(args)
    volumes = ctx.engine.volumes
    return each(ns.names, lambda n: (volumes.remove(n, ns.force), n)[1])


def _prune(ctx, args):
    p = ArgParser("volume prune", "kade volume prune [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
        help="Provide filter values (e.g. 'label=<label>')")
    ns = p.parse_args(args)
    volumes = ctx.engine.volumes
    match = None
    if ns.filter:  # docker's label=, label!= (the engine's prune filter, without until)
        from kade.engine.prune import Filter
        match = Filter(ns.filter, allowed=("label", "label!")).matches
    if not confirm("WARNING! This will remove anonymous local volumes not used by at least "
                   "one container.", ns.force):
        return 0
    removed, space = volumes.prune(ns.all, match=match)
    from kade.util.units import human_size
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {human_size(space)}")
    return 0

