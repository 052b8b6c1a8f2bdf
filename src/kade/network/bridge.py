"""The bridge driver (docker's `bridge`): a Linux bridge per network, a veth pair per
container and network, addresses and routes set over netlink (kade.network.rtnl).

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
                    ipr.add_bridge(net.bridge)
                except OSError as e:
                    if netlink.index(ipr, net.bridge) is None:
                        raise Unavailable(f"cannot create bridge {net.bridge}: "
                                          f"{e.strerror or e}") from None
                idx = netlink.index(ipr, net.bridge)
            ipr.set_link(idx, mtu=net.mtu)
            have = set(ipr.addrs(idx))
            for sub in net.subnets:
                plen = ipaddress.ip_network(sub.subnet).prefixlen
                if (sub.gateway, plen) not in have:
                    ipr.add_addr(idx, sub.gateway, plen,
                                 IFA_F_NODAD if ":" in sub.gateway else 0)
            ipr.set_link(idx, up=True)
        if not net.internal:
            netlink.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
            if net.ipv6:
                netlink.write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")

    def delete(self, net: Network) -> None:
        with netlink.host() as ipr:
            idx = netlink.index(ipr, net.bridge)
            if idx is not None:
                _quietly(ipr.del_link, idx)

    def join(self, net: Network, ep: Endpoint, netns_fd: int) -> None:
        with netlink.host() as ipr:
            bridge = netlink.index(ipr, net.bridge)
            if bridge is None:
                raise Unavailable(f"bridge {net.bridge} of network {net.name} is missing")
            try:
                _add_veth(ipr, ep, bridge, netns_fd)
            except OSError as e:
                old = netlink.index(ipr, ep.host_ifname)
                if old is None:
                    raise Unavailable(f"cannot create the veth pair for network {net.name}: "
                                      f"{e.strerror or e}") from None
                _quietly(ipr.del_link, old)  # a previous run's: its netns lives on
                try:
                    _add_veth(ipr, ep, bridge, netns_fd)
                except OSError as e:
                    raise Unavailable(f"cannot create the veth pair for network {net.name}: "
                                      f"{e.strerror or e}") from None
            # hairpin: a container reaching its own published port through the host
            # (br_netfilter's DNAT) gets the packet back out of the port it came by
            port = netlink.index(ipr, ep.host_ifname)
            if port is not None:
                _quietly(ipr.set_hairpin, port)
        netlink.in_netns(netns_fd, lambda ns: _configure_inside(ns, ep))

    def leave(self, net: Network, ep: Endpoint) -> None:
        with netlink.host() as ipr:
            idx = netlink.index(ipr, ep.host_ifname)
            if idx is not None:
                _quietly(ipr.del_link, idx)

    def sweep(self, keep: set[str]) -> None:
        """Delete the host veths of ours whose owner (an id prefix) is not in keep."""
        with netlink.host() as ipr:
            for link in ipr.links():
                owner = veth_owner(link["ifname"] or "")
                if owner is not None and owner not in keep:
                    _quietly(ipr.del_link, link["index"])


def _add_veth(ipr, ep: Endpoint, bridge: int, netns_fd: int) -> None:
    """The pair in one request: the host side enslaved and up, the peer in the
    container's namespace with its MAC (one netlink round trip less on the path of
    every container start)."""
    ipr.add_veth(ep.host_ifname, ep.mtu, bridge, ep.ifname, netns_fd, ep.mtu, ep.mac or None)


def _configure_inside(ipr, ep: Endpoint) -> None:
    ipr.set_link(LOOPBACK_IFINDEX, up=True)
    idx = netlink.index(ipr, ep.ifname)
    for cidr in (ep.ipv4, ep.ipv6):
        if cidr:
            addr, _, plen = cidr.partition("/")
            ipr.add_addr(idx, addr, int(plen), IFA_F_NODAD if ":" in addr else 0)
    ipr.set_link(idx, up=True)
    if ep.gateway4:
        ipr.add_default_route(ep.gateway4, idx)
    if ep.gateway6:
        ipr.add_default_route(ep.gateway6, idx)


def _quietly(fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except OSError:  # gone already: what we wanted
        pass
