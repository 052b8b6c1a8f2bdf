"""Kade's packet filter and NAT: one nftables table of its own, `inet kade`.

Nothing here reads or writes any other table: docker's, podman's and the host's
rules keep working beside Kade's. The table, as `ensure()` and the calls after it
leave it (B a Kade bridge, S its subnets, C:CP a container's address and port):

    table inet kade {
      set bridges { type ifname }                   every bridge that add_network set up
      chain guard       filter prerouting -300      iifname @bridges ip daddr 127.0.0.0/8 drop
      chain prerouting  nat prerouting    -100      fib daddr type local jump published
      chain output      nat output        -100      fib daddr type local jump published
      chain postrouting nat postrouting    100      jump masq
      chain forward     filter forward       0      jump internal
                                                    ct state established,related accept
                                                    ct status dnat accept     (published ports)
                                                    jump isolate; jump egress; jump ingress
      chain published   [ip daddr H] meta l4proto P th dport HP dnat ip to C:CP
                                                    comment "<key> <proto> <host_ip|*> <HP> <CP>"
      chain masq        ip saddr S oifname != B masquerade           (outbound)
                        oifname B fib saddr type local masquerade    (host and 127.0.0.1 to B)
                        oifname B ip saddr S ct status dnat masquerade   (hairpin within B)
      chain internal    iifname B oifname != B drop; oifname B iifname != B drop  (--internal)
      chain isolate     iifname B oifname @bridges oifname != B drop (and the reverse)
      chain egress      iifname B accept
      chain ingress     oifname B drop               (no unsolicited traffic from outside)
    }

Every rule of a network carries the comment "network B", every published port the
comment above, so `remove_network`/`unpublish` delete exactly those rules and
`networks()`/`published()` read the truth back from the kernel after any crash.
Each call is one nftables transaction: the kernel applies all of it or none.
Base chains hold only fixed rules, so `ensure()` rewrites them without touching the
rules that networks and containers added.

The semantics are docker's with its userland proxy off, and no proxy at all: DNAT
in prerouting (from outside) and in output (from the host itself, to any local
address: 127.0.0.1 and the host's own addresses); 127.0.0.1 works because the
bridge gets route_localnet=1 and the host's packets to it are masqueraded, as
docker does. route_localnet alone would let a container send packets to the host's
127.0.0.1 services through the bridge; the guard chain drops those. IPv6 has no
route_localnet: ::1 is never published (neither is it by docker without its proxy).
Where br_netfilter is loaded (docker loads it), a container's packet to a published
port of a container on its own bridge is bridged after the DNAT, back out of the
port it came in by for its own port: the bridge driver must set hairpin mode on each
container's bridge port (IFLA_BRPORT_MODE), as docker does without its proxy.

Other tables' verdicts still apply: nftables evaluates the base chains of every
table at a hook, and an accept here ends evaluation in this table only. On a host
whose forward policy is drop in another table (docker sets FORWARD to DROP), that
table must let Kade's bridges through, e.g. `iptables -I DOCKER-USER -i kade+ -j
ACCEPT` and `iptables -I DOCKER-USER -o kade+ -j ACCEPT` (Kade never edits it).

`redirect_dns` works in a container's namespace, in a table `ip kade` there.
"""

from __future__ import annotations

import os

from kade.errors import InvalidArgument
from kade.network.nft import Nft, NftError
from kade.network.ports import PortBinding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Firewall", "PortBinding"]

_FAMILY = "inet"
# name: (type, hook, priority); raw -300, dstnat -100, filter 0, srcnat 100
_BASE = {"guard": ("filter", "prerouting", -300), "prerouting": ("nat", "prerouting", -100),
         "output": ("nat", "output", -100), "postrouting": ("nat", "postrouting", 100),
         "forward": ("filter", "forward", 0)}
_NETWORK_CHAINS = ("masq", "internal", "isolate", "egress", "ingress")
_REGULAR = ("published", *_NETWORK_CHAINS)
_COMMENT_MAX = 128  # nft's limit on a rule comment
_CLONE_NEWNET = 0x40000000
DNS_ADDRESS = "127.0.0.11"


# --- expressions (nftables' JSON schema, libnftables-json(5)) ---------------------------


def _match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def _fib_type(address: str) -> dict:
    return {"fib": {"result": "type", "flags": [address]}}


def _prefix(network) -> dict:
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def _ip_proto(version: int) -> str:
    return "ip6" if version == 6 else "ip"


def _verdict(name: str) -> dict:
    return {name: None}


def _network_rules(bridge: str, subnets: list, internal: bool, masquerade: bool,
                   isolate: bool) -> list[tuple[str, list[dict]]]:
    """(chain, expressions) of one network's rules, in the order they must run."""
    iif, oif = _meta("iifname"), _meta("oifname")
    rules: list[tuple[str, list[dict]]] = []
    if internal:
        rules += [("internal", [_match(iif, bridge), _match(oif, bridge, "!="), _verdict("drop")]),
                  ("internal", [_match(oif, bridge), _match(iif, bridge, "!="), _verdict("drop")])]
    if isolate:
        rules += [("isolate", [_match(iif, bridge), _match(oif, "@bridges"),
                               _match(oif, bridge, "!="), _verdict("drop")]),
                  ("isolate", [_match(oif, bridge), _match(iif, "@bridges"),
                               _match(iif, bridge, "!="), _verdict("drop")])]
    if not internal:
        rules += _snat_rules(bridge, subnets, masquerade)
    rules += [("egress", [_match(iif, bridge), _verdict("accept")]),
              ("ingress", [_match(oif, bridge), _verdict("drop")])]
    return rules


def _snat_rules(bridge: str, subnets: list, masquerade: bool) -> list[tuple[str, list[dict]]]:
    oif, masq = _meta("oifname"), _verdict("masquerade")
    rules = []
    for net in subnets:
        saddr = _payload(_ip_proto(net.version), "saddr")
        if masquerade:
            rules.append(("masq", [_match(saddr, _prefix(net)), _match(oif, bridge, "!="), masq]))
        rules.append(("masq", [_match(oif, bridge), _match(saddr, _prefix(net)),
                               _match({"ct": {"key": "status"}}, "dnat", "in"), masq]))
    # the host's own packets (127.0.0.1 included) to a published port: the container
    # must answer the bridge's address, not its own loopback
    rules.append(("masq", [_match(oif, bridge), _match(_fib_type("saddr"), "local"), masq]))
    return rules


def _base_rules() -> list[tuple[str, list[dict]]]:
    local = _match(_fib_type("daddr"), "local")
    jump = {"jump": {"target": "published"}}
    loopback = _match(_payload("ip", "daddr"), {"prefix": {"addr": "127.0.0.0", "len": 8}})
    return [
        ("guard", [_match(_meta("iifname"), "@bridges"), loopback, _verdict("drop")]),
        ("prerouting", [local, jump]),
        ("output", [local, jump]),
        ("postrouting", [{"jump": {"target": "masq"}}]),
        ("forward", [{"jump": {"target": "internal"}}]),
        ("forward", [_match({"ct": {"key": "state"}}, ["established", "related"], "in"),
                     _verdict("accept")]),
        ("forward", [_match({"ct": {"key": "status"}}, "dnat", "in"), _verdict("accept")]),
        ("forward", [{"jump": {"target": "isolate"}}]),
        ("forward", [{"jump": {"target": "egress"}}]),
        ("forward", [{"jump": {"target": "ingress"}}]),
    ]


def _port_comment(key: str, b: PortBinding) -> str:
    return f"{key} {b.proto} {b.host_ip or '*'} {b.host_port} {b.container_port}"


def _parse_port_comment(comment: str) -> tuple[str, PortBinding] | None:
    parts = comment.split()
    if len(parts) != 5 or not parts[3].isdigit() or not parts[4].isdigit():
        return None
    key, proto, host_ip, host_port, container_port = parts
    return key, PortBinding("" if host_ip == "*" else host_ip, int(host_port),
                            int(container_port), proto)


def _dnat_rule(binding: PortBinding, address) -> list[dict] | None:
    """The DNAT expressions for one binding to one container address, or None when
    the binding's host address is of the other family."""
    version = address.version
    host_ip = binding.host_ip
    if host_ip and (":" in host_ip) != (version == 6):
        return None
    expr = [_match(_meta("nfproto"), "ipv6" if version == 6 else "ipv4")]
    if host_ip not in ("", "0.0.0.0", "::"):
        expr.append(_match(_payload(_ip_proto(version), "daddr"), host_ip))
    expr += [_match(_meta("l4proto"), binding.proto),
             _match(_payload("th", "dport"), binding.host_port),
             {"dnat": {"family": _ip_proto(version), "addr": str(address),
                       "port": binding.container_port}}]
    return expr


# --- the firewall ------------------------------------------------------------------------


class Firewall:
    """Kade's nftables table. `nft` makes an nftables context (tests pass a fake, or
    `lambda: Nft(use_library=False)`); it is called again inside other namespaces."""

    def __init__(self, table: str = "kade", *, nft: Callable[[], Nft] = Nft) -> None:
        self.table = table
        self._make_nft = nft
        self._nft: Nft | None = None
        self._ensured = False

    @property
    def nft(self) -> Nft:
        if self._nft is None:
            self._nft = self._make_nft()
        return self._nft

    def _obj(self, kind: str, **fields) -> dict:
        return {kind: {"family": _FAMILY, "table": self.table, **fields}}

    def _rule(self, chain: str, expr: list[dict], comment: str = "") -> dict:
        rule = self._obj("rule", chain=chain, expr=expr)
        if comment:
            rule["rule"]["comment"] = comment
        return {"add": rule}

    # --- the table ---

    def ensure(self) -> None:
        """Make the table, its set, chains and fixed rules; idempotent, and it repairs
        the fixed rules without touching those of networks and containers."""
        cmds = [{"add": {"table": {"family": _FAMILY, "name": self.table}}},
                {"add": self._obj("set", name="bridges", type="ifname")}]
        for name, (kind, hook, prio) in _BASE.items():
            cmds.append({"add": self._obj("chain", name=name, type=kind, hook=hook, prio=prio,
                                          policy="accept")})
            cmds.append({"flush": self._obj("chain", name=name)})
        cmds += [{"add": self._obj("chain", name=name)} for name in _REGULAR]
        cmds += [self._rule(chain, expr) for chain, expr in _base_rules()]
        self.nft.run(cmds)
        self._ensured = True

    def reset(self) -> None:
        """Delete Kade's table (prune, teardown); other tables stay as they are."""
        try:
            self.nft.run([{"delete": {"table": {"family": _FAMILY, "name": self.table}}}])
        except NftError as e:
            if not e.missing:
                raise
        self._ensured = False

    def _ready(self) -> None:
        if not self._ensured:
            self.ensure()

    def _listing(self) -> list[dict]:
        return self.nft.list_table(_FAMILY, self.table) or []

    def _transact(self, build: Callable[[list[dict]], list[dict]]) -> None:
        """Read the table, then apply build(listing) as one transaction; read again if
        another process removed a rule in between (the handles went stale)."""
        self._ready()
        for attempt in range(3):
            try:
                self.nft.run(build(self._listing()))
                return
            except NftError as e:
                if not e.missing or attempt == 2:
                    raise

    def _deletes(self, listing: list[dict], chains, keep: Callable[[str], bool]) -> list[dict]:
        """Delete commands for the rules in `chains` whose comment `keep` rejects."""
        return [{"delete": self._obj("rule", chain=r["chain"], handle=r["handle"])}
                for r in (item["rule"] for item in listing if "rule" in item)
                if r["chain"] in chains and not keep(r.get("comment", ""))]

    # --- networks ---

    def add_network(self, bridge: str, subnets: list[str], *, internal: bool,
                    masquerade: bool = True, isolate: bool = True) -> None:
        """Rules for one bridge (replacing any it had). Call it once the bridge exists:
        it also sets the bridge's route_localnet (for 127.0.0.1 ports) and turns on
        forwarding, as docker's bridge driver does."""
        _check_ifname(bridge)
        nets = _networks(subnets)
        if not internal and not os.path.isdir(f"/proc/sys/net/ipv4/conf/{bridge}"):
            raise InvalidArgument(f'bridge "{bridge}" does not exist')
        tag = f"network {bridge}"
        rules = _network_rules(bridge, nets, internal, masquerade, isolate)

        def build(listing: list[dict]) -> list[dict]:
            cmds = self._deletes(listing, _NETWORK_CHAINS, lambda c: c != tag)
            cmds.append({"add": self._obj("element", name="bridges", elem=[bridge])})
            return cmds + [self._rule(chain, expr, tag) for chain, expr in rules]
        self._transact(build)
        _network_sysctls(bridge, nets, internal)

    def remove_network(self, bridge: str) -> None:
        tag = f"network {bridge}"

        def build(listing: list[dict]) -> list[dict]:
            cmds = self._deletes(listing, _NETWORK_CHAINS, lambda c: c != tag)
            if bridge in _set_elements(listing, "bridges"):
                cmds.append({"delete": self._obj("element", name="bridges", elem=[bridge])})
            return cmds
        self._transact(build)

    def networks(self) -> list[str]:
        """The bridges that have rules, as the kernel says."""
        return sorted(_set_elements(self._listing(), "bridges"))

    # --- published ports ---

    def publish(self, key: str, bridge: str, container_ips: list[str],
                ports: list[PortBinding]) -> None:
        """DNAT each port to the container's address of the same family (replacing the
        key's previous rules). `key` is the container id; `bridge` names its network,
        which forwards published traffic by the ct status dnat rule."""
        import ipaddress
        if not 0 < len(key) <= 64 or len(key.split()) != 1 or not key.isprintable():
            raise InvalidArgument(f"cannot publish for {key!r}: not a container id")
        addresses = [ipaddress.ip_address(ip) for ip in container_ips]
        rules = []
        for binding in ports:
            comment = _port_comment(key, binding)
            if len(comment) > _COMMENT_MAX or binding.proto not in ("tcp", "udp", "sctp"):
                raise InvalidArgument(f"cannot publish {binding}")
            for address in addresses:
                expr = _dnat_rule(binding, address)
                if expr is not None:
                    rules.append(self._rule("published", expr, comment))

        def build(listing: list[dict]) -> list[dict]:
            return self._deletes(listing, ("published",), lambda c: c.split(" ", 1)[0] != key) \
                + rules
        self._transact(build)

    def unpublish(self, key: str) -> None:
        self._transact(lambda listing: self._deletes(
            listing, ("published",), lambda c: c.split(" ", 1)[0] != key))

    def published(self) -> dict[str, list[PortBinding]]:
        """Every key's bindings, as the rules in the kernel say (for reconcile, prune)."""
        result: dict[str, list[PortBinding]] = {}
        for item in self._listing():
            rule = item.get("rule")
            if rule and rule["chain"] == "published":
                parsed = _parse_port_comment(rule.get("comment", ""))
                if parsed and parsed[1] not in result.setdefault(parsed[0], []):
                    result[parsed[0]].append(parsed[1])
        return result

    # --- inside a container ---

    def redirect_dns(self, netns_fd: int, udp_port: int, tcp_port: int) -> None:
        """In the namespace of netns_fd: 127.0.0.11:53 (udp, tcp) goes to the embedded
        DNS server's sockets on 127.0.0.11:<port>, as docker's DOCKER_OUTPUT rules do,
        so the container may still bind :53 itself. Replies get :53 back from
        conntrack. Idempotent."""
        cmds = [{"add": {"table": {"family": "ip", "name": self.table}}},
                {"add": {"chain": {"family": "ip", "table": self.table, "name": "output",
                                   "type": "nat", "hook": "output", "prio": -100,
                                   "policy": "accept"}}},
                {"flush": {"chain": {"family": "ip", "table": self.table, "name": "output"}}}]
        for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
            cmds.append({"add": {"rule": {"family": "ip", "table": self.table, "chain": "output",
                                          "expr": [
                _match(_payload("ip", "daddr"), DNS_ADDRESS),
                _match(_payload(proto, "dport"), 53),
                {"dnat": {"addr": DNS_ADDRESS, "port": port}}]}}})
        make = self._make_nft
        _in_netns(netns_fd, lambda: make().run(cmds))


# --- helpers -----------------------------------------------------------------------------


def _check_ifname(name: str) -> None:
    if not name or len(name) > 15 or any(c in name for c in '/ \t\n"\\') or not name.isascii():
        raise InvalidArgument(f'invalid bridge name "{name}"')


def _networks(subnets: list[str]) -> list:
    import ipaddress
    try:
        return [ipaddress.ip_network(s, strict=False) for s in subnets]
    except ValueError as e:
        raise InvalidArgument(f"invalid subnet: {e}") from None


def _set_elements(listing: list[dict], name: str) -> list[str]:
    for item in listing:
        if "set" in item and item["set"]["name"] == name:
            return [e if isinstance(e, str) else str(e) for e in item["set"].get("elem", [])]
    return []


def _write_sysctl(path: str, value: str) -> None:
    """Write a /proc/sys value unless it is already set (a read is cheaper than a
    write and works where /proc/sys is read-only and already right)."""
    with open(path, "r+") as f:
        if f.read().strip() != value:
            f.seek(0)
            f.write(value)


def _network_sysctls(bridge: str, nets: list, internal: bool) -> None:
    if internal:
        return
    if any(n.version == 4 for n in nets):
        _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        _write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    if any(n.version == 6 for n in nets):
        _write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")


def _setns(fd: int, nstype: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12
        os.setns(fd, nstype)
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _in_netns(fd: int, work: Callable[[], object]) -> None:
    """Run work in a thread that joined the network namespace of fd: setns moves
    only the calling thread, and this one ends with the work, so no other code
    ever runs in that namespace by mistake."""
    import threading
    failure: list[BaseException] = []

    def body() -> None:
        try:
            _setns(fd, _CLONE_NEWNET)
            work()
        except BaseException as e:  # noqa: B036 - handed to the caller's thread
            failure.append(e)
    thread = threading.Thread(target=body, name="kade-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
