"""The embedded DNS server in real network namespaces: attach() opens its sockets inside
a namespace the test made, a client inside that namespace queries 127.0.0.11, and
unknown names reach the fake resolver on the host's loopback (which the namespace's
own loopback cannot reach, so an answer proves forwarding from the host's side)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest
from dns_upstream import FakeUpstream

from kade.network.dns import DNSServer, Record

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 (network namespaces)")

# runs inside the namespace: one query, the answer as JSON
CLIENT = """
import json, sys, dns.message, dns.query
name, rdtype, port, proto = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
q = dns.message.make_query(name, rdtype)
ask = dns.query.tcp if proto == "tcp" else dns.query.udp
r = ask(q, "127.0.0.11", port=port, timeout=5)
print(json.dumps({"rcode": r.rcode(), "tc": bool(r.flags & 0x0200),
                  "answer": [rd.to_text() for rrset in r.answer for rd in rrset]}))
"""


class Netns:
    def __init__(self):
        self.name = f"kadetest-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)

    def run(self, *argv):
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", *argv],
                              capture_output=True, text=True, timeout=30)

    def query(self, name, port, rdtype="A", proto="udp"):
        out = self.run(sys.executable, "-c", CLIENT, name, rdtype, str(port), proto)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def delete(self):
        os.close(self.fd)
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture
def netns():
    made = []

    def make():
        made.append(Netns())
        return made[-1]
    yield make
    for ns in made:
        ns.delete()


@pytest.fixture
def upstream():
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture
def server(upstream):
    s = DNSServer(upstreams=[upstream.address])
    s.set_network("n1", [Record(("web", "www"), "10.89.0.2", None),
                         Record(("db",), "10.89.0.3", None)], name="front")
    s.set_network("n2", [Record(("secret",), "10.90.0.2", None)], name="back")
    s.start()
    yield s
    s.stop()


def test_names_of_the_containers_own_network_resolve_inside_its_namespace(server, netns):
    ns = netns()
    assert "state DOWN" in ns.run("ip", "link", "show", "lo").stdout  # a fresh namespace's
    udp, tcp = server.attach("c1", ns.fd, ["n1"])
    assert "UP" in ns.run("ip", "-br", "link", "show", "lo").stdout
    assert ns.query("web", udp)["answer"] == ["10.89.0.2"]
    assert ns.query("WWW.front", tcp, proto="tcp")["answer"] == ["10.89.0.2"]
    assert ns.query("2.0.89.10.in-addr.arpa", udp, "PTR")["answer"] == ["web.front."]


def test_the_sockets_live_in_the_namespace_not_on_the_host(server, netns):
    ns = netns()
    _udp, tcp = server.attach("c1", ns.fd, ["n1"])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.11", tcp), timeout=5).close()


def test_another_networks_names_do_not_resolve_and_go_to_the_host_resolver(server, netns,
                                                                           upstream):
    a, b = netns(), netns()
    udp_a, _ = server.attach("a", a.fd, ["n1"])
    udp_b, _ = server.attach("b", b.fd, ["n2"])
    assert a.query("secret", udp_a)["rcode"] == 3  # NXDOMAIN from the host's resolver
    assert upstream.seen == [("udp", "secret.", "A")]
    assert b.query("secret", udp_b)["answer"] == ["10.90.0.2"]
    assert b.query("web", udp_b)["rcode"] == 3

    server.update("b", ["n2", "n1"])  # network connect
    assert b.query("web", udp_b)["answer"] == ["10.89.0.2"]


def test_unknown_names_are_forwarded_from_the_hosts_namespace(server, netns, upstream):
    ns = netns()
    udp, tcp = server.attach("c1", ns.fd, ["n1"])
    assert ns.query("example.test", udp)["answer"] == ["192.0.2.10"]
    big = ns.query("big.test", udp)
    assert big["tc"] and big["answer"] == []
    assert len(ns.query("big.test", tcp, proto="tcp")["answer"]) == 60
    assert [s[:2] for s in upstream.seen] == [("udp", "example.test."), ("udp", "big.test."),
                                              ("tcp", "big.test.")]


def test_detach_closes_the_server_in_the_namespace(server, netns):
    ns = netns()
    udp, tcp = server.attach("c1", ns.fd, ["n1"])
    assert ns.query("web", udp)["answer"] == ["10.89.0.2"]
    server.detach("c1")
    out = ns.run(sys.executable, "-c", CLIENT, "web", "A", str(tcp), "tcp")
    assert out.returncode != 0 and "ConnectionRefused" in out.stderr


@pytest.mark.skipif(not shutil.which("nft") or not os.path.exists("/bin/busybox"),
                    reason="needs nft and busybox-static")
def test_busybox_nslookup_through_a_dnat_of_127_0_0_11_port_53(server, netns, upstream):
    """What a container does: its resolv.conf says 127.0.0.11 (port 53), and a DNAT in
    its namespace (the firewall's redirect_dns; here one made by hand) leads to our ports."""
    ns = netns()
    udp, tcp = server.attach("c1", ns.fd, ["n1"])
    rules = "\n".join(["table ip kadetest {", "chain out {",
                       "type nat hook output priority -100;",
                       f"ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:{udp}",
                       f"ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:{tcp}",
                       "}", "}", ""])
    out = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], input=rules,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    web = ns.run("/bin/busybox", "nslookup", "web", "127.0.0.11")
    assert web.returncode == 0 and "Address: 10.89.0.2" in web.stdout, web.stdout + web.stderr
    ext = ns.run("/bin/busybox", "nslookup", "example.test", "127.0.0.11")
    assert ext.returncode == 0 and "Address: 192.0.2.10" in ext.stdout
    nx = ns.run("/bin/busybox", "nslookup", "secret", "127.0.0.11")
    assert nx.returncode != 0 and "NXDOMAIN" in nx.stdout
