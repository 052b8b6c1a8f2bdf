"""Netlink through kade.network.rtnl: one socket in the caller's namespace, and short-lived
threads for work inside a container's namespace (a netlink socket keeps the namespace
it was made in; the thread that made it setns-es there and ends, so no thread of ours
stays in a container's namespace)."""

from __future__ import annotations

import os
import threading

from kade.errors import Unavailable

_CLONE_NEWNET = 0x40000000
_libc = None
_host = None
_host_lock = threading.Lock()


class HostLinks:
    """The process's netlink socket in its own namespace, serialised (one Rtnl is not
    for concurrent use)."""

    def __init__(self) -> None:
        from kade.network.rtnl import Rtnl
        self.ipr = Rtnl()
        self.lock = threading.Lock()

    def __enter__(self):
        self.lock.acquire()
        return self.ipr

    def __exit__(self, *exc) -> None:
        self.lock.release()


def host() -> HostLinks:
    global _host
    with _host_lock:
        if _host is None:
            _host = HostLinks()
        return _host


def index(ipr, ifname: str) -> int | None:
    return ipr.link_index(ifname)


def setns(fd: int) -> None:
    import ctypes  # Python 3.11's os has no setns
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def run_in_netns(netns_fd: int, work):
    """work() in the namespace of netns_fd, in a short-lived thread of its own (a
    namespace is per thread, so the caller's stays as it was); its result is returned
    and its exception raised here."""
    out: dict = {}

    def run() -> None:
        try:
            setns(netns_fd)
            out["value"] = work()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out["error"] = e

    t = threading.Thread(target=run, name="kade-netns")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def in_netns(netns_fd: int, work) -> None:
    """work(ipr) with a netlink socket in the namespace of netns_fd."""
    def with_socket() -> None:
        from kade.network.rtnl import Rtnl
        with Rtnl() as ipr:
            work(ipr)
    run_in_netns(netns_fd, with_socket)


def new_netns() -> int:
    """A new network namespace with lo up, held by the returned fd (O_CLOEXEC): a
    thread of its own unshares into it, opens it and ends, so no thread of ours stays
    in it. The container's init joins it by path, so it is set up while the init is
    made (every container with a netns of its own has lo up, `--network none` too)."""
    out: dict = {}

    def run() -> None:
        global _libc
        import ctypes
        try:
            if _libc is None:
                _libc = ctypes.CDLL(None, use_errno=True)
            if _libc.unshare(_CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            out["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            lo_up_here()
        except OSError as e:
            out["error"] = e

    t = threading.Thread(target=run, name="kade-netns-new")
    t.start()
    t.join()
    if "error" in out:
        raise Unavailable(f"cannot create the container's network namespace: {out['error']}")
    return out["fd"]


def lo_up(netns_fd: int) -> None:
    """lo up (the kernel then gives it 127.0.0.1/8 and ::1) in a namespace, with one
    ioctl: every container with a netns of its own, `--network none` included."""
    try:
        run_in_netns(netns_fd, lo_up_here)
    except OSError as e:
        raise Unavailable(f"cannot bring up the container's loopback: {e}") from None


def lo_up_here() -> None:
    """lo up in this thread's network namespace, with one ioctl (no netlink socket)."""
    import fcntl
    import socket
    import struct
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags,
                                                     struct.pack("16sH22x", b"lo", 0)))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))


def host_networks() -> list[str]:
    """Every prefix routed in this namespace's main table (IPv4 and IPv6, CIDR), and so
    every address's own prefix: what a new subnet must not overlap, as docker's
    netutils.CheckRouteOverlaps. Read from /proc/self/net, not netlink: making the
    default bridge's record (in whichever process runs first) must not open netlink
    for what /proc tells."""
    import ipaddress
    import socket
    import struct
    out = []
    with open("/proc/self/net/route") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            dst, mask = (struct.pack("<I", int(cols[i], 16)) for i in (1, 7))
            plen = bin(int.from_bytes(mask, "big")).count("1")
            if plen:
                out.append(str(ipaddress.ip_network(f"{socket.inet_ntoa(dst)}/{plen}",
                                                    strict=False)))
    try:
        with open("/proc/self/net/ipv6_route") as f:
            for line in f:
                dst, plen = line.split()[:2]
                addr = ipaddress.IPv6Address(bytes.fromhex(dst))
                if int(plen, 16) and not (addr.is_link_local or addr.is_multicast
                                          or addr.is_loopback):
                    out.append(f"{addr}/{int(plen, 16)}")
    except OSError:
        pass  # no IPv6 in this kernel
    return list(dict.fromkeys(out))


def write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass  # not there (IPv6 off) or read-only: the feature it enables is missing
