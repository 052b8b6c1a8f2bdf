"""The embedded DNS server (kade.network.dns) as a container's resolver sees it: real
queries over UDP and TCP to the server's sockets on 127.0.0.1 (attach_sockets, the seam
that needs no namespace), forwarding to a fake host resolver on 127.0.0.1."""

import os
import re
import socket
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest
from dns_upstream import BIG, FakeUpstream

from kade.errors import InvalidArgument, Unavailable
from kade.network.dns import DNSServer, Record, parse_upstream

NET1, NET2 = "net1id", "net2id"
WAIT = 5  # a safety net for a hung server, not a timing: no test waits for it to pass


def _bound():
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    return udp, tcp


class Client:
    """One attached container's view: queries go to its UDP and TCP ports."""

    def __init__(self, server, key, networks, upstreams):
        udp, tcp = _bound()
        self.server, self.key = server, key
        self.udp_port, self.tcp_port = server.attach_sockets(
            key, udp, tcp, networks, [parse_upstream(u) for u in upstreams])

    def ask(self, name, rdtype="A", tcp=False, **kw):
        q = dns.message.make_query(name, rdtype, **kw)
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=self.tcp_port, timeout=WAIT)
        return dns.query.udp(q, "127.0.0.1", port=self.udp_port, timeout=WAIT,
                             ignore_trailing=True)

    def addrs(self, name, rdtype="A", tcp=False):
        r = self.ask(name, rdtype, tcp)
        return [rd.to_text() for rrset in r.answer for rd in rrset]


@pytest.fixture
def upstream():
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture
def server():
    s = DNSServer(upstreams=[])
    s.set_network(NET1, [Record(("web", "www", "0123456789ab"), "172.30.0.2", "fd00:30::2"),
                         Record(("db",), "172.30.0.3", None),
                         Record(("app-1", "app"), "172.30.0.4", None),
                         Record(("app-2", "app"), "172.30.0.5", None),
                         Record(("app-3", "app"), "172.30.0.6", None)], name="mynet")
    s.set_network(NET2, [Record(("other",), "172.31.0.2", None)], name="othernet")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def c1(server, upstream):
    return Client(server, "c1", [NET1], [upstream.address])


def test_a_record_for_a_container_name_alias_and_short_id(c1):
    for name in ("web", "www", "0123456789ab", "web.mynet"):
        r = c1.ask(name)
        assert r.rcode() == dns.rcode.NOERROR
        assert [rd.to_text() for rd in r.answer[0]] == ["172.30.0.2"], name
        assert r.answer[0].ttl == 600
        assert r.flags & dns.flags.RA


def test_aaaa_record_and_a_v4_only_name_is_known_without_v6(c1, upstream):
    assert c1.addrs("web", "AAAA") == ["fd00:30::2"]
    r = c1.ask("db", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert upstream.seen == []  # a name of the network never leaks to the host's resolver


def test_names_match_case_insensitively_and_answer_as_asked(c1):
    r = c1.ask("WeB.MyNet.")
    assert r.answer[0].name.to_text() == "WeB.MyNet."
    assert [rd.to_text() for rd in r.answer[0]] == ["172.30.0.2"]


def test_ptr_names_the_container_on_its_network(c1):
    for ip in ("172.30.0.2", "fd00:30::2"):
        r = c1.ask(dns.reversename.from_address(ip), "PTR")
        assert [rd.to_text() for rd in r.answer[0]] == ["web.mynet."]
        assert r.answer[0].ttl == 600


def test_mx_for_a_known_name_is_an_empty_answer(c1, upstream):
    r = c1.ask("db", "MX")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert upstream.seen == []


def test_a_service_name_answers_every_replica_in_round_robin(c1):
    firsts = []
    for _ in range(3):
        got = c1.addrs("app")
        assert sorted(got) == ["172.30.0.4", "172.30.0.5", "172.30.0.6"]
        firsts.append(got[0])
    assert len(set(firsts)) == 3


def test_a_container_sees_only_the_networks_it_is_on(server, c1, upstream):
    r = c1.ask("other")
    assert r.rcode() == dns.rcode.NXDOMAIN  # forwarded, and the host's resolver denies it
    assert upstream.seen == [("udp", "other.", "A")]
    assert c1.ask("other.othernet").rcode() == dns.rcode.NXDOMAIN

    server.update("c1", [NET1, NET2])  # network connect
    assert c1.addrs("other") == ["172.31.0.2"]
    assert c1.addrs("web") == ["172.30.0.2"]
    server.update("c1", [NET2])  # disconnect from NET1
    assert c1.ask("web").rcode() == dns.rcode.NXDOMAIN


def test_records_are_replaced_and_dropped_per_network(server, c1):
    server.set_network(NET1, [Record(("web",), "172.30.0.9", None)], name="mynet")
    assert c1.addrs("web") == ["172.30.0.9"]
    assert c1.ask("db").rcode() == dns.rcode.NXDOMAIN
    server.drop_network(NET1)
    assert c1.ask("web").rcode() == dns.rcode.NXDOMAIN


def test_unknown_names_are_forwarded_over_udp_and_tcp(c1, upstream):
    assert c1.addrs("example.test") == ["192.0.2.10"]
    assert c1.addrs("example.test", tcp=True) == ["192.0.2.10"]
    assert upstream.seen == [("udp", "example.test.", "A"), ("tcp", "example.test.", "A")]


def test_other_query_types_for_unknown_names_are_forwarded(c1, upstream):
    r = c1.ask("example.test", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert upstream.seen == [("udp", "example.test.", "TXT")]


def test_a_truncated_upstream_answer_is_passed_on_and_tcp_gets_it_whole(c1):
    r = c1.ask("big.test")
    assert r.flags & dns.flags.TC
    assert sorted(c1.addrs("big.test", tcp=True)) == sorted(BIG)


def test_own_answers_too_big_for_udp_are_truncated(server, upstream):
    many = [Record((f"r{i}", "svc"), f"172.30.1.{i}", None) for i in range(1, 101)]
    server.set_network("big", many)
    c = Client(server, "cbig", ["big"], [upstream.address])
    r = c.ask("svc")
    assert r.flags & dns.flags.TC and 0 < len(r.answer[0]) < 100
    assert len(c.ask("svc", use_edns=0, payload=4096).answer[0]) == 100
    assert len(c.addrs("svc", tcp=True)) == 100


def test_nxdomain_and_servfail_from_the_upstream_are_passed_through(c1):
    assert c1.ask("nosuch.test").rcode() == dns.rcode.NXDOMAIN
    assert c1.ask("fail.test").rcode() == dns.rcode.SERVFAIL
    assert c1.ask("fail.test", tcp=True).rcode() == dns.rcode.SERVFAIL


def test_a_failing_upstream_is_skipped_for_the_next(server):
    bad, good = FakeUpstream(), FakeUpstream({"fail.test.": ["192.0.2.20"]})
    try:
        c = Client(server, "c2", [NET1], [bad.address, good.address])
        assert c.addrs("fail.test") == ["192.0.2.20"]
        assert c.addrs("fail.test", tcp=True) == ["192.0.2.20"]
        assert [s[1] for s in bad.seen] == ["fail.test."] * 2
    finally:
        bad.close()
        good.close()


def test_unreachable_upstream_is_skipped(server, upstream):
    dead = FakeUpstream()
    dead.close()  # nothing listens there now: refused at once
    c = Client(server, "c2", [NET1], [dead.address, upstream.address])
    assert c.addrs("example.test") == ["192.0.2.10"]
    assert c.addrs("example.test", tcp=True) == ["192.0.2.10"]


def test_no_upstream_or_none_answering_is_servfail(server):
    dead = FakeUpstream()
    dead.close()
    for ups in ([], [dead.address]):
        c = Client(server, f"c-{len(ups)}", [NET1], ups)
        for tcp in (False, True):
            r = c.ask("example.test", tcp=tcp)
            assert r.rcode() == dns.rcode.SERVFAIL
            assert r.question[0].name.to_text() == "example.test."
        assert c.addrs("web") == ["172.30.0.2"]  # own names still answer


def test_a_silent_upstream_blocks_no_other_query_and_times_out_to_servfail(upstream):
    s = DNSServer(upstreams=[upstream.address], timeout=1.0)
    s.set_network(NET1, [Record(("web",), "172.30.0.2", None)])
    s.start()
    try:
        udp, tcp = _bound()
        port, _ = s.attach_sockets("c", udp, tcp, [NET1], [parse_upstream(upstream.address)])
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(WAIT)
        client.connect(("127.0.0.1", port))
        slow = dns.message.make_query("slow.test", "A")
        client.send(slow.to_wire())
        for name in ("web", "example.test"):  # answered while slow.test waits upstream
            q = dns.message.make_query(name, "A")
            client.send(q.to_wire())
            r = dns.message.from_wire(client.recv(4096))
            assert r.id == q.id and r.answer
        r = dns.message.from_wire(client.recv(4096))
        assert r.id == slow.id and r.rcode() == dns.rcode.SERVFAIL
        client.close()
    finally:
        s.stop()


def test_malformed_queries_get_formerr_and_other_opcodes_notimp(c1):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", c1.udp_port))
    sock.send(struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x05web")
    r = sock.recv(512)
    assert r[:2] == b"\x12\x34" and r[2] & 0x80 and r[3] & 0x0F == dns.rcode.FORMERR
    q = dns.message.make_query("web", "A")
    q.set_opcode(dns.opcode.STATUS)
    sock.send(q.to_wire())
    r = dns.message.from_wire(sock.recv(512))
    assert r.rcode() == dns.rcode.NOTIMP
    sock.close()


def test_tcp_carries_several_queries_on_one_connection(c1):
    with socket.create_connection(("127.0.0.1", c1.tcp_port), timeout=WAIT) as conn:
        qs = [dns.message.make_query(n, "A") for n in ("web", "example.test", "db")]
        conn.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in qs)))
        got = {}
        for _ in qs:
            r, _t = dns.query.receive_tcp(conn, expiration=None)
            got[r.id] = [rd.to_text() for rd in r.answer[0]]
        assert got == {qs[0].id: ["172.30.0.2"], qs[1].id: ["192.0.2.10"],
                       qs[2].id: ["172.30.0.3"]}


def test_detach_closes_the_containers_sockets(server, c1):
    assert c1.addrs("web") == ["172.30.0.2"]
    server.detach("c1")
    server.detach("c1")  # twice is fine
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", c1.tcp_port), timeout=WAIT)


@pytest.mark.parametrize("text,want", [
    ("192.0.2.1", ("192.0.2.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", 53)), ("[::1]:5353", ("::1", 5353)), ("[fd00::1]", ("fd00::1", 53))])
def test_upstream_syntax(text, want):
    assert parse_upstream(text) == want


@pytest.mark.parametrize("text", ["", "nohost", "1.2.3.4:0", "1.2.3.4:99999", "[::1",
                                  "1.2.3.4:x", "[::1]x"])
def test_bad_upstreams_are_refused_naming_the_value(text):
    with pytest.raises(InvalidArgument, match=re.escape(f'"{text}"')):
        DNSServer(upstreams=[text])


def test_a_record_with_a_bad_address_is_refused():
    s = DNSServer(upstreams=[])
    with pytest.raises(InvalidArgument, match='"172.30.0.300"'):
        s.set_network(NET1, [Record(("web",), "172.30.0.300", None)])
    with pytest.raises(InvalidArgument, match='"172.30.0.3"'):
        s.set_network(NET1, [Record(("web",), None, "172.30.0.3")])
    s.stop()


def test_edns_queries_get_an_opt_record_back(c1):
    for name, rdtype in (("web", "A"), ("web", "AAAA"), ("db", "AAAA"),
                         (dns.reversename.from_address("172.30.0.3"), "PTR")):
        r = c1.ask(name, rdtype, use_edns=0, payload=1232)
        assert r.edns == 0 and r.rcode() == dns.rcode.NOERROR, (name, rdtype)
    assert c1.addrs("db", "AAAA") == []


def test_queries_with_escaped_names_take_the_general_path(c1, upstream):
    r = c1.ask("w\\.eb")  # one label "w.eb": no record has it, so it is forwarded
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert upstream.seen == [("udp", "w\\.eb.", "A")]


def test_attach_to_something_that_is_no_network_namespace_fails_in_one_line(server, tmp_path):
    (tmp_path / "f").write_text("")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        with pytest.raises(Unavailable, match="network namespace"):
            server.attach("c9", fd, [NET1])
    finally:
        os.close(fd)
    server.update("c9", [NET1])  # nothing was attached: a no-op
    server.detach("c9")


def test_stop_twice_and_attach_after_stop(upstream):
    s = DNSServer(upstreams=[upstream.address])
    s.start()
    s.stop()
    s.stop()
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        with pytest.raises(Unavailable, match="stopped"):
            s.attach("c", fd, [NET1])
    finally:
        os.close(fd)
