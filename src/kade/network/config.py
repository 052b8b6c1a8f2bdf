"""daemon.json's network settings, docker's names and meaning:

    {"bip": "172.17.0.1/16",          the default bridge's gateway and subnet
     "mtu": 1500,                     every bridge's and veth's MTU
     "default-address-pools": [{"base": "172.17.0.0/16", "size": 16}, ...],
     "ipv6": true,                    the default bridge has IPv6 too (docker's
     "fixed-cidr-v6": "fd00:1::/64",  --ipv6, --fixed-cidr-v6): addresses from this
                                      subnet, gateway its first host; ignored without
                                      "ipv6", as dockerd ignores it
     "bridge": "none",                no default bridge: `run` gets only lo, as
                                      dockerd --bridge=none (the test suite's roots)
     "dns": ["192.0.2.53", "127.0.0.1:5353"]}   the resolvers the embedded DNS
                                      forwards to (default: the host's); a port may follow

read from `<root>/daemon.json`, else the file $KADE_DAEMON_CONFIG names, else
/etc/kade/daemon.json; missing means docker's defaults. A malformed file is an error
naming it, not a silent default. (The test suite sets KADE_DAEMON_CONFIG to a
`"bridge": "none"` file, so no root of its own ever makes a bridge in the host's
network namespace unless a test gives it a namespace of its own.)
"""

from __future__ import annotations

import ipaddress
import os

from kade.errors import InvalidArgument

SYSTEM_CONFIG = "/etc/kade/daemon.json"
DEFAULT_BRIDGE = "kade0"
# docker 20.10's (libnetwork/ipamutils): 172.17-31/16 whole, then 192.168/16 in /20s
DEFAULT_POOLS = tuple([(f"172.{n}.0.0/16", 16) for n in range(17, 32)] + [("192.168.0.0/16", 20)])


class NetConfig:
    __slots__ = ("bip", "mtu", "pools", "bridge", "dns", "ipv6", "fixed_cidr_v6")

    def __init__(self, bip: str | None = None, mtu: int = 1500,
                 pools: tuple = DEFAULT_POOLS, bridge: str = DEFAULT_BRIDGE, dns=(),
                 ipv6: bool = False, fixed_cidr_v6: str | None = None):
        self.bip, self.mtu, self.pools, self.bridge = bip, mtu, pools, bridge
        self.dns = tuple(dns)
        self.ipv6, self.fixed_cidr_v6 = ipv6, fixed_cidr_v6


def load(root: str) -> NetConfig:
    for path in (os.path.join(root, "daemon.json"),
                 os.environ.get("KADE_DAEMON_CONFIG") or SYSTEM_CONFIG):
        if os.path.exists(path):
            return parse(path)
    return NetConfig()


def parse(path: str) -> NetConfig:
    import json
    try:
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return NetConfig(bip=_bip(data.get("bip")), mtu=_mtu(data.get("mtu", 1500)),
                         pools=_pools(data.get("default-address-pools")),
                         bridge=str(data.get("bridge") or DEFAULT_BRIDGE),
                         dns=[str(d) for d in data.get("dns") or ()],
                         ipv6=_bool("ipv6", data.get("ipv6", False)),
                         fixed_cidr_v6=_cidr_v6(data.get("fixed-cidr-v6")))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise InvalidArgument(f"unable to configure the daemon with file {path}: {e}") from None


def _bip(value) -> str | None:
    if value in (None, ""):
        return None
    iface = ipaddress.ip_interface(value)  # ValueError names the bad value
    if iface.version != 4:
        raise ValueError(f"bip must be an IPv4 address with a prefix: {value}")
    return str(iface)


def _bool(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _cidr_v6(value) -> str | None:
    if value in (None, ""):
        return None
    net = ipaddress.ip_network(value, strict=False)  # ValueError names the bad value
    if net.version != 6:
        raise ValueError(f"fixed-cidr-v6 must be an IPv6 subnet: {value}")
    return str(net)


def _mtu(value) -> int:
    mtu = int(value)
    if not 68 <= mtu <= 65535:
        raise ValueError(f"invalid mtu {value}")
    return mtu


def _pools(value) -> tuple:
    if not value:
        return DEFAULT_POOLS
    out = []
    for pool in value:
        base, size = ipaddress.ip_network(pool["base"]), int(pool["size"])
        if size < base.prefixlen:
            raise ValueError(f"invalid pool {pool}: size smaller than the base's prefix")
        out.append((str(base), size))
    return tuple(out)
