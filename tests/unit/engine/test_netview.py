"""docker's view of a container's network: NetworkSettings, PORTS, NETWORKS, and the
hosts and resolv.conf files docker writes."""

from kade.engine import netview, spec

RECORD = {"Config": {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}},
          "HostConfig": {"NetworkMode": "default"},
          "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "", "IPPrefixLen": 0,
                                                      "MacAddress": "", "Gateway": ""}}}}
RUNNING = {"Status": "running", "Pid": 42, "Net": {
    "Endpoints": {"bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16,
                             "MacAddress": "02:42:ac:11:00:02", "Gateway": "172.17.0.1",
                             "Ifname": "eth0"}},
    "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                         {"HostIp": "::", "HostPort": "8080"}]}}}


def test_running_container_settings_and_columns():
    ns = netview.network_settings(RECORD, RUNNING)
    assert ns["IPAddress"] == "172.17.0.2" and ns["Gateway"] == "172.17.0.1"
    assert "Ifname" not in ns["Networks"]["bridge"]  # private fields stay private
    assert ns["Ports"]["443/tcp"] is None
    assert netview.ports_column(RECORD, RUNNING) == \
        "0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp"
    assert netview.networks_column(RECORD) == "bridge"


def test_stopped_container_shows_no_addresses():
    stopped = dict(RUNNING, Status="exited")
    ns = netview.network_settings(RECORD, stopped)
    assert ns["IPAddress"] == "" and ns["Ports"] == {}
    assert netview.ports_column(RECORD, stopped) == ""


def test_hosts_file_ends_with_links_and_own_address():
    text = spec.hosts_file("web", ["gw:host-gateway", "db:10.0.0.5"],
                           links=[("172.17.0.3", "alias 0123456789ab other")],
                           own=["172.17.0.2"], gateway="172.17.0.1")
    assert text.endswith("172.17.0.1\tgw\n10.0.0.5\tdb\n172.17.0.3\talias 0123456789ab "
                         "other\n172.17.0.2\tweb\n")


def test_resolv_conf_on_a_user_network_names_the_embedded_server():
    text = spec.resolv_conf([], mode="user")
    assert "nameserver 127.0.0.11\n" in text and "ndots:0" in text
    assert spec.resolv_conf(["1.1.1.1"], ["a.test"], ["ndots:2"]) == \
        "search a.test\nnameserver 1.1.1.1\noptions ndots:2\n"
