"""daemon.json's "ipv6" and "fixed-cidr-v6" (dockerd's --ipv6 --fixed-cidr-v6): the
default bridge gets a v6 subnet, and its containers an address in it and a route out
through its gateway; in a network namespace of the test's own (netkade.NetKade)."""

import os
import shutil

import pytest
from netkade import NetKade


@pytest.fixture(scope="module")
def v6kade(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, iproute2 and nsenter (network namespaces)")
    if not os.path.exists("/proc/sys/net/ipv6"):
        pytest.skip("no IPv6 in this kernel")
    root = str(tmp_path_factory.mktemp("kade-v6"))
    with open(os.path.join(root, "daemon.json"), "w") as f:
        f.write('{"ipv6": true, "fixed-cidr-v6": "fd00:17::/64"}\n')
    k = NetKade(root)
    try:
        k("image", "bootstrap", "busybox")
        yield k
    finally:
        k.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_default_bridge_has_the_fixed_v6_subnet(v6kade):
    net = v6kade.inspect("network", "inspect", "bridge")[0]
    assert net["EnableIPv6"] is True
    assert {"Subnet": "fd00:17::/64", "Gateway": "fd00:17::1"} in net["IPAM"]["Config"]
    out = v6kade("run", "--rm", "busybox", "sh", "-c", "ip -6 addr show eth0; ip -6 route")
    assert "inet6 fd00:17::" in out.stdout and "default via fd00:17::1" in out.stdout


def test_containers_reach_each_other_over_v6(v6kade):
    web = v6kade("run", "-d", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc").stdout.strip()
    try:
        ep = v6kade.inspect("inspect", web)[0]["NetworkSettings"]
        addr = ep["GlobalIPv6Address"]
        assert addr.startswith("fd00:17::") and ep["IPv6Gateway"] == "fd00:17::1"
        out = v6kade("run", "--rm", "busybox", "wget", "-qO-", f"http://[{addr}]/hostname")
        assert out.stdout.strip() == web[:12]
    finally:
        v6kade("rm", "-f", web)
