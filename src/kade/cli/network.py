"""`kade network create|ls|inspect|rm|prune|connect|disconnect`."""

from __future__ import annotations

import sys

from kade.cli.common import confirm
from kade.cli.errmap import ArgParser


def main(ctx, verb: str, args: list[str]) -> int:
    """`args[0]` is a subcommand: cli.main answers for any other word."""
    handlers = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
                "remove": _rm, "prune": _prune, "connect": _connect,
                "disconnect": _disconnect}
    return handlers[args[0]](ctx, args[1:])


def _pairs(items: list[str]) -> dict:
    return dict((x.partition("=")[0], x.partition("=")[2]) for x in items)


def _create(ctx, args):
    p = ArgParser("network create", "kade network create [OPTIONS] NETWORK")
    a = p.add_argument
    a("--attachable", action="store_true", help="Enable manual container attachment")
    a("-d", "--driver", default="bridge", metavar="string",
      help='Driver to manage the Network (default "bridge")')
    a("--gateway", action="append", default=[], metavar="strings",
      help="IPv4 or IPv6 Gateway for the master subnet")
    a("--internal", action="store_true", help="Restrict external access to the network")
    a("--ip-range", action="append", default=[], metavar="strings",
      help="Allocate container ip from a sub-range")
    a("--ipv6", action="store_true", help="Enable IPv6 networking")
    a("--label", action="append", default=[], metavar="list",
      help="Set metadata on a network")
    a("-o", "--opt", action="append", default=[], metavar="map",
      help="Set driver specific options")
    a("--subnet", action="append", default=[], metavar="strings",
      help="Subnet in CIDR format that represents a network segment")
    a("name")
    ns = p.parse_args(args)
    try:
        ranges, gateways = ipam_per_subnet(ns.subnet, ns.ip_range, ns.gateway)
    except ValueError as e:  # docker's CLI refuses these itself: no daemon prefix
        from kade.util.escape import escape
        sys.stderr.write(f"{escape(str(e))}\n")
        return 1
    nid = ctx.engine.networks.create(
        ns.name, ns.driver, ns.subnet, gateways, ranges, internal=ns.internal,
        ipv6=ns.ipv6, labels=_pairs(ns.label), options=_pairs(ns.opt),
        attachable=ns.attachable)
    print(nid)
    return 0


def ipam_per_subnet(subnets: list, ranges: list, gateways: list) -> tuple[list, list]:
    """docker 20.10's createIPAMConfig: each --ip-range and --gateway goes to the
    --subnet that contains it (not by position); returns them aligned with subnets."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise ValueError("every ip-range or gateway must have a corresponding subnet")
    for i, s in enumerate(subnets):
        for k in subnets[:i]:
            if _contains(s, k) or _contains(k, s):
                raise ValueError("multiple overlapping subnet configuration is not allowed")
    out = {"range": [""] * len(subnets), "gateway": [""] * len(subnets)}
    for kind, values in (("range", ranges), ("gateway", gateways)):
        for value in values:
            matched = False
            for i, s in enumerate(subnets):
                if not _contains(s, value):
                    continue
                if out[kind][i]:
                    what = "ranges" if kind == "range" else "gateways"
                    prep = "on" if kind == "range" else "for"
                    raise ValueError(f"cannot configure multiple {what} ({value}, "
                                     f"{out[kind][i]}) {prep} the same subnet ({s})")
                out[kind][i], matched = value, True
            if not matched:
                raise ValueError(f"no matching subnet for {kind} {value}")
    return out["range"], out["gateway"]


def _contains(subnet: str, data: str) -> bool:
    """Go's subnetMatches: the subnet holds data's address (a CIDR's or an IP's)."""
    import ipaddress
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"invalid subnet: invalid CIDR address: {subnet}") from None
    try:
        addr = ipaddress.ip_interface(data).ip if "/" in data else ipaddress.ip_address(data)
    except ValueError:
        if "/" in data:
            raise ValueError(f"invalid CIDR address: {data}") from None
        return False
    return addr in net


LS_FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


def _ls(ctx, args):
    p = ArgParser("network ls", "kade network ls [OPTIONS]")
    p.add_argument("-f", "--filter", metavar="filter", action="append", default=[],
                   help="Provide filter values (e.g. 'driver=bridge')")
    p.add_argument("--format", metavar="string",
                   help="Pretty-print networks using a Go template")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    ns = p.parse_args(args)
    from kade.util.filters import parse_filters
    filters = parse_filters(ns.filter)
    rows = [_row(r, ns.no_trunc) for r in ctx.engine.networks.listing(filters)]
    if ns.quiet:
        print("\n".join(r["ID"] for r in rows), end="\n" if rows else "")
        return 0
    from kade.util.table import format_rows
    out = format_rows(ns.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", rows,
                      {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
                       "Scope": "SCOPE", "IPv6": "IPV6", "Internal": "INTERNAL",
                       "Labels": "LABELS", "CreatedAt": "CREATED AT"})
    print(out, end="" if out.endswith("\n") or not out else "\n")
    return 0


def _row(rec: dict, no_trunc: bool) -> dict:
    return {"ID": rec["Id"] if no_trunc else rec["Id"][:12], "Name": rec["Name"],
            "Driver": rec["Driver"], "Scope": rec["Scope"],
            "IPv6": str(rec["EnableIPv6"]).lower(), "Internal": str(rec["Internal"]).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in (rec.get("Labels") or {}).items()),
            "CreatedAt": rec["Created"]}


def _inspect(ctx, args):
    p = ArgParser("network inspect", "kade network inspect [OPTIONS] NETWORK [NETWORK...]")
    p.add_argument("-f", "--format", metavar="string",
                   help="Format the output using the given Go template")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Verbose output for diagnostics")
    p.add_argument("names", nargs="+")
    ns = p.parse_args(args)
    nets = ctx.engine.networks
    from kade.cli.inspect import emit
    return emit([lambda n=n: nets.inspect(n) for n in ns.names], ns.format, ns.names,
                "network")


def _rm(ctx, args):
    p = ArgParser("network rm", "kade network rm NETWORK [NETWORK...]")
    p.add_argument("names", nargs="+")
    ns = p.parse_args(args)
    from kade import errors
    from kade.util.escape import escape
    failed = 0
    for name in ns.names:
        try:
            ctx.engine.networks.remove(name)
            print(name)
        except errors.NotFound:
            sys.stderr.write(f"Error: No such network: {escape(name)}\n")
            failed = 1
        except errors.KadeError as e:
            sys.stderr.write(f"Error response from daemon: {escape(str(e))}\n")
            failed = 1
    return failed


def _prune(ctx, args):
    p = ArgParser("network prune", "kade network prune [OPTIONS]")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
                   help="Provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    ns = p.parse_args(args)
    from kade.engine.prune import Filter
    flt = Filter(ns.filter)
    if not confirm("WARNING! This will remove all custom networks not used by at least one "
                   "container.", ns.force):
        return 0
    removed = ctx.engine.networks.prune(flt)
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed) + "\n")
    return 0


def _connect(ctx, args):
    p = ArgParser("network connect", "kade network connect [OPTIONS] NETWORK CONTAINER")
    a = p.add_argument
    a("--alias", action="append", default=[], metavar="strings",
      help="Add network-scoped alias for the container")
    a("--driver-opt", action="append", default=[], metavar="strings",
      help="driver options for the network")
    a("--ip", metavar="string", help="IPv4 address (e.g., 172.30.100.104)")
    a("--ip6", metavar="string", help="IPv6 address (e.g., 2001:db8::33)")
    a("--link", action="append", default=[], metavar="list",
      help="Add link to another container")
    a("--link-local-ip", action="append", default=[], metavar="strings",
      help="Add a link-local address for the container")
    a("network")
    a("container")
    ns = p.parse_args(args)
    ctx.engine.networks.connect(ns.network, ns.container, aliases=ns.alias, ip=ns.ip,
                                ip6=ns.ip6, links=ns.link)
    return 0


def _disconnect(ctx, args):
    p = ArgParser("network disconnect", "kade network disconnect [OPTIONS] NETWORK CONTAINER")
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the container to disconnect from a network")
    p.add_argument("network")
    p.add_argument("container")
    ns = p.parse_args(args)
    ctx.engine.networks.disconnect(ns.network, ns.container, force=ns.force)
    return 0
