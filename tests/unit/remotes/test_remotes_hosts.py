"""Registry endpoints: mirrors for every registry, plain HTTP, the config file."""

from __future__ import annotations

import json

import pytest

from kade.errors import InvalidArgument
from kade.remotes.hosts import Hosts, is_loopback


def test_docker_hub_goes_to_registry_1():
    (ep,) = Hosts().endpoints("docker.io")
    assert ep.base == "https://registry-1.docker.io" and not ep.insecure


def test_mirrors_for_any_registry_in_order_then_the_registry():
    hosts = Hosts({"registries": {
        "docker.io": {"mirrors": ["http://127.0.0.1:5001", "mirror.example"]},
        "quay.io": {"mirrors": ["https://quay-cache.example"]}}})
    eps = hosts.endpoints("docker.io")
    assert [e.base for e in eps] == ["http://127.0.0.1:5001", "https://mirror.example",
                                     "https://registry-1.docker.io"]
    assert [e.mirror for e in eps] == [True, True, False]
    assert [e.base for e in hosts.endpoints("quay.io")] == ["https://quay-cache.example",
                                                            "https://quay.io"]
    assert [e.base for e in hosts.endpoints("quay.io", push=True)] == ["https://quay.io"]


def test_insecure_and_loopback_may_fall_back_to_http():
    hosts = Hosts({"registries": {"reg.local:5000": {"insecure": True}}})
    assert hosts.endpoints("reg.local:5000")[0].can_fall_back()
    assert hosts.endpoints("localhost:5000")[0].can_fall_back()
    assert hosts.endpoints("127.0.0.1:5000")[0].can_fall_back()
    assert not hosts.endpoints("registry.example")[0].can_fall_back()


@pytest.mark.parametrize("host, loop", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1", True), ("127.1.2.3:80", True),
    ("[::1]:5000", True), ("::1", True), ("10.0.0.1:5000", False), ("example.com", False)])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


def test_config_under_the_root_wins_over_etc(tmp_path):
    root, etc = tmp_path / "root", tmp_path / "etc"
    root.mkdir()
    etc.mkdir()
    (etc / "registries.json").write_text(json.dumps(
        {"registries": {"docker.io": {"mirrors": ["http://etc.example"]}}}))
    assert Hosts.load(str(root), str(etc)).endpoints("docker.io")[0].host == "etc.example"
    (root / "registries.toml").write_text(
        '[registries."docker.io"]\nmirrors = ["http://root.example"]\n')
    assert Hosts.load(str(root), str(etc)).endpoints("docker.io")[0].host == "root.example"


def test_bad_config_is_one_line(tmp_path):
    (tmp_path / "registries.json").write_text("{nope")
    with pytest.raises(InvalidArgument, match="invalid registries config"):
        Hosts.load(str(tmp_path), str(tmp_path / "none"))
    with pytest.raises(InvalidArgument, match="may not have a path"):
        Hosts({"registries": {"docker.io": {"mirrors": ["https://m.example/sub"]}}}) \
            .endpoints("docker.io")


def test_loopback_can_be_made_secure_and_certs_dir_set():
    hosts = Hosts({"registries": {"127.0.0.1:5000": {"insecure": False}},
                   "certs_dir": "/srv/certs.d"})
    assert not hosts.insecure("127.0.0.1:5000") and hosts.insecure("127.0.0.1:5001")
    assert hosts.certs_dir == "/srv/certs.d"
    assert Hosts().certs_dir == "/etc/docker/certs.d"
