"""Names the embedded DNS does not know are forwarded to the host's resolvers: here a
fake resolver (tests/dns_upstream.py) on the loopback of the test's namespace, named in
daemon.json's "dns". The container's own loopback is not the namespace's, so an answer
proves the forwarding."""

import ctypes
import os
import shutil
import threading

import pytest
from netkade import NetKade
from dns_upstream import FakeUpstream


def _upstream_in(ns: str) -> FakeUpstream:
    out = {}

    def make():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            assert ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) == 0
        finally:
            os.close(fd)
        out["u"] = FakeUpstream()  # its sockets stay in the namespace they were made in

    t = threading.Thread(target=make)
    t.start()
    t.join()
    return out["u"]


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, iproute2 and nsenter (network namespaces)")
    root = str(tmp_path_factory.mktemp("kade-dns"))
    k = NetKade(root)
    upstream = _upstream_in(k.ns)
    with open(os.path.join(root, "daemon.json"), "w") as f:
        f.write(f'{{"dns": ["{upstream.address}"]}}\n')
    try:
        k("image", "bootstrap", "busybox")
        yield k, upstream
    finally:
        k.cleanup()
        upstream.close()
        shutil.rmtree(root, ignore_errors=True)


def test_unknown_names_go_to_the_hosts_resolver(forwarding):
    k, upstream = forwarding
    k("network", "create", "fwd")
    try:
        out = k("run", "--rm", "--network", "fwd", "busybox", "nslookup", "example.test").stdout
        assert "192.0.2.10" in out
        assert any(name == "example.test." for _proto, name, _type in upstream.seen)
        missing = k("run", "--rm", "--network", "fwd", "busybox", "nslookup", "nope.test",
                    check=False)
        assert "192.0.2" not in missing.stdout
    finally:
        k("network", "rm", "fwd")
