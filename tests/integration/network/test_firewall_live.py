"""Kade's nftables rules in a real kernel, each test in a network namespace of its own
(netlab.isolated): published ports from outside, from the host to 127.0.0.1 and to
its own addresses, isolation, --internal, the DNS redirect, and other tables left
alone."""

import json
import os
import socket
import subprocess
import sys

from netlab import Lab, isolated, sh, talk

from kade.network.firewall import Firewall, PortBinding
from kade.network.nft import Nft

# the lab: bridge kt0 10.88.0.0/24 (c1 .2), bridge kt1 10.89.0.0/24 (c2 .2),
# an outside peer on a routed link 10.90.0.0/24 (host .1, peer .2)
KEY = "c1" + "0" * 62


def _lab(lab: Lab, *, internal=False, isolate=True):
    lab.bridge("kt0", "10.88.0.1/24")
    c1 = lab.container("kt0", "10.88.0.2/24", "10.88.0.1")
    out = lab.outside("10.90.0.1/24", "10.90.0.2/24")
    fw = Firewall()
    fw.ensure()
    fw.add_network("kt0", ["10.88.0.0/24"], internal=internal, isolate=isolate)
    return fw, c1, out


@isolated
def test_a_published_port_answers_from_outside_loopback_and_the_hosts_addresses():
    with Lab() as lab:
        fw, c1, out = _lab(lab)
        lab.serve(c1, "tcp", "0.0.0.0", 80)
        lab.serve(c1, "udp", "0.0.0.0", 53)
        fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp"),
                                                PortBinding("", 5300, 53, "udp")])
        # the container sees the bridge's address for the host's own connections:
        # 127.0.0.1 could not be answered from inside it
        assert talk("tcp", "127.0.0.1", 8080) == "hello from 10.88.0.1"
        assert talk("tcp", "10.88.0.1", 8080) == "hello from 10.88.0.1"
        assert talk("tcp", "10.90.0.1", 8080) == "hello from 10.88.0.1"   # hairpin
        assert talk("tcp", "10.90.0.1", 8080, ns=out) == "hello from 10.90.0.2"
        assert talk("udp", "127.0.0.1", 5300, "dns?") == "dns? from 10.88.0.1"
        assert talk("udp", "10.90.0.1", 5300, "dns?", ns=out) == "dns? from 10.90.0.2"

        fw.unpublish(KEY)
        assert talk("tcp", "127.0.0.1", 8080) == "ConnectionRefusedError"
        assert talk("tcp", "10.90.0.1", 8080, ns=out) == "ConnectionRefusedError"
        assert fw.published() == {}


@isolated
def test_ipv6_ports_are_published_and_ipv6_traffic_is_masqueraded():
    with Lab() as lab:
        lab.bridge("kt0", "10.88.0.1/24")
        sh("ip addr add fd88::1/64 dev kt0 nodad")
        c1 = lab.container("kt0", "10.88.0.2/24", "10.88.0.1")
        c1.sh("ip addr add fd88::2/64 dev eth0 nodad && ip -6 route add default via fd88::1")
        out = lab.outside("10.90.0.1/24", "10.90.0.2/24")
        sh(f"ip addr add fd90::1/64 dev {out.host_if} nodad")
        out.sh("ip addr add fd90::2/64 dev eth0 nodad && ip -6 route add default via fd90::1")
        fw = Firewall()
        fw.add_network("kt0", ["10.88.0.0/24", "fd88::/64"], internal=False)
        lab.serve(c1, "tcp", "::", 80)
        lab.serve(out, "tcp", "::", 7000)
        fw.publish(KEY, "kt0", ["10.88.0.2", "fd88::2"], [PortBinding("", 8080, 80, "tcp")])
        assert talk("tcp", "fd90::1", 8080, ns=out) == "hello from fd90::2"
        assert talk("tcp", "fd90::1", 8080) == "hello from fd88::1"
        assert talk("tcp", "127.0.0.1", 8080) == "hello from ::ffff:10.88.0.1"
        assert talk("tcp", "fd90::2", 7000, ns=c1) == "hello from fd90::1"
        fw.publish(KEY, "kt0", ["10.88.0.2", "fd88::2"], [PortBinding("::", 8081, 80, "tcp")])
        assert talk("tcp", "fd90::1", 8081, ns=out) == "hello from fd90::2"
        assert talk("tcp", "10.90.0.1", 8081, ns=out) == "ConnectionRefusedError"
        assert talk("tcp", "fd90::1", 8080, ns=out) == "ConnectionRefusedError"


@isolated
def test_a_container_reaches_its_own_and_a_neighbours_published_port():
    with Lab() as lab:
        fw, c1, _ = _lab(lab)
        c3 = lab.container("kt0", "10.88.0.3/24", "10.88.0.1")
        lab.serve(c1, "tcp", "0.0.0.0", 80)
        fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp")])
        assert talk("tcp", "10.90.0.1", 8080, ns=c1) == "hello from 10.88.0.1"
        assert talk("tcp", "10.90.0.1", 8080, ns=c3) == "hello from 10.88.0.1"


@isolated
def test_outbound_traffic_is_masqueraded_and_unsolicited_inbound_is_dropped():
    with Lab() as lab:
        fw, c1, out = _lab(lab)
        lab.serve(out, "tcp", "0.0.0.0", 7000)
        lab.serve(c1, "tcp", "0.0.0.0", 80)
        assert talk("tcp", "10.90.0.2", 7000, ns=c1) == "hello from 10.90.0.1"
        # the outside peer routes to the container's subnet through the host
        out.sh("ip route add 10.88.0.0/24 via 10.90.0.1")
        assert talk("tcp", "10.88.0.2", 80, ns=out) == "TimeoutError"


@isolated
def test_a_host_ip_publishes_on_that_address_only():
    with Lab() as lab:
        fw, c1, out = _lab(lab)
        lab.serve(c1, "tcp", "0.0.0.0", 80)
        fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("127.0.0.1", 8081, 80, "tcp"),
                                                PortBinding("10.90.0.1", 8082, 80, "tcp")])
        assert talk("tcp", "127.0.0.1", 8081) == "hello from 10.88.0.1"
        assert talk("tcp", "10.90.0.1", 8081) == "ConnectionRefusedError"
        assert talk("tcp", "10.90.0.1", 8082, ns=out) == "hello from 10.90.0.2"
        assert talk("tcp", "127.0.0.1", 8082) == "ConnectionRefusedError"


@isolated
def test_published_and_networks_are_read_back_from_the_kernel():
    with Lab() as lab:
        fw, c1, _ = _lab(lab)
        lab.bridge("kt1", "10.89.0.1/24")
        fw.add_network("kt1", ["10.89.0.0/24", "fd89::/64"], internal=True)
        ports = [PortBinding("", 8080, 80, "tcp"), PortBinding("127.0.0.1", 9000, 9000, "udp"),
                 PortBinding("", 8443, 443, "sctp")]
        fw.publish(KEY, "kt0", ["10.88.0.2", "fd88::2"], ports)
        fw.publish("c2" + "0" * 62, "kt0", ["10.88.0.3"], [PortBinding("", 8081, 80, "tcp")])
        fresh = Firewall()
        assert fresh.published() == {KEY: ports,
                                     "c2" + "0" * 62: [PortBinding("", 8081, 80, "tcp")]}
        assert fresh.networks() == ["kt0", "kt1"]
        # publishing again replaces the key's rules
        fresh.publish(KEY, "kt0", ["10.88.0.2"], ports[:1])
        assert fw.published()[KEY] == ports[:1]
        fresh.remove_network("kt1")
        assert fw.networks() == ["kt0"]
        assert "kt1" not in sh("nft list table inet kade")
        fw.reset()
        assert Firewall().networks() == [] and Firewall().published() == {}


@isolated
def test_two_kade_bridges_are_isolated_from_each_other():
    with Lab() as lab:
        fw, c1, _ = _lab(lab, isolate=False)
        lab.bridge("kt1", "10.89.0.1/24")
        c2 = lab.container("kt1", "10.89.0.2/24", "10.89.0.1")
        fw.add_network("kt1", ["10.89.0.0/24"], internal=False, isolate=False)
        lab.serve(c2, "tcp", "0.0.0.0", 80)
        # without isolation the kernel routes between them: the check below can fail
        assert talk("tcp", "10.89.0.2", 80, ns=c1) == "hello from 10.89.0.1"  # masqueraded
        fw.add_network("kt0", ["10.88.0.0/24"], internal=False)
        fw.add_network("kt1", ["10.89.0.0/24"], internal=False)
        assert talk("tcp", "10.89.0.2", 80, ns=c1) == "TimeoutError"
        # published ports stay reachable from other networks, as from anywhere
        fw.publish(KEY, "kt1", ["10.89.0.2"], [PortBinding("", 8080, 80, "tcp")])
        assert talk("tcp", "10.90.0.1", 8080, ns=c1) == "hello from 10.89.0.1"


@isolated
def test_an_internal_network_has_no_way_out():
    with Lab() as lab:
        fw, c1, out = _lab(lab)
        lab.serve(out, "tcp", "0.0.0.0", 7000)
        assert talk("tcp", "10.90.0.2", 7000, ns=c1) == "hello from 10.90.0.1"  # the control
        fw.add_network("kt0", ["10.88.0.0/24"], internal=True)
        assert talk("tcp", "10.90.0.2", 7000, ns=c1) == "TimeoutError"
        assert "masquerade" not in sh("nft list chain inet kade masq")


@isolated
def test_other_tables_are_left_as_they_were():
    sh("nft add table ip other && nft add chain ip other filt '{ type filter hook forward "
       "priority 0; policy accept; }' && nft add rule ip other filt tcp dport 22 counter accept "
       "&& nft add table inet kadex")
    before = sh("nft -j list table ip other")
    with Lab() as lab:
        fw, c1, _ = _lab(lab)
        fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp")])
        fw.ensure()
        fw.remove_network("kt0")
        fw.reset()
        fw.reset()  # a second reset finds nothing to do
    assert sh("nft -j list table ip other") == before
    tables = [t["table"]["name"] for t in json.loads(sh("nft -j list tables"))["nftables"]
              if "table" in t]
    assert tables == ["other", "kadex"]


@isolated
def test_ensure_repairs_the_fixed_rules_and_keeps_the_rest():
    with Lab() as lab:
        fw, c1, _ = _lab(lab)
        lab.serve(c1, "tcp", "0.0.0.0", 80)
        fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp")])
        sh("nft flush chain inet kade output")
        assert talk("tcp", "127.0.0.1", 8080) == "ConnectionRefusedError"
        Firewall().ensure()
        Firewall().ensure()
        assert talk("tcp", "127.0.0.1", 8080) == "hello from 10.88.0.1"
        assert sh("nft list chain inet kade output").count("jump published") == 1


ATTACK = r"""
import socket, struct, sys
bridge_mac, src = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2]
port, payload = int(sys.argv[3]), sys.argv[4].encode()
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton("127.0.0.1"))
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
own = s.getsockname()[4]
s.send(bridge_mac + own + b"\x08\x00" + ip + udp)
"""


@isolated
def test_a_container_cannot_reach_the_hosts_loopback_through_route_localnet():
    """route_localnet=1 (needed for published ports on 127.0.0.1) makes the kernel
    accept packets for 127.0.0.0/8 arriving on the bridge; the guard drops them.
    The attack is sent first by hand-set route_localnet without Kade's table (it
    must get through, or this test proves nothing), then with it."""
    with Lab() as lab:
        lab.bridge("kt0", "10.88.0.1/24")
        c1 = lab.container("kt0", "10.88.0.2/24", "10.88.0.1")
        server = lab.serve(None, "udp", "0.0.0.0", 5555)
        mac = json.loads(sh("ip -j link show kt0"))[0]["address"]

        def attack(payload: str) -> None:
            subprocess.run(["nsenter", f"--net={c1.path}", sys.executable, "-c", ATTACK, mac,
                            "10.88.0.2", "5555", payload], check=True)
            talk("udp", "10.88.0.1", 5555, "marker", ns=c1)  # a legitimate datagram after it

        sh("sysctl -qw net.ipv4.conf.kt0.route_localnet=1")
        attack("attack-1")
        assert server.stdout.readline() == b"attack-1\n"
        assert server.stdout.readline() == b"marker\n"

        fw = Firewall()
        fw.add_network("kt0", ["10.88.0.0/24"], internal=False)
        assert open("/proc/sys/net/ipv4/conf/kt0/route_localnet").read().strip() == "1"
        attack("attack-2")
        assert server.stdout.readline() == b"marker\n"


DNS_ECHO = r"""
import socket, sys, threading
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.11", 0))
tcp = socket.socket(); tcp.bind(("127.0.0.11", 0)); tcp.listen(4)
print(udp.getsockname()[1], tcp.getsockname()[1], flush=True)
def serve_tcp():
    while True:
        c, _ = tcp.accept()
        with c:
            c.sendall(b"tcp:" + c.recv(100))
threading.Thread(target=serve_tcp, daemon=True).start()
while True:
    data, peer = udp.recvfrom(100)
    udp.sendto(b"udp:" + data, peer)
"""

DNS_ASK = r"""
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(b"q1", ("127.0.0.11", 53))
data, peer = u.recvfrom(100)
t = socket.create_connection(("127.0.0.11", 53), timeout=3); t.sendall(b"q2")
# the container can still have a server of its own on :53 of its other addresses
own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); own.bind(("0.0.0.0", 53))
print(data.decode(), peer[0], peer[1], t.recv(100).decode())
"""


@isolated
def test_redirect_dns_brings_127_0_0_11_port_53_to_the_servers_ports():
    with Lab() as lab:
        lab.bridge("kt0", "10.88.0.1/24")
        c1 = lab.container("kt0", "10.88.0.2/24", "10.88.0.1")
        echo = c1.popen(sys.executable, "-c", DNS_ECHO, stdout=subprocess.PIPE)
        lab.procs.append(echo)
        udp_port, tcp_port = (int(p) for p in echo.stdout.readline().split())
        fd = os.open(c1.path, os.O_RDONLY)
        try:
            Firewall().redirect_dns(fd, udp_port, tcp_port)
            Firewall().redirect_dns(fd, udp_port, tcp_port)  # idempotent
        finally:
            os.close(fd)
        out = subprocess.run(["nsenter", f"--net={c1.path}", sys.executable, "-c", DNS_ASK],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == ["udp:q1", "127.0.0.11", "53", "tcp:q2"]
        # only the container's namespace got the rules
        assert "kade" not in sh("nft list tables")


@isolated
def test_the_library_binding_says_what_the_nft_command_says():
    """libnftables through ctypes against `nft -j` (the reference), both ways."""
    fw = Firewall(nft=Nft)
    fw.ensure()
    fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp")])
    reference = json.loads(sh("nft -j list table inet kade"))["nftables"]
    assert len(reference) > 20
    assert Nft(use_library=True).list_table("inet", "kade") == reference
    assert Nft(use_library=False).list_table("inet", "kade") == reference
    # the command's backend makes the same table as the library's (handles aside)
    fw.reset()
    Firewall(nft=lambda: Nft(use_library=False)).publish(
        KEY, "kt0", ["10.88.0.2"], [PortBinding("", 8080, 80, "tcp")])
    again = json.loads(sh("nft -j list table inet kade"))["nftables"]
    assert _without_handles(again) == _without_handles(reference)


def _without_handles(listing):
    return [{kind: {k: v for k, v in body.items() if k != "handle"}
             for kind, body in item.items()} for item in listing]


@isolated
def test_a_transaction_applies_all_of_its_commands_or_none():
    for nft in (Nft(use_library=True), Nft(use_library=False)):
        try:
            nft.run([{"add": {"table": {"family": "inet", "name": "half"}}},
                     {"add": {"chain": {"family": "inet", "table": "nosuch", "name": "c"}}}])
        except Exception as e:
            assert "nftables: " in str(e) and "\n" not in str(e)
        else:
            raise AssertionError("a bad batch was accepted")
        assert "half" not in sh("nft list tables")


def test_nothing_of_the_lab_is_left_on_the_host():
    """The lab's names never reach the namespace pytest runs in."""
    names = socket.if_nameindex()
    assert not [n for _, n in names if n.startswith(("kt0", "kt1", "kv", "kp"))]
