"""Networks end to end (issue 11): real containers, bridges and nftables rules, all in a
network namespace of the test's own (conftest.netkade); traffic goes only to that
namespace's loopback and to the networks the tests make."""

import os
import shutil
import time

import pytest

HTTPD = ["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]  # serves /etc/hostname


def run_d(k, *args):
    return k("run", "-d", *args).stdout.strip()


def test_the_supervisor_runs_in_the_tests_namespace(netkade):
    netkade("run", "--rm", "busybox", "true")
    pid = int(open(os.path.join(netkade.root, "monitor.pid")).read()) if os.path.exists(
        os.path.join(netkade.root, "monitor.pid")) else None
    want = os.stat(f"/run/netns/{netkade.ns}").st_ino
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    workers = [p for p in pids if _cmdline(p).startswith("kade-supervisor-worker --root "
                                                          + netkade.root)]
    assert workers or pid, "no supervisor worker found"
    for p in workers:
        assert os.stat(f"/proc/{p}/ns/net").st_ino == want
    assert os.stat("/proc/self/ns/net").st_ino != want


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("network", ["none", "bridge"])
def test_every_container_has_lo_up(netkade, network):
    out = netkade("run", "--rm", "--network", network, "busybox", "ip", "addr", "show",
                  "lo").stdout
    assert "UP" in out.split("\n")[0] and "127.0.0.1/8" in out and "::1/128" in out


def test_default_bridge_address_route_and_files(netkade):
    out = netkade("run", "--rm", "busybox", "sh", "-c",
                  "ip -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf").stdout
    bridge = netkade.inspect("network", "inspect", "bridge")[0]
    subnet = bridge["IPAM"]["Config"][0]
    assert f"default via {subnet['Gateway']}" in out
    assert "inet 172." in out or "inet 192.168." in out
    assert "127.0.0.11" not in out  # the default bridge has no embedded DNS, as docker
    assert netkade("ps", "-a", "--format", "{{.Networks}}").stdout.strip() in ("", "bridge")


def test_dns_flags_host_gateway_and_mac(netkade):
    out = netkade("run", "--rm", "--dns", "192.0.2.1", "--dns-search", "example.test",
                  "--dns-option", "ndots:3", "--add-host", "gw:host-gateway",
                  "--mac-address", "92:d0:c6:0a:29:33", "busybox", "sh", "-c",
                  "cat /etc/resolv.conf /etc/hosts; ip link show eth0").stdout
    gateway = netkade.inspect("network", "inspect", "bridge")[0]["IPAM"]["Config"][0][
        "Gateway"]
    assert "search example.test\nnameserver 192.0.2.1\noptions ndots:3\n" in out
    assert f"{gateway}\tgw\n" in out
    assert "link/ether 92:d0:c6:0a:29:33" in out


def test_build_runs_on_the_default_bridge(netkade, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN ip -4 addr show eth0 > /addr\n")
    netkade("build", "-q", "-t", "netbuild", str(tmp_path))
    try:
        assert "inet " in netkade("run", "--rm", "netbuild", "cat", "/addr").stdout
    finally:
        netkade("rmi", "netbuild")


def test_published_port_on_loopback_and_gateway(netkade):
    cid = run_d(netkade, "-p", "8080:80", *HTTPD)
    try:
        gateway = netkade.inspect("network", "inspect", "bridge")[0]["IPAM"]["Config"][0][
            "Gateway"]
        for host in ("127.0.0.1", gateway):
            assert netkade.fetch(f"http://{host}:8080/hostname").strip() == cid[:12]
        assert "0.0.0.0:8080->80/tcp" in netkade("ps").stdout
        assert "80/tcp -> 0.0.0.0:8080" in netkade("port", cid).stdout
    finally:
        netkade("rm", "-f", cid)
    # released with the container: the port is free again
    cid = run_d(netkade, "-p", "8080:80", *HTTPD)
    netkade("rm", "-f", cid)


def test_publish_all_and_port(netkade):
    cid = run_d(netkade, "--expose", "80", "--expose", "81", "-P", *HTTPD)
    try:
        lines = netkade("port", cid, "80").stdout.split()
        host_port = lines[0].rsplit(":", 1)[1]
        assert netkade.fetch(f"http://127.0.0.1:{host_port}/hostname").strip() == cid[:12]
        ports = netkade.inspect("inspect", cid)[0]["NetworkSettings"]["Ports"]
        assert set(ports) == {"80/tcp", "81/tcp"}
    finally:
        netkade("rm", "-f", cid)


def test_exposed_unpublished_port_shows_in_ps(netkade):
    cid = run_d(netkade, "--expose", "9000", "busybox", "sleep", "60")
    try:
        assert netkade("ps", "--format", "{{.Ports}}", "-f", f"id={cid}").stdout.strip() \
            == "9000/tcp"
    finally:
        netkade("rm", "-f", cid)


def test_names_and_aliases_on_a_user_network(netkade):
    netkade("network", "create", "app")
    web = run_d(netkade, "--name", "web", "--network", "app", "--network-alias", "www", *HTTPD)
    try:
        out = netkade("run", "--rm", "--network", "app", "busybox", "sh", "-c",
                      "cat /etc/resolv.conf; wget -qO- http://web/hostname; "
                      "wget -qO- http://www/hostname; "
                      f"wget -qO- http://{web[:12]}/hostname").stdout
        assert "nameserver 127.0.0.11" in out and "ndots:0" in out
        assert out.count(web[:12]) == 3
        info = netkade.inspect("network", "inspect", "app")[0]
        assert list(info["Containers"]) == [web]
        assert "www" in netkade.inspect("inspect", web)[0]["NetworkSettings"]["Networks"][
            "app"]["Aliases"]
    finally:
        netkade("rm", "-f", web)
        netkade("network", "rm", "app")


def _reaches(k, network, ip):
    out = k("run", "--rm", "--network", network, "busybox", "sh", "-c",
            f"nc -w 2 {ip} 80 </dev/null && echo OPEN || echo CLOSED", timeout=60).stdout
    return "OPEN" in out


def test_isolation_between_networks_and_internal(netkade):
    netkade("network", "create", "red")
    netkade("network", "create", "blue")
    netkade("network", "create", "--internal", "sealed")
    web = run_d(netkade, "--network", "red", *HTTPD)
    try:
        ip = netkade.inspect("inspect", web)[0]["NetworkSettings"]["Networks"]["red"][
            "IPAddress"]
        assert _reaches(netkade, "red", ip)
        assert not _reaches(netkade, "blue", ip)
        routes = netkade("run", "--rm", "--network", "sealed", "busybox", "ip",
                         "route").stdout
        assert "default" not in routes
        assert not _reaches(netkade, "sealed", ip)
    finally:
        netkade("rm", "-f", web)
        for n in ("red", "blue", "sealed"):
            netkade("network", "rm", n)


def test_connect_and_disconnect_a_running_container(netkade):
    netkade("network", "create", "side")
    netkade("network", "create", "home")
    web = run_d(netkade, "--name", "sideweb", "--network", "side", *HTTPD)
    # on a user network: its resolv.conf names the embedded DNS (docker does not
    # rewrite a default bridge container's when it is connected)
    box = run_d(netkade, "--name", "box", "--network", "home", "busybox", "sleep", "300")
    try:
        netkade("network", "connect", "side", "box")
        out = netkade("exec", "box", "sh", "-c", "ip -o link; wget -qO- http://sideweb/hostname"
                      ).stdout
        assert "eth1" in out and web[:12] in out
        assert box in netkade.inspect("network", "inspect", "side")[0]["Containers"]
        netkade("network", "disconnect", "side", "box")
        assert "eth1" not in netkade("exec", "box", "ip", "-o", "link").stdout
        assert box not in netkade.inspect("network", "inspect", "side")[0]["Containers"]
    finally:
        netkade("rm", "-f", web, box)
        netkade("network", "rm", "side", "home")


def test_network_container_mode_shares_the_namespace(netkade):
    web = run_d(netkade, "--name", "shared", *HTTPD)
    try:
        out = netkade("run", "--rm", "--network", "container:shared", "busybox", "wget",
                      "-qO-", "http://127.0.0.1/hostname").stdout
        assert out.strip() == web[:12]
    finally:
        netkade("rm", "-f", web)


def test_link_on_the_default_bridge(netkade):
    web = run_d(netkade, "--name", "linked", *HTTPD)
    try:
        out = netkade("run", "--rm", "--link", "linked:db", "busybox", "sh", "-c",
                      "cat /etc/hosts; wget -qO- http://db/hostname").stdout
        assert out.count(web[:12]) >= 2
    finally:
        netkade("rm", "-f", web)


def test_fixed_ip_survives_stop_and_start(netkade):
    netkade("network", "create", "--subnet", "10.123.0.0/24", "fixed")
    cid = run_d(netkade, "--network", "fixed", "--ip", "10.123.0.77", "busybox", "sleep", "300")
    try:
        netkade("stop", "-t", "0", cid)
        netkade("start", cid)
        out = netkade("exec", cid, "ip", "-4", "addr", "show", "eth0").stdout
        assert "10.123.0.77/24" in out
    finally:
        netkade("rm", "-f", cid)
        netkade("network", "rm", "fixed")


def test_ipv6_network(netkade):
    if not os.path.exists("/proc/sys/net/ipv6"):
        pytest.skip("no IPv6 in this kernel")
    netkade("network", "create", "--ipv6", "--subnet", "fd00:6::/64", "six")
    web = run_d(netkade, "--name", "web6", "--network", "six", *HTTPD)
    try:
        nets = netkade.inspect("inspect", web)[0]["NetworkSettings"]["Networks"]["six"]
        assert nets["GlobalIPv6Address"].startswith("fd00:6::")
        out = netkade("run", "--rm", "--network", "six", "busybox", "wget", "-qO-",
                      f"http://[{nets['GlobalIPv6Address']}]/hostname").stdout
        assert out.strip() == web[:12]
    finally:
        netkade("rm", "-f", web)
        netkade("network", "rm", "six")


# --- bad input: docker's message, and nothing created ------------------------------
def _nothing_new(k, before):
    assert k("ps", "-aq").stdout.split() == before


def test_unknown_network_is_refused(netkade):
    before = netkade("ps", "-aq").stdout.split()
    out = netkade("run", "--network", "nosuchnet", "busybox", "true", check=False)
    assert out.returncode == 125
    assert "network nosuchnet not found" in out.stderr
    _nothing_new(netkade, before)


def test_overlapping_subnet_is_refused(netkade):
    netkade("network", "create", "--subnet", "10.200.0.0/16", "one")
    try:
        out = netkade("network", "create", "--subnet", "10.200.5.0/24", "two", check=False)
        assert out.returncode == 1
        assert "Pool overlaps with other one on this address space" in out.stderr
        assert "two" not in netkade("network", "ls", "--format", "{{.Name}}").stdout.split()
    finally:
        netkade("network", "rm", "one")


def test_port_in_use_is_refused(netkade):
    cid = run_d(netkade, "-p", "8181:80", *HTTPD)
    try:
        before = netkade("ps", "-aq").stdout.split()
        out = netkade("run", "-d", "-p", "8181:80", "busybox", "true", check=False)
        assert out.returncode == 125
        assert "Bind for 0.0.0.0:8181 failed: port is already allocated" in out.stderr
        _nothing_new(netkade, before)
    finally:
        netkade("rm", "-f", cid)


def test_bad_publish_spec_is_refused(netkade):
    before = netkade("ps", "-aq").stdout.split()
    out = netkade("run", "-p", "80:foo", "busybox", "true", check=False)
    assert out.returncode == 125
    assert "Invalid containerPort: foo" in out.stderr
    _nothing_new(netkade, before)


def test_removing_a_network_in_use_is_refused(netkade):
    nid = netkade("network", "create", "busy").stdout.strip()
    cid = run_d(netkade, "--network", "busy", "busybox", "sleep", "300")
    try:
        out = netkade("network", "rm", "busy", check=False)
        assert out.returncode == 1
        assert (f"error while removing network: network busy id {nid} has active endpoints"
                in out.stderr)
    finally:
        netkade("rm", "-f", cid)
    netkade("network", "rm", "busy")


# --- the lifecycle leaves nothing --------------------------------------------------
def test_nothing_left_after_containers_go(netkade):
    netkade("network", "create", "tidy")
    ids = [run_d(netkade, "--network", "tidy", "-p", "8282:80", *HTTPD),
           run_d(netkade, "busybox", "sleep", "300")]
    netkade("rm", "-f", *ids)
    # the veths go with the containers' namespaces, which the kernel tears down
    # asynchronously after the last process left: wait for that, not for a time
    deadline = time.monotonic() + 10
    while [link for link in netkade.host_links() if link.startswith("kv")] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [link for link in netkade.host_links() if link.startswith("kv")]
    fw = netkade.client("from kade.network.firewall import Firewall; "
                        "print(sorted(Firewall().published()))")
    assert fw.stdout.strip() == "[]", fw.stderr
    netkade("network", "prune", "-f")
    assert "tidy" not in netkade("network", "ls").stdout


def test_dns_survives_a_killed_worker(netkade):
    netkade("network", "create", "keep")
    web = run_d(netkade, "--name", "kweb", "--network", "keep", *HTTPD)
    box = run_d(netkade, "--name", "kbox", "--network", "keep", "busybox", "sleep", "300")
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith(
            "kade-supervisor-worker --root " + netkade.root)]
        assert pids
        os.kill(int(pids[0]), 9)
        deadline = time.monotonic() + 20
        out = ""
        while time.monotonic() < deadline:
            out = netkade("exec", "kbox", "wget", "-qO-", "http://kweb/hostname",
                          check=False).stdout
            if web[:12] in out:
                break
            netkade("ps")  # any command starts the next worker, which re-adopts
        assert web[:12] in out
    finally:
        netkade("rm", "-f", web, box)
        netkade("network", "rm", "keep")


# --- --network container:X (docker's initializeNetworking) --------------------------
def test_container_mode_shares_hosts_resolv_conf_and_hostname(netkade):
    netkade("network", "create", "cmode")
    web = run_d(netkade, "--name", "cmx", "--hostname", "xbox", "--network", "cmode",
                "--dns-search", "x.test", *HTTPD)
    try:
        out = netkade("run", "--rm", "--network", "container:cmx", "busybox", "sh", "-c",
                      "hostname; cat /etc/hosts; echo ---; cat /etc/resolv.conf").stdout
        hosts, resolv = out.split("---")
        assert hosts.splitlines()[0] == "xbox"
        assert "xbox" in hosts and "search x.test" in resolv and "127.0.0.11" in resolv
        theirs = netkade.inspect("inspect", web)[0]
        y = run_d(netkade, "--network", "container:cmx", "busybox", "sleep", "300")
        mine = netkade.inspect("inspect", y)[0]
        for key in ("HostsPath", "ResolvConfPath", "HostnamePath"):
            assert mine[key] == theirs[key]
        assert mine["Config"]["Hostname"] == "xbox"
        netkade("rm", "-f", y)
    finally:
        netkade("rm", "-f", web)
        netkade("network", "rm", "cmode")


@pytest.mark.parametrize("flag", [("--hostname", "h"), ("--dns", "192.0.2.1"),
                                  ("--add-host", "a:192.0.2.2"), ("--expose", "80"),
                                  ("--mac-address", "92:d0:c6:0a:29:33"),
                                  ("--link", "cmy:db")])
def test_container_mode_refuses_what_it_cannot_honour(netkade, flag):
    web = run_d(netkade, "--name", "cmy", "busybox", "sleep", "300")
    try:
        before = netkade("ps", "-aq").stdout.split()
        out = netkade("run", "--network", "container:cmy", *flag, "busybox", "true",
                      check=False)
        assert out.returncode == 125
        assert "conflicting options:" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        _nothing_new(netkade, before)
    finally:
        netkade("rm", "-f", web)


def test_shared_namespace_outlives_x_with_lo_only_and_no_double_lease(netkade):
    """docker: X's sandbox goes at its stop (its endpoints deleted, addresses
    released) while Y, in X's namespace, keeps it with only lo."""
    netkade("network", "create", "--subnet", "10.124.0.0/29", "--ip-range",
            "10.124.0.2/32", "tiny")
    x = run_d(netkade, "--name", "cmz", "--network", "tiny", "busybox", "sleep", "300")
    y = run_d(netkade, "--network", "container:cmz", "busybox", "sleep", "300")
    try:
        assert "10.124.0.2/29" in netkade("exec", y, "ip", "-4", "addr").stdout
        netkade("stop", "-t", "0", x)
        links = netkade("exec", y, "cat", "/proc/net/dev").stdout
        assert "eth0" not in links and "lo:" in links
        assert "10.124.0.2" not in netkade("exec", y, "ip", "-4", "addr").stdout
        # the one address is free again: a new container gets it, and reaches nobody
        # who still holds it
        z = netkade("run", "--rm", "--network", "tiny", "busybox", "ip", "-4", "addr",
                    "show", "eth0").stdout
        assert "10.124.0.2/29" in z
    finally:
        netkade("rm", "-f", x, y)
        netkade("network", "rm", "tiny")


@pytest.mark.parametrize("runtime", ["runc"])  # crun: `run --runtime crun` fails on main too
def test_external_runtime_process_starts_with_its_network(netkade, runtime):
    """The first thing the container does sees eth0 with its address and route: the
    namespace is set up before the runtime runs anything in it."""
    if not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    out = netkade("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c",
                  "cat /sys/class/net/eth0/operstate; ip -4 route; ip addr show lo").stdout
    gateway = netkade.inspect("network", "inspect", "bridge")[0]["IPAM"]["Config"][0]["Gateway"]
    assert out.splitlines()[0] == "up"
    assert f"default via {gateway}" in out and "127.0.0.1/8" in out
