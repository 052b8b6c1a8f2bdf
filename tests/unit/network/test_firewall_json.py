"""The nftables JSON that Firewall sends, through a recording fake at the Nft seam
(tests/integration/network/test_firewall_live.py runs the same in a real kernel)."""

import pytest

from kade.errors import InvalidArgument
from kade.network.firewall import Firewall, PortBinding
from kade.network.nft import NftError, _error

KEY = "ab" * 32


class FakeNft:
    """Records each transaction; list_table answers a listing the test sets."""

    def __init__(self, listing=None):
        self.listing = listing or []
        self.runs: list[list[dict]] = []

    def run(self, commands):
        self.runs.append(commands)
        return []

    def list_table(self, family, name):
        return self.listing


def _rule(chain, handle, comment="", expr=()):
    body = {"family": "inet", "table": "kade", "chain": chain, "handle": handle,
            "expr": list(expr)}
    if comment:
        body["comment"] = comment
    return {"rule": body}


def _firewall(listing=None):
    fake = FakeNft(listing)
    fw = Firewall(nft=lambda: fake)
    fw.ensure()
    fake.runs.clear()
    return fw, fake


def _added_rules(commands):
    return [c["add"]["rule"] for c in commands if "rule" in c.get("add", {})]


def test_ensure_makes_the_table_in_one_transaction_and_flushes_only_its_base_chains():
    fake = FakeNft()
    Firewall(nft=lambda: fake).ensure()
    [cmds] = fake.runs
    assert cmds[0] == {"add": {"table": {"family": "inet", "name": "kade"}}}
    chains = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in cmds
              if "chain" in c.get("add", {})}
    assert {n: (c.get("type"), c.get("hook"), c.get("prio")) for n, c in chains.items()} == {
        "guard": ("filter", "prerouting", -300), "prerouting": ("nat", "prerouting", -100),
        "output": ("nat", "output", -100), "postrouting": ("nat", "postrouting", 100),
        "forward": ("filter", "forward", 0), "published": (None, None, None),
        "masq": (None, None, None), "internal": (None, None, None),
        "isolate": (None, None, None), "egress": (None, None, None),
        "ingress": (None, None, None)}
    flushed = [c["flush"]["chain"]["name"] for c in cmds if "flush" in c]
    assert flushed == ["guard", "prerouting", "output", "postrouting", "forward"]
    assert all(r["chain"] in flushed and "comment" not in r for r in _added_rules(cmds))
    assert all(c[verb].get(kind, {}).get("table", "kade") == "kade" for c in cmds
               for verb in c for kind in c[verb])


def test_publish_dnats_each_port_to_the_address_of_its_family():
    fw, fake = _firewall()
    fw.publish(KEY, "kt0", ["10.88.0.2", "fd88::2"], [
        PortBinding("", 8080, 80, "tcp"), PortBinding("127.0.0.1", 53, 5353, "udp"),
        PortBinding("::1", 9000, 9000, "tcp")])
    [cmds] = fake.runs
    rules = _added_rules(cmds)
    assert [r["comment"] for r in rules] == [
        f"{KEY} tcp * 8080 80", f"{KEY} tcp * 8080 80", f"{KEY} udp 127.0.0.1 53 5353",
        f"{KEY} tcp ::1 9000 9000"]
    assert {r["chain"] for r in rules} == {"published"}
    assert rules[0]["expr"] == [
        {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}},
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}},
                   "right": 8080}},
        {"dnat": {"family": "ip", "addr": "10.88.0.2", "port": 80}}]
    assert rules[1]["expr"][-1] == {"dnat": {"family": "ip6", "addr": "fd88::2", "port": 80}}
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                      "right": "127.0.0.1"}} in rules[2]["expr"]
    assert rules[3]["expr"][-1]["dnat"]["addr"] == "fd88::2"


def test_publish_replaces_only_its_own_keys_rules_in_the_same_transaction():
    listing = [_rule("published", 7, f"{KEY} tcp * 8080 80"),
               _rule("published", 8, f"{'cd' * 32} tcp * 8081 80"),
               _rule("masq", 9, "network kt0")]
    fw, fake = _firewall(listing)
    fw.publish(KEY, "kt0", ["10.88.0.2"], [PortBinding("", 9090, 90, "tcp")])
    [cmds] = fake.runs
    assert cmds[0] == {"delete": {"rule": {"family": "inet", "table": "kade",
                                           "chain": "published", "handle": 7}}}
    assert [c for c in cmds if "delete" in c] == cmds[:1]
    fw.unpublish(KEY)
    assert fake.runs[1] == cmds[:1]


def test_published_reads_the_comments_back_once_per_binding():
    listing = [_rule("published", 1, f"{KEY} tcp * 8080 80"),
               _rule("published", 2, f"{KEY} tcp * 8080 80"),  # the same binding's ip6 rule
               _rule("published", 3, f"{KEY} udp ::1 53 53"),
               _rule("published", 4, "not ours"), _rule("masq", 5, f"{KEY} tcp * 1 1"),
               {"set": {"family": "inet", "name": "bridges", "table": "kade",
                        "type": "ifname", "elem": ["kt0", "kt1"]}}]
    fw, _ = _firewall(listing)
    assert fw.published() == {KEY: [PortBinding("", 8080, 80, "tcp"),
                                    PortBinding("::1", 53, 53, "udp")]}
    assert fw.networks() == ["kt0", "kt1"]


def test_an_internal_network_gets_drops_and_no_masquerade():
    fw, fake = _firewall([_rule("internal", 3, "network kt0"), _rule("internal", 4, "network kt9")])
    fw.add_network("kt0", ["10.88.0.0/24", "fd88::/64"], internal=True)
    [cmds] = fake.runs
    assert [c["delete"]["rule"]["handle"] for c in cmds if "delete" in c] == [3]
    assert {"add": {"element": {"family": "inet", "table": "kade", "name": "bridges",
                                "elem": ["kt0"]}}} in cmds
    rules = _added_rules(cmds)
    assert {r["comment"] for r in rules} == {"network kt0"}
    assert [r["chain"] for r in rules] == ["internal", "internal", "isolate", "isolate",
                                           "egress", "ingress"]
    assert rules[0]["expr"][-1] == {"drop": None}


def test_remove_network_deletes_its_rules_and_its_set_element():
    listing = [_rule("masq", 3, "network kt0"), _rule("egress", 4, "network kt0"),
               _rule("egress", 5, "network kt1"),
               {"set": {"family": "inet", "name": "bridges", "table": "kade", "type": "ifname",
                        "elem": ["kt0", "kt1"]}}]
    fw, fake = _firewall(listing)
    fw.remove_network("kt0")
    [cmds] = fake.runs
    assert [c["delete"].get("rule", {}).get("handle") for c in cmds] == [3, 4, None]
    assert cmds[-1]["delete"]["element"]["elem"] == ["kt0"]


@pytest.mark.parametrize("bridge", ["", "a" * 16, "has space", 'q"uote'])
def test_a_bad_bridge_name_is_refused_before_anything_runs(bridge):
    fw, fake = _firewall()
    with pytest.raises(InvalidArgument):
        fw.add_network(bridge, ["10.0.0.0/24"], internal=True)
    assert fake.runs == []


def test_a_key_that_cannot_be_a_comment_is_refused_before_anything_runs():
    fw, fake = _firewall()
    for key in ("x" * 100, "two words"):
        with pytest.raises(InvalidArgument):
            fw.publish(key, "kt0", ["10.0.0.2"], [PortBinding("", 80, 80, "tcp")])
    assert fake.runs == []


def test_nft_errors_read_as_one_line_and_know_a_missing_object():
    e = _error("internal:0:0-0: Error: No such file or directory; did you mean table ‘kade’ "
               "in family inet?\n\n")
    assert isinstance(e, NftError) and e.missing
    assert str(e) == ("nftables: No such file or directory; did you mean table ‘kade’ in "
                      "family inet?")
    assert not _error("Error: Could not process rule: Operation not permitted\n").missing
