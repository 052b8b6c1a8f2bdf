"""The network driver interface, and the two drivers that need no host resources.

A driver knows how to give a container an interface on one network. It never
decides policy (which address, which networks, which ports): the engine does, with
kade.network.ipam, and hands the driver plain values:

    net = Network(id=..., name="mynet", driver="bridge", bridge="kade-1a2b3c4d5e6f",
                  subnets=(Subnet("172.18.0.0/16", "172.18.0.1"),), mtu=1500)
    ep = Endpoint(ifname="eth0", host_ifname="veth1a2b3c4", ipv4="172.18.0.2/16",
                  mac="02:42:ac:12:00:02", gateway4="172.18.0.1")
    driver.create(net)            # idempotent: host-side resources (the bridge)
    driver.join(net, ep, netns)   # the container's interface, inside its netns (an fd)
    driver.leave(net, ep)         # the host side of the interface goes
    driver.delete(net)            # the network's host-side resources go
    driver.sweep(keep)            # host resources of networks not in `keep` go (crash)

Every method must be idempotent and must tolerate what a killed process left half
done: the next supervisor start and `network prune` call `sweep`. A rootless driver
(pasta, slirp4netns) implements the same five methods: `join` starts its helper
against the netns, `leave` stops it; it needs no bridge and no firewall, so it
returns `needs_firewall = False` and the engine skips the nftables part.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple, Protocol
else:
    from kade.util.namedtuple import NamedTuple
    Protocol = object


class Subnet(NamedTuple):
    subnet: str                 # "172.18.0.0/16" or "fd00::/64"
    gateway: str                # "172.18.0.1"
    ip_range: str | None = None


class Network(NamedTuple):
    id: str
    name: str
    driver: str
    bridge: str = ""
    subnets: tuple = ()         # of Subnet
    mtu: int = 1500
    internal: bool = False
    ipv6: bool = False


class Endpoint(NamedTuple):
    ifname: str                 # inside the container: eth0, eth1, ...
    host_ifname: str            # the veth's host side
    ipv4: str | None = None     # "172.18.0.2/16"
    ipv6: str | None = None     # "fd00::2/64"
    mac: str = ""
    gateway4: str | None = None  # None: no default route through this network
    gateway6: str | None = None
    mtu: int = 1500


class Driver(Protocol):
    needs_firewall: bool

    def create(self, net: Network) -> None: ...
    def delete(self, net: Network) -> None: ...
    def join(self, net: Network, ep: Endpoint, netns_fd: int) -> None: ...
    def leave(self, net: Network, ep: Endpoint) -> None: ...
    def sweep(self, keep: set[str]) -> None: ...


class NullDriver:
    """`host` and `none`: the container shares the host's netns, or has only its lo
    (which the engine brings up, as for every container with a netns of its own)."""
    needs_firewall = False

    def create(self, net: Network) -> None:
        pass

    def delete(self, net: Network) -> None:
        pass

    def join(self, net: Network, ep: Endpoint, netns_fd: int) -> None:
        pass

    def leave(self, net: Network, ep: Endpoint) -> None:
        pass

    def sweep(self, keep: set[str]) -> None:
        pass


_DRIVERS: dict = {}


def get(name: str) -> Driver:
    """The driver called `name` (one instance per process)."""
    if name not in _DRIVERS:
        if name == "bridge":
            from kade.network.bridge import BridgeDriver
            _DRIVERS[name] = BridgeDriver()
        elif name in ("host", "null", "none"):
            _DRIVERS[name] = NullDriver()
        else:
            from kade.errors import NotFound
            raise NotFound(f'plugin "{name}" not found')
    return _DRIVERS[name]
