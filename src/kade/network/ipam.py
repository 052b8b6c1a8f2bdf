"""Address management as docker's default IPAM does it: subnets from the address
pools (the first one that overlaps nothing), the gateway at the subnet's first host,
container addresses from the next free one up. Pure functions over what the caller
says is taken: the leases themselves are rows in SQLite (kade.metadata), so a crash
cannot leave them inconsistent with each other."""

from __future__ import annotations

import ipaddress

from kade.errors import Conflict, InvalidArgument, Unavailable


def overlaps(subnet: str, others) -> bool:
    net = ipaddress.ip_network(subnet, strict=False)
    for other in others:
        o = ipaddress.ip_network(other, strict=False)
        if o.version == net.version and net.overlaps(o):
            return True
    return False


def pick_subnet(pools, taken) -> str:
    """The first /size of the pools that overlaps none of `taken` (CIDRs)."""
    taken = [ipaddress.ip_network(t, strict=False) for t in taken]
    for base, size in pools:
        for candidate in ipaddress.ip_network(base).subnets(new_prefix=size):
            if not any(t.version == 4 and candidate.overlaps(t) for t in taken):
                return str(candidate)
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool "
                      "among the defaults to assign to the network")


def parse_subnet(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None


def gateway_for(subnet: str, gateway: str | None) -> str:
    net = ipaddress.ip_network(subnet)
    if not gateway:
        return str(next(iter(net.hosts())) if net.num_addresses > 2 else net.network_address)
    try:
        addr = ipaddress.ip_address(gateway)
    except ValueError:
        raise InvalidArgument(f"invalid gateway address {gateway}") from None
    if addr not in net:
        raise InvalidArgument(f"Invalid gateway {gateway} for subnet {subnet}... no matching "
                              "subnet")
    return gateway


def check_range(subnet: str, ip_range: str | None) -> str | None:
    if not ip_range:
        return None
    rng = ipaddress.ip_network(parse_subnet(ip_range))
    if not rng.subnet_of(ipaddress.ip_network(subnet)):
        raise InvalidArgument(f"Invalid ip-range {ip_range} for subnet {subnet}")
    return str(rng)


def allocate(subnet: str, gateway: str, used, ip_range: str | None = None,
             want: str | None = None) -> str:
    """A free address of subnet (within ip_range if given), or `want` if free."""
    net = ipaddress.ip_network(subnet)
    used = {ipaddress.ip_address(u) for u in used} | {ipaddress.ip_address(gateway)}
    if want:
        addr = ipaddress.ip_address(want)
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"no available IP address {want} in network subnet {subnet}")
        if addr in used:
            raise Conflict(f"Address already in use: {want}")
        return str(addr)
    pool = ipaddress.ip_network(ip_range) if ip_range else net
    for addr in pool.hosts() if pool.num_addresses > 2 else pool:
        if addr not in used and addr not in (net.network_address, net.broadcast_address):
            return str(addr)
    raise Unavailable(f"no available IPv{net.version} addresses on this network's address "
                      f"pools: {subnet}")


def prefixlen(subnet: str) -> int:
    return ipaddress.ip_network(subnet).prefixlen


def mac_for(ipv4: str) -> str:
    """docker's generated MAC: 02:42 and the IPv4 address's four bytes."""
    return "02:42:" + ":".join(f"{int(b):02x}" for b in ipv4.split("."))
