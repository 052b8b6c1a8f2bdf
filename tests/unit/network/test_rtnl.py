"""kade.network.rtnl encodes what pyroute2 would: every request body the bridge driver
sends is decoded here with pyroute2's own parsers (pyroute2 is a test dependency only),
and the exchange (ACK, NLMSG_ERROR, multipart dumps, stale answers) runs against a
socket fake at the recv/send seam."""

import errno
import socket
import struct

import pytest

from kade.network import rtnl

pytest.importorskip("pyroute2")
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402


def decode(cls, kind, body):
    msg = cls(rtnl._HDR.pack(rtnl._HDR.size + len(body), kind, 1, 7, 0) + body)
    msg.decode()
    return msg


def test_add_bridge():
    m = decode(ifinfmsg, rtnl.RTM_NEWLINK, rtnl.add_bridge_body("kade0"))
    assert m["index"] == 0
    assert m.get_attr("IFLA_IFNAME") == "kade0"
    assert m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge"


@pytest.mark.parametrize("mtu,up,flags,change", [(1400, None, 0, 0), (None, True, 1, 1),
                                                 (None, False, 0, 1), (9000, True, 1, 1)])
def test_set_link(mtu, up, flags, change):
    m = decode(ifinfmsg, rtnl.RTM_NEWLINK, rtnl.set_link_body(5, mtu, up))
    assert (m["index"], m["flags"], m["change"]) == (5, flags, change)
    assert m.get_attr("IFLA_MTU") == mtu


def test_veth_with_its_peer_in_another_namespace():
    body = rtnl.add_veth_body("kv0123456789ab", 1450, 3, "eth0", 42, 1450, "02:42:ac:11:00:02")
    m = decode(ifinfmsg, rtnl.RTM_NEWLINK, body)
    assert (m["flags"] & 1, m["change"] & 1) == (1, 1)
    assert m.get_attr("IFLA_IFNAME") == "kv0123456789ab"
    assert (m.get_attr("IFLA_MTU"), m.get_attr("IFLA_MASTER")) == (1450, 3)
    assert m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"
    peer = m.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "VETH_INFO_PEER")
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_NET_NS_FD") == 42
    assert peer.get_attr("IFLA_MTU") == 1450
    assert peer.get_attr("IFLA_ADDRESS") == "02:42:ac:11:00:02"


def test_veth_without_a_mac_lets_the_kernel_choose():
    m = decode(ifinfmsg, rtnl.RTM_NEWLINK, rtnl.add_veth_body("a", 1500, 3, "b", 4, 1500))
    peer = m.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "VETH_INFO_PEER")
    assert peer.get_attr("IFLA_ADDRESS") is None


def test_hairpin_is_the_bridge_ports_mode():
    m = decode(ifinfmsg, rtnl.RTM_SETLINK, rtnl.hairpin_body(9))
    assert (m["family"], m["index"]) == (socket.AF_BRIDGE, 9)
    assert m.get_nested("IFLA_PROTINFO", "IFLA_BRPORT_MODE") == 1


@pytest.mark.parametrize("addr,plen,flags,family", [("172.17.0.1", 16, 0, socket.AF_INET),
                                                    ("fd00::1", 64, 2, socket.AF_INET6)])
def test_add_address(addr, plen, flags, family):
    m = decode(ifaddrmsg, rtnl.RTM_NEWADDR, rtnl.add_addr_body(4, addr, plen, flags))
    assert (m["family"], m["prefixlen"], m["flags"], m["index"]) == (family, plen, flags, 4)
    assert m.get_attr("IFA_ADDRESS") == addr
    assert m.get_attr("IFA_LOCAL") == addr


@pytest.mark.parametrize("gw,family", [("172.17.0.1", socket.AF_INET),
                                       ("fd00::1", socket.AF_INET6)])
def test_default_route_via_gateway(gw, family):
    m = decode(rtmsg, rtnl.RTM_NEWROUTE, rtnl.add_default_route_body(gw, 2))
    assert (m["family"], m["dst_len"], m["table"]) == (family, 0, 254)
    assert (m["proto"], m["scope"], m["type"]) == (4, 0, 1)  # static, universe, unicast
    assert m.get_attr("RTA_GATEWAY") == gw
    assert m.get_attr("RTA_OIF") == 2
    assert m.get_attr("RTA_DST") is None


def test_attributes_are_padded_to_four_bytes():
    a = rtnl.string(rtnl.IFLA_IFNAME, "eth0")  # 4 + 5 bytes, padded to 12
    assert len(a) == 12 and struct.unpack_from("=H", a)[0] == 9
    assert rtnl.parse_attrs(a + rtnl.u32(rtnl.IFLA_MTU, 7)) == {3: b"eth0\0", 4: b"\7\0\0\0"}


# -- the exchange, against a socket fake --------------------------------------------

class FakeSock:
    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    def recvmsg(self, _size):
        return self.answers.pop(0), [], 0, (0, 0)

    def close(self):
        pass


def msg(kind, seq, payload=b"", flags=0):
    size = rtnl._HDR.size + len(payload)
    return rtnl._HDR.pack(size, kind, flags, seq, 0) + payload + b"\0" * (-size % 4)


def error(seq, err):
    return msg(rtnl.NLMSG_ERROR, seq, struct.pack("=i", -err) + b"\0" * 16)


def client(*answers):
    c = rtnl.Rtnl.__new__(rtnl.Rtnl)
    c.sock, c.seq = FakeSock(answers), 0
    return c


def test_an_error_answer_raises_oserror_with_the_errno_and_the_request():
    c = client(error(1, errno.EEXIST))
    with pytest.raises(OSError) as e:
        c.add_bridge("kade0")
    assert e.value.errno == errno.EEXIST
    assert str(e.value) == "[Errno 17] File exists: 'netlink: add bridge kade0'"


def test_an_ack_ends_the_request_and_sequence_numbers_advance():
    c = client(error(1, 0), error(2, 0))
    c.set_link(3, up=True)
    c.del_link(3)
    sent = [rtnl._HDR.unpack_from(d) for d in c.sock.sent]
    assert [(s[1], s[3]) for s in sent] == [(rtnl.RTM_NEWLINK, 1), (rtnl.RTM_DELLINK, 2)]
    assert all(s[2] & rtnl.NLM_F_ACK and s[0] == len(d) for s, d in zip(sent, c.sock.sent))


def link(seq, index, name):
    return msg(rtnl.RTM_NEWLINK, seq, rtnl.ifinfo(index) + rtnl.string(rtnl.IFLA_IFNAME, name),
               rtnl.NLM_F_MULTI)


def test_a_dump_spans_datagrams_until_done_and_skips_stale_answers():
    c = client(error(9, 0) + link(1, 1, "lo"),  # a stale ACK of an abandoned request
               link(1, 2, "kade0") + link(1, 3, "kv0123456789ab"),
               msg(rtnl.NLMSG_DONE, 1, b"\0\0\0\0", rtnl.NLM_F_MULTI))
    assert [(lk["index"], lk["ifname"]) for lk in c.links()] == [
        (1, "lo"), (2, "kade0"), (3, "kv0123456789ab")]
    assert rtnl._HDR.unpack_from(c.sock.sent[0])[2] & rtnl.NLM_F_DUMP == rtnl.NLM_F_DUMP


def test_a_missing_link_has_no_index():
    assert client(error(1, errno.ENODEV)).link_index("nope") is None
    assert client(msg(rtnl.RTM_NEWLINK, 1, rtnl.ifinfo(7))).link_index("eth0") == 7
    with pytest.raises(OSError):
        client(error(1, errno.EPERM)).link_index("eth0")
