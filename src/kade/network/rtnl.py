"""A small rtnetlink client: the few route-netlink requests the bridge driver makes
(links, addresses, default routes), over a raw AF_NETLINK socket with struct packing.

Why not pyroute2 (the project prefers well-kept libraries): importing it loads ~290
modules (asyncio, ssl, lzma among them), measured at ~16.5 MB of PSS in every
supervisor worker whose container joins a bridge network, the default network
included, and a worker lives as long as its container. Kade's memory aim is conmon's
0.36 MiB per container, so the driver's dozen requests are written out here, and
tests/unit/network/test_rtnl.py decodes what this module encodes with pyroute2's own
parsers (pyroute2 is a test dependency only); tests/integration/network/
test_rtnl_netns.py reads back with pyroute2 what this module made in a namespace.

One Rtnl is one socket, bound in the namespace of the thread that made it (a netlink
socket keeps that namespace); it is not for concurrent use. Every request asks for an
ACK; a NLMSG_ERROR answer raises OSError with the kernel's errno, its strerror, and
the request as its filename ("[Errno 17] File exists: 'netlink: add bridge kade0'").
"""

from __future__ import annotations

import errno as _errno
import os
import _socket as socket  # not socket.py: it loads selectors, enum wrappers
import struct

# netlink message header and flags (linux/netlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLA_F_NESTED = 0x8000

# message types (linux/rtnetlink.h)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

# link attributes (linux/if_link.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD = 12, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFF_UP = 0x1

# address and route attributes (linux/if_addr.h, linux/rtnetlink.h)
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1  # static: as pyroute2

_HDR = struct.Struct("=IHHII")        # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")    # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")     # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table,
#                                       protocol, scope, type, flags
_ATTR = struct.Struct("=HH")          # rtattr: len, type


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes (the length excludes the padding)."""
    size = _ATTR.size + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (_align(size) - size)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def mac(kind: int, value: str) -> bytes:
    return attr(kind, bytes.fromhex(value.replace(":", "")))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = 0) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


def parse_attrs(data: bytes | memoryview, offset: int = 0) -> dict[int, bytes]:
    """Attributes from offset on, by type (nested flag cleared); the first of a type wins."""
    out: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        size, kind = _ATTR.unpack_from(data, offset)
        if size < _ATTR.size:
            break
        out.setdefault(kind & ~NLA_F_NESTED, bytes(data[offset + _ATTR.size:offset + size]))
        offset += _align(size)
    return out


def cstr(value: bytes | None) -> str | None:
    return None if value is None else value.split(b"\0", 1)[0].decode()


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


# -- requests: the bodies (after nlmsghdr) the driver sends -------------------------

def add_bridge_body(name: str) -> bytes:
    return ifinfo() + string(IFLA_IFNAME, name) + nested(IFLA_LINKINFO,
                                                         string(IFLA_INFO_KIND, "bridge"))


def set_link_body(index: int, mtu: int | None = None, up: bool | None = None) -> bytes:
    body = ifinfo(index, IFF_UP if up else 0, IFF_UP if up is not None else 0)
    return body + (u32(IFLA_MTU, mtu) if mtu is not None else b"")


def add_veth_body(name: str, mtu: int, master: int, peer: str, peer_netns_fd: int,
                  peer_mtu: int, peer_mac: str | None = None) -> bytes:
    """The host side up, enslaved to master; the peer made directly in the namespace of
    peer_netns_fd, with its MAC if given (one request, so no half-made pair exists)."""
    peer_attrs = (string(IFLA_IFNAME, peer) + u32(IFLA_NET_NS_FD, peer_netns_fd)
                  + u32(IFLA_MTU, peer_mtu) + (mac(IFLA_ADDRESS, peer_mac) if peer_mac else b""))
    info = nested(IFLA_LINKINFO, string(IFLA_INFO_KIND, "veth"),
                  nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, ifinfo() + peer_attrs)))
    return (ifinfo(0, IFF_UP, IFF_UP) + string(IFLA_IFNAME, name) + u32(IFLA_MTU, mtu)
            + u32(IFLA_MASTER, master) + info)


def hairpin_body(index: int, on: bool = True) -> bytes:
    """A bridge port's hairpin mode (`bridge link set dev X hairpin on`): RTM_SETLINK
    in the AF_BRIDGE family, IFLA_PROTINFO carrying IFLA_BRPORT_MODE."""
    return (ifinfo(index, family=socket.AF_BRIDGE)
            + nested(IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([int(on)]))))


def add_addr_body(index: int, address: str, prefixlen: int, flags: int = 0) -> bytes:
    family = _family(address)
    raw = socket.inet_pton(family, address)
    body = _IFADDR.pack(family, prefixlen, flags, RT_SCOPE_UNIVERSE, index)
    return body + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)


def add_default_route_body(gateway: str, oif: int) -> bytes:
    family = _family(gateway)
    body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE,
                       RTN_UNICAST, 0)
    return body + attr(RTA_GATEWAY, socket.inet_pton(family, gateway)) + u32(RTA_OIF, oif)


class Rtnl:
    """A route-netlink socket in the namespace of the thread that makes it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the exchange -------------------------------------------------------------

    def request(self, kind: int, body: bytes, flags: int = 0, what: str = "") -> list:
        """Send one message; return the answers' (type, payload) until the ACK (or,
        for a dump, NLMSG_DONE). NLMSG_ERROR with an errno raises OSError."""
        self.seq = self.seq % 0xFFFFFFFF + 1
        seq = self.seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0)
                       + body)
        out = []
        while True:
            data, _, mflags, _ = self.sock.recvmsg(1 << 16)
            if mflags & socket.MSG_TRUNC:  # never seen: the kernel's dump parts are ~32 KB
                raise OSError(_errno.EMSGSIZE, os.strerror(_errno.EMSGSIZE), f"netlink: {what}")
            offset = 0
            while offset + _HDR.size <= len(data):
                size, mtype, mflags, mseq, _ = _HDR.unpack_from(data, offset)
                if size < _HDR.size:
                    raise OSError(_errno.EPROTO, f"netlink {what}: malformed answer")
                payload = data[offset + _HDR.size:offset + size]
                offset += _align(size)
                if mseq != seq:
                    continue  # a stale answer to an earlier, abandoned request
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(err, os.strerror(err), f"netlink: {what}")
                    return out  # the ACK
                if mtype == NLMSG_DONE:
                    return out
                out.append((mtype, payload))
                if not (mflags & NLM_F_MULTI) and not (flags & NLM_F_ACK):
                    return out

    # -- links --------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The index of the link called name in this namespace, or None."""
        try:
            got = self.request(RTM_GETLINK, ifinfo() + string(IFLA_IFNAME, name),
                               what=f"get link {name}")
        except OSError as e:
            if e.errno in (_errno.ENODEV, _errno.ENOENT):
                return None
            raise
        return _IFINFO.unpack_from(got[0][1])[2] if got else None

    def links(self) -> list[dict]:
        """Every link: index, flags, and its attributes by type."""
        out = []
        for _, p in self.request(RTM_GETLINK, ifinfo(), NLM_F_DUMP, "dump links"):
            _, _, idx, flags, _ = _IFINFO.unpack_from(p)
            attrs = parse_attrs(p, _IFINFO.size)
            out.append({"index": idx, "flags": flags, "ifname": cstr(attrs.get(IFLA_IFNAME)),
                        "attrs": attrs})
        return out

    def add_bridge(self, name: str) -> None:
        self.request(RTM_NEWLINK, add_bridge_body(name),
                     NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, f"add bridge {name}")

    def add_veth(self, name: str, mtu: int, master: int, peer: str, peer_netns_fd: int,
                 peer_mtu: int, peer_mac: str | None = None) -> None:
        self.request(RTM_NEWLINK,
                     add_veth_body(name, mtu, master, peer, peer_netns_fd, peer_mtu, peer_mac),
                     NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, f"add veth {name}")

    def set_link(self, index: int, mtu: int | None = None, up: bool | None = None) -> None:
        self.request(RTM_NEWLINK, set_link_body(index, mtu, up), NLM_F_ACK,
                     f"set link {index}")

    def del_link(self, index: int) -> None:
        self.request(RTM_DELLINK, ifinfo(index), NLM_F_ACK, f"delete link {index}")

    def set_hairpin(self, index: int, on: bool = True) -> None:
        self.request(RTM_SETLINK, hairpin_body(index, on), NLM_F_ACK, f"hairpin {index}")

    # -- addresses and routes -----------------------------------------------------

    def addrs(self, index: int | None = None) -> list[tuple[str, int]]:
        """(address, prefixlen) of every address, or of the link index's only."""
        out = []
        for _, p in self.request(RTM_GETADDR, _IFADDR.pack(0, 0, 0, 0, 0), NLM_F_DUMP,
                                 "dump addresses"):
            family, plen, _, _, idx = _IFADDR.unpack_from(p)
            attrs = parse_attrs(p, _IFADDR.size)
            raw = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
            if raw and (index is None or idx == index):
                out.append((socket.inet_ntop(family, raw), plen))
        return out

    def add_addr(self, index: int, address: str, prefixlen: int, flags: int = 0) -> None:
        self.request(RTM_NEWADDR, add_addr_body(index, address, prefixlen, flags),
                     NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     f"add address {address}/{prefixlen}")

    def add_default_route(self, gateway: str, oif: int) -> None:
        self.request(RTM_NEWROUTE, add_default_route_body(gateway, oif),
                     NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, f"add default route via {gateway}")

    def routes(self, family: int = socket.AF_INET) -> list[dict]:
        """The main table's routes of a family: dst (CIDR), gateway, oif."""
        out = []
        for _, p in self.request(RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0),
                                 NLM_F_DUMP, "dump routes"):
            fam, dst_len, _, _, table, _, _, _, _ = _RTMSG.unpack_from(p)
            attrs = parse_attrs(p, _RTMSG.size)
            if table != RT_TABLE_MAIN:
                continue
            dst = attrs.get(RTA_DST)
            gw = attrs.get(RTA_GATEWAY)
            oif = attrs.get(RTA_OIF)
            out.append({
                "dst": f"{socket.inet_ntop(fam, dst) if dst else _any(fam)}/{dst_len}",
                "gateway": socket.inet_ntop(fam, gw) if gw else None,
                "oif": struct.unpack("=I", oif)[0] if oif else None})
        return out


def _any(family: int) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"
