"""kade.network.rtnl against the kernel, in two network namespaces of the test's own
(`ip netns add kadetest-<random>`; a short-lived thread setns-es there, as the engine's
in_netns does): a bridge, a veth with its peer made in the second namespace, addresses,
default routes, hairpin, MTU and MAC, read back with `ip -j` and compared."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

from kade.network import netlink, rtnl

MAC = "02:42:0a:4d:00:02"


@pytest.fixture
def spaces():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip for network namespaces")
    names = [f"kadetest-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        for n in names:
            subprocess.run(["ip", "netns", "add", n], check=True)
        yield names
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def inside(name, work):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = []
        netlink.in_netns(fd, lambda r: out.append(work(r)))
        return out[0]
    finally:
        os.close(fd)


def ip(ns, *args):
    got = subprocess.run(["ip", "-n", ns, "-j", "-d", *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(got or "[]")


def addrs(info):
    return {(a["local"], a["prefixlen"]) for a in info["addr_info"] if a["scope"] == "global"}


def build(host, peer):
    peer_fd = os.open(f"/run/netns/{peer}", os.O_RDONLY | os.O_CLOEXEC)

    def on_host(r):
        r.add_bridge("kt-br")
        br = r.link_index("kt-br")
        r.set_link(br, mtu=1400)
        r.add_addr(br, "10.77.0.1", 24)
        r.add_addr(br, "fd77::1", 64, rtnl.IFA_F_NODAD)
        r.set_link(br, up=True)
        r.add_veth("kt-veth", 1400, br, "eth0", peer_fd, 1400, MAC)
        r.set_hairpin(r.link_index("kt-veth"))
        return br

    def in_peer(r):
        r.set_link(1, up=True)
        eth0 = r.link_index("eth0")
        r.add_addr(eth0, "10.77.0.2", 24)
        r.add_addr(eth0, "fd77::2", 64, rtnl.IFA_F_NODAD)
        r.set_link(eth0, up=True)
        r.add_default_route("10.77.0.1", eth0)
        r.add_default_route("fd77::1", eth0)
        return eth0

    try:
        return inside(host, on_host), inside(peer, in_peer)
    finally:
        os.close(peer_fd)


def test_what_rtnl_makes_is_what_ip_reads_back(spaces):
    host, peer = spaces
    br, eth0 = build(host, peer)

    [bridge] = ip(host, "addr", "show", "kt-br")
    assert (bridge["ifindex"], bridge["mtu"]) == (br, 1400)
    assert "UP" in bridge["flags"] and bridge["linkinfo"]["info_kind"] == "bridge"
    assert addrs(bridge) == {("10.77.0.1", 24), ("fd77::1", 64)}
    [veth] = ip(host, "link", "show", "kt-veth")
    assert (veth["mtu"], veth["master"], veth["linkinfo"]["info_kind"]) == (1400, "kt-br", "veth")
    assert "UP" in veth["flags"]
    assert veth["linkinfo"]["info_slave_data"]["hairpin"] is True

    [inner] = ip(peer, "addr", "show", "eth0")
    assert (inner["ifindex"], inner["mtu"], inner["address"]) == (eth0, 1400, MAC)
    assert "UP" in inner["flags"]
    assert addrs(inner) == {("10.77.0.2", 24), ("fd77::2", 64)}
    assert "UP" in ip(peer, "link", "show", "lo")[0]["flags"]
    for family, gw in (("-4", "10.77.0.1"), ("-6", "fd77::1")):
        [default] = ip(peer, family, "route", "show", "default")
        assert (default["gateway"], default["dev"], default["protocol"]) == (gw, "eth0", "static")

    # rtnl's own reads agree with ip's
    links = inside(host, lambda r: {lk["ifname"]: lk["index"] for lk in r.links()})
    assert {n: i for n, i in links.items() if n.startswith("kt-")} == {
        "kt-br": br, "kt-veth": veth["ifindex"]}
    assert set(inside(host, lambda r: r.addrs(br))) >= {("10.77.0.1", 24), ("fd77::1", 64)}
    routes = inside(peer, lambda r: r.routes() + r.routes(socket.AF_INET6))
    assert {"dst": "0.0.0.0/0", "gateway": "10.77.0.1", "oif": eth0} in routes
    assert {"dst": "::/0", "gateway": "fd77::1", "oif": eth0} in routes


def test_delete_and_errors(spaces):
    host, peer = spaces
    build(host, peer)

    def again(r):
        with pytest.raises(OSError) as e:
            r.add_bridge("kt-br")
        return e.value

    err = inside(host, again)
    assert err.errno == errno.EEXIST and "add bridge kt-br" in str(err)

    def delete(r):
        r.del_link(r.link_index("kt-veth"))
        r.del_link(r.link_index("kt-br"))
        return r.link_index("kt-veth"), r.link_index("kt-br")

    assert inside(host, delete) == (None, None)
    assert ip(host, "link", "show", "type", "bridge") == []
    assert [lk["ifname"] for lk in ip(peer, "link", "show")] == ["lo"]  # the peer died too
    with pytest.raises(OSError) as e:
        inside(host, lambda r: r.del_link(12345))
    assert e.value.errno == errno.ENODEV


DRIVER = r"""
import sys
from kade.network import netlink, rtnl
from kade.network.bridge import BridgeDriver
from kade.network.driver import Endpoint, Network, Subnet
net = Network("n1", "n1", "bridge", "kt-br", (Subnet("10.78.0.0/24", "10.78.0.1"),), 1400,
              internal=True)
ep = Endpoint("eth0", "kv0123456789ab", "10.78.0.2/24", None, MAC, "10.78.0.1", None, 1400)
d = BridgeDriver()
d.create(net)
fd = netlink.new_netns()
d.join(net, ep, fd)
with netlink.host() as r:
    print(sorted(lk["ifname"] for lk in r.links()))
d.leave(net, ep)
d.delete(net)
with netlink.host() as r:
    print(sorted(lk["ifname"] for lk in r.links()))
print(sorted(m for m in ("pyroute2", "asyncio", "ssl", "lzma") if m in sys.modules))
"""


def test_the_bridge_driver_loads_no_pyroute2(spaces):
    """What a supervisor worker does for a bridge container, in a namespace of the
    test's own: the driver goes through rtnl, and no heavy module is loaded (pyroute2
    cost every such worker ~16.5 MB of PSS)."""
    code = DRIVER.replace("MAC", repr(MAC))
    out = subprocess.run(["nsenter", f"--net=/run/netns/{spaces[0]}", sys.executable, "-c",
                          code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    made, gone, heavy = out.stdout.splitlines()
    assert made == str(["kt-br", "kv0123456789ab", "lo"])
    assert gone == str(["lo"])
    assert heavy == "[]"
