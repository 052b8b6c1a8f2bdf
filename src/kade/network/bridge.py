"""The bridge driver (docker's `bridge`): a Linux bridge per network, a veth pair per
container and network, addresses and routes set over netlink (pyroute2).

What lives where, and what a crash can leave:
- the bridge (`kade0` for the default network, `kade-<id[:12]>` or the network's
  `com.docker.network.bridge.name`) exists while the network does: the engine records
  a network before it makes its bridge and deletes the bridge before the record, so
  a kill in between leaves a record whose bridge `create` (idempotent, run again at
  every join) makes, or that `rm` removes again;
- the veth is made with its peer already in the container's namespace (one netlink
  request), so no half-made pair exists; it dies with that namespace. Its host side
  is named `kv<container id[:10]><n:02x>`, so `sweep` can tell whose it is when a
  killed supervisor left a namespace alive (a created, never started init).
"""

from __future__ import annotations

import ipaddress

from kade.errors import InvalidArgument, Unavailable
from kade.network import netlink
from kade.network.driver import Endpoint, Network

IFA_F_NODAD = 0x02
LOOPBACK_IFINDEX = 1  # lo's in every namespace (the kernel's LOOPBACK_IFINDEX)
VETH_PREFIX = "kv"


def host_ifname(cid: str, n: int) -> str:
    return f"{VETH_PREFIX}{cid[:10]}{n:02x}"


def veth_owner(ifname: str) -> str | None:
    """The container id prefix a host veth name carries, or None if not ours."""
    if ifname.startswith(VETH_PREFIX) and len(ifname) == 14:
        return ifname[2:12]
    return None


class BridgeDriver:
    needs_firewall = True

    def create(self, net: Network) -> None:
        if len(net.bridge) > 15:
            raise InvalidArgument(f'bridge name "{net.bridge}" is longer than 15 characters')
        with netlink.host() as ipr:
            idx = netlink.index(ipr, net.bridge)
            if idx is None:
                try:
                    ipr.link("add", ifname=net.bridge, kind="bridge")
                except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError and others
                    if netlink.index(ipr, net.bridge) is None:
                        raise Unavailable(f"cannot create bridge {net.bridge}: {e}") from None
                idx = netlink.index(ipr, net.bridge)
            ipr.link("set", index=idx, mtu=net.mtu)
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx)}
            for sub in net.subnets:
                plen = ipaddress.ip_network(sub.subnet).prefixlen
                if (sub.gateway, plen) not in have:
                    ipr.addr("add", index=idx, address=sub.gateway, prefixlen=plen,
                             flags=IFA_F_NODAD if ":" in sub.gateway else 0)
            ipr.link("set", index=idx, state="up")
        if not net.internal:
            netlink.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            if net.ipv6:
                netlink.write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")

    def delete(self, net: Network) -> None:
        with netlink.host() as ipr:
            idx = netlink.index(ipr, net.bridge)
            if idx is not None:
                _quietly(ipr.link, "del", index=idx)

    def join(self, net: Network, ep: Endpoint, netns_fd: int) -> None:
        with netlink.host() as ipr:
            bridge = netlink.index(ipr, net.bridge)
            if bridge is None:
                raise Unavailable(f"bridge {net.bridge} of network {net.name} is missing")
            try:
                _add_veth(ipr, ep, bridge, netns_fd)
            except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError and others
                old = netlink.index(ipr, ep.host_ifname)
                if old is None:
                    raise Unavailable(f"cannot create the veth pair for network {net.name}: "
                                      f"{e}") from None
                _quietly(ipr.link, "del", index=old)  # a previous run's: its netns lives on
                try:
                    _add_veth(ipr, ep, bridge, netns_fd)
                except Exception as e:  # noqa: BLE001
                    raise Unavailable(f"cannot create the veth pair for network {net.name}: "
                                      f"{e}") from None
            # hairpin: a container reaching its own published port through the host
            # (br_netfilter's DNAT) gets the packet back out of the port it came by
            _quietly(ipr.brport, "set", index=netlink.index(ipr, ep.host_ifname), mode=1)
        netlink.in_netns(netns_fd, lambda ns: _configure_inside(ns, ep))

    def leave(self, net: Network, ep: Endpoint) -> None:
        with netlink.host() as ipr:
            idx = netlink.index(ipr, ep.host_ifname)
            if idx is not None:
                _quietly(ipr.link, "del", index=idx)

    def sweep(self, keep: set[str]) -> None:
        """Delete the host veths of ours whose owner (an id prefix) is not in keep."""
        with netlink.host() as ipr:
            for link in ipr.get_links():
                name = link.get_attr("IFLA_IFNAME") or ""
                owner = veth_owner(name)
                if owner is not None and owner not in keep:
                    _quietly(ipr.link, "del", index=link["index"])


def _add_veth(ipr, ep: Endpoint, bridge: int, netns_fd: int) -> None:
    """The pair in one request: the host side enslaved and up, the peer in the
    container's namespace with its MAC (each netlink round trip through pyroute2 costs
    ~0.5 ms or more, on the path of every container start)."""
    peer = {"ifname": ep.ifname, "net_ns_fd": netns_fd, "mtu": ep.mtu}
    if ep.mac:
        peer["address"] = ep.mac
    ipr.link("add", ifname=ep.host_ifname, kind="veth", mtu=ep.mtu, master=bridge,
             state="up", peer=peer)


def _configure_inside(ipr, ep: Endpoint) -> None:
    ipr.link("set", index=LOOPBACK_IFINDEX, state="up")
    idx = netlink.index(ipr, ep.ifname)
    for cidr in (ep.ipv4, ep.ipv6):
        if cidr:
            addr, _, plen = cidr.partition("/")
            ipr.addr("add", index=idx, address=addr, prefixlen=int(plen),
                     flags=IFA_F_NODAD if ":" in addr else 0)
    ipr.link("set", index=idx, state="up")
    if ep.gateway4:
        ipr.route("add", dst="0.0.0.0/0", gateway=ep.gateway4, oif=idx)
    if ep.gateway6:
        ipr.route("add", dst="::/0", gateway=ep.gateway6, oif=idx, family=10)


def _quietly(fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except Exception:  # noqa: BLE001 - gone already: what we wanted
        pass
