"""Networks: list, inspect, create, remove, connect, disconnect, prune (the CLI's
`network` verbs, through kade.engine.networks)."""

from __future__ import annotations

from typing import Any, Protocol

from kade.api.router import Context, Route, json_response, no_content
from kade.errors import InvalidArgument
from kade.registry.httpd import Response


class Backend(Protocol):
    def list_networks(self, filters: dict | None = None) -> list[dict]: ...

    def inspect(self, ref: str) -> dict: ...

    def create(self, name: str, driver: str = "bridge", subnets=(), gateways=(),
               ip_ranges=(), internal: bool = False, ipv6: bool = False, labels=None,
               options=None, attachable: bool = False) -> str: ...

    def remove(self, ref: str) -> str: ...

    def connect(self, ref: str, container: str, aliases=(), ip=None, ip6=None,
                links=()) -> None: ...

    def disconnect(self, ref: str, container: str, force: bool = False) -> None: ...

    def prune(self, flt=None) -> list[str]: ...


class EngineBackend:
    """`kade network`'s calls: Engine.list_networks and the engine's Networks."""

    def __init__(self, engine):
        self.list_networks = engine.list_networks
        nets = engine.networks
        self.inspect = nets.inspect
        self.create = nets.create
        self.remove = nets.remove
        self.connect = nets.connect
        self.disconnect = nets.disconnect
        self.prune = nets.prune


backend = EngineBackend


def routes() -> list[Route]:
    return [
        Route("GET", "/networks", list_),
        Route("POST", "/networks/create", create),
        Route("POST", "/networks/prune", prune),
        Route("GET", "/networks/{id}", inspect),
        Route("DELETE", "/networks/{id}", remove),
        Route("POST", "/networks/{id}/connect", connect),
        Route("POST", "/networks/{id}/disconnect", disconnect),
    ]


def list_(ctx: Context) -> Response:
    """docker lists networks as inspect shows them, minus the containers."""
    b: Backend = ctx.backend
    out = []
    for record in b.list_networks(ctx.filters()):
        record = {k: v for k, v in record.items() if k != "Private"}
        record["Containers"] = {}
        out.append(record)
    return json_response(out)


def inspect(ctx: Context) -> Response:
    b: Backend = ctx.backend
    return json_response(b.inspect(ctx.params["id"]))


def create(ctx: Context) -> Response:
    body = _object(ctx, "network create")
    name = body.get("Name")
    if not name or not isinstance(name, str):
        raise InvalidArgument("network create: a Name is required")
    subnets, gateways, ranges = _ipam(body.get("IPAM") or {})
    b: Backend = ctx.backend
    nid = b.create(name, body.get("Driver") or "bridge", subnets, gateways, ranges,
                   internal=bool(body.get("Internal")), ipv6=bool(body.get("EnableIPv6")),
                   labels=_str_map(body, "Labels"), options=_str_map(body, "Options"),
                   attachable=bool(body.get("Attachable")))
    return json_response({"Id": nid, "Warning": ""}, status=201)


def _ipam(ipam: Any) -> tuple[list, list, list]:
    """IPAM.Config's entries as the engine's aligned subnet/gateway/range lists."""
    if not isinstance(ipam, dict):
        raise InvalidArgument("network create: IPAM must be an object")
    if (ipam.get("Driver") or "default") != "default":
        raise InvalidArgument(f"network create: IPAM driver \"{ipam['Driver']}\" "
                              "is not supported (only \"default\")")
    subnets, gateways, ranges = [], [], []
    for entry in ipam.get("Config") or []:
        if not isinstance(entry, dict):
            raise InvalidArgument("network create: IPAM.Config entries must be objects")
        if not entry.get("Subnet"):
            raise InvalidArgument("every ip-range or gateway must have a corresponding "
                                  "subnet")
        subnets.append(entry["Subnet"])
        gateways.append(entry.get("Gateway") or None)
        ranges.append(entry.get("IPRange") or None)
    return subnets, gateways, ranges


def _object(ctx: Context, what: str) -> dict:
    body = ctx.json(default={}) or {}
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what}: the body must be a JSON object")
    return body


def _str_map(body: dict, key: str) -> dict:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"network create: {key} must be an object")
    return {str(k): str(v) for k, v in value.items()}


def remove(ctx: Context) -> Response:
    b: Backend = ctx.backend
    b.remove(ctx.params["id"])
    return no_content()


def connect(ctx: Context) -> Response:
    body = _object(ctx, "network connect")
    container = _container(body)
    ep = body.get("EndpointConfig") or {}
    if not isinstance(ep, dict):
        raise InvalidArgument("network connect: EndpointConfig must be an object")
    ipam = ep.get("IPAMConfig") or {}
    b: Backend = ctx.backend
    b.connect(ctx.params["id"], container, aliases=list(ep.get("Aliases") or []),
              ip=ipam.get("IPv4Address") or None, ip6=ipam.get("IPv6Address") or None,
              links=list(ep.get("Links") or []))
    return Response(200)


def disconnect(ctx: Context) -> Response:
    body = _object(ctx, "network disconnect")
    b: Backend = ctx.backend
    b.disconnect(ctx.params["id"], _container(body), force=bool(body.get("Force")))
    return Response(200)


def _container(body: dict) -> str:
    container = body.get("Container")
    if not container or not isinstance(container, str):
        raise InvalidArgument("a Container is required")
    return container


def prune(ctx: Context) -> Response:
    from kade.engine.prune import Filter
    raw = [f"{k}={v}" for k, values in ctx.filters().items() for v in values]
    b: Backend = ctx.backend
    return json_response({"NetworksDeleted": b.prune(Filter(raw))})
