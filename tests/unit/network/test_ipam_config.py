"""IPAM (docker's default pools and allocation order) and daemon.json's network keys."""

import pytest

from kade.errors import Conflict, InvalidArgument, Unavailable
from kade.network import config, ipam


def test_the_first_pool_entry_that_overlaps_nothing():
    assert ipam.pick_subnet(config.DEFAULT_POOLS, []) == "172.17.0.0/16"
    taken = ["172.17.0.0/16", "172.18.5.0/24", "10.0.0.0/8"]
    assert ipam.pick_subnet(config.DEFAULT_POOLS, taken) == "172.19.0.0/16"
    every_172 = [f"172.{n}.0.0/16" for n in range(17, 32)]
    assert ipam.pick_subnet(config.DEFAULT_POOLS, every_172) == "192.168.0.0/20"
    with pytest.raises(Unavailable):
        ipam.pick_subnet([("10.0.0.0/24", 24)], ["10.0.0.0/8"])


def test_addresses_go_up_from_the_gateway_and_skip_leases():
    assert ipam.gateway_for("10.1.0.0/24", None) == "10.1.0.1"
    assert ipam.allocate("10.1.0.0/24", "10.1.0.1", []) == "10.1.0.2"
    assert ipam.allocate("10.1.0.0/24", "10.1.0.1", ["10.1.0.2"]) == "10.1.0.3"
    assert ipam.allocate("10.1.0.0/24", "10.1.0.1", [], ip_range="10.1.0.128/25") \
        == "10.1.0.129"
    assert ipam.allocate("fd00::/64", "fd00::1", []) == "fd00::2"


def test_a_fixed_address_must_be_free_and_inside():
    assert ipam.allocate("10.1.0.0/24", "10.1.0.1", [], want="10.1.0.77") == "10.1.0.77"
    with pytest.raises(Conflict):
        ipam.allocate("10.1.0.0/24", "10.1.0.1", ["10.1.0.77"], want="10.1.0.77")
    with pytest.raises(InvalidArgument):
        ipam.allocate("10.1.0.0/24", "10.1.0.1", [], want="10.2.0.7")


def test_bad_gateway_and_range():
    with pytest.raises(InvalidArgument):
        ipam.gateway_for("10.1.0.0/24", "10.9.0.1")
    with pytest.raises(InvalidArgument):
        ipam.check_range("10.1.0.0/24", "10.2.0.0/25")
    with pytest.raises(InvalidArgument, match="invalid CIDR address: nope"):
        ipam.parse_subnet("nope")


def test_dockers_mac_from_the_address():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_daemon_json(tmp_path):
    assert config.load(str(tmp_path)).pools == config.DEFAULT_POOLS
    (tmp_path / "daemon.json").write_text(
        '{"bip": "10.5.0.1/24", "mtu": 1400, "bridge": "none", "dns": ["127.0.0.1:53"],'
        ' "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}')
    cfg = config.load(str(tmp_path))
    assert (cfg.bip, cfg.mtu, cfg.bridge, cfg.dns) == ("10.5.0.1/24", 1400, "none",
                                                       ("127.0.0.1:53",))
    assert ipam.pick_subnet(cfg.pools, []) == "10.10.0.0/24"
    (tmp_path / "daemon.json").write_text('{"mtu": 12}')
    with pytest.raises(InvalidArgument, match="daemon.json"):
        config.load(str(tmp_path))


def test_daemon_json_ipv6(tmp_path):
    assert (config.load(str(tmp_path)).ipv6, config.load(str(tmp_path)).fixed_cidr_v6) == \
        (False, None)
    (tmp_path / "daemon.json").write_text('{"ipv6": true, "fixed-cidr-v6": "fd00:1:2::/64"}')
    cfg = config.load(str(tmp_path))
    assert (cfg.ipv6, cfg.fixed_cidr_v6) == (True, "fd00:1:2::/64")
    for bad, word in (('{"ipv6": "yes"}', "ipv6"), ('{"fixed-cidr-v6": "10.0.0.0/8"}',
                                                     "10.0.0.0/8"),
                      ('{"fixed-cidr-v6": "fd00::zz/64"}', "fd00::zz/64")):
        (tmp_path / "daemon.json").write_text(bad)
        with pytest.raises(InvalidArgument, match=word):
            config.load(str(tmp_path))


def test_host_networks_needs_no_pyroute2():
    """The default bridge's subnet is picked in whichever process runs first (often a
    supervisor worker): that must not load pyroute2 (~10 MB for the worker's life)."""
    import subprocess
    import sys
    code = ("import sys; from kade.network import netlink; nets = netlink.host_networks(); "
            "assert all('/' in n for n in nets), nets; print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
