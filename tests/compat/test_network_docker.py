"""Kade's networks beside docker's: the same scenarios under `kade` and under a private
dockerd, both inside one network namespace of the test's own, and what a user would
compare: outputs and exit codes, modulo ids, port numbers and the CLI's name.

The namespace (`ip netns add`) holds both engines' bridges, rules and published ports,
and the "host" side that fetches from them (`nsenter --net`); nothing reaches the
host's own namespace. dockerd (Debian's 20.10, tests/compat/dockerd.py) runs in it with
its own socket, data root and exec root, iptables on and its default bridge on
172.30.0.1/16 (kade0 has 172.17.0.1/16 there). Both engines run busybox from Kade's
offline bootstrap (`kade save` | `docker load`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from dockerd import Docker, running_dockerd  # tests/compat, on sys.path

pytestmark = pytest.mark.compat

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
PORT = {"kade": 18080, "docker": 28080}  # host ports: both engines publish in one netns
WEB = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"


class Engine:
    """One engine's CLI, run inside the test's namespace: (exit code, stdout, stderr)."""

    def __init__(self, name: str, argv: list[str], enter: list[str]):
        self.name, self.argv, self.enter = name, argv, enter

    def __call__(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        # in the test's own namespace Kade makes its default bridge (tests/conftest.py
        # points every other root at a bridge-less daemon.json)
        env = {k: v for k, v in os.environ.items() if k != "KADE_DAEMON_CONFIG"}
        p = subprocess.run(self.enter + self.argv + list(args), capture_output=True,
                           text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args: str) -> str:
        rc, out, err = self(*args)
        assert rc == 0, f"{self.name} {' '.join(args)} exited {rc}: {err}"
        return out


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs iproute2 and nsenter (network namespaces)")
    name = f"kadecompat-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def engines(netns, tmp_path_factory) -> Iterator[dict[str, Engine]]:
    enter = ["nsenter", f"--net=/run/netns/{netns}"]
    flags = ("--bip=172.30.0.1/16", "--ip6tables=false")
    with running_dockerd(tmp_path_factory.mktemp("dockerd"), netns, flags) as docker:
        root = tmp_path_factory.mktemp("kade")
        kade = Engine("kade", KADE + ["--root", str(root)], enter)
        dock = Engine("docker", docker_argv(docker), enter)
        try:
            kade.ok("image", "bootstrap", "busybox")
            tar = root.parent / "busybox.tar"
            kade.ok("save", "-o", str(tar), "busybox")
            dock.ok("load", "-i", str(tar))
            yield {"kade": kade, "docker": dock}
        finally:
            for e in (kade, dock):
                ids = e("ps", "-aq")[1].split()
                if ids:
                    e("rm", "-f", *ids)
                e("network", "prune", "-f")
            kade("system", "monitor", "stop")
            shutil.rmtree(root, ignore_errors=True)


def docker_argv(docker: Docker) -> list[str]:
    # the client has no environment of its own here: DOCKER_CONFIG on the command line
    return ["env", f"DOCKER_CONFIG={docker.env['DOCKER_CONFIG']}", docker.cli, "-H",
            f"unix://{docker.sock}"]


def fetch(netns: str, url: str) -> str:
    """GET from the namespace's host side."""
    p = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c",
                        "import sys, urllib.request; sys.stdout.write(urllib.request."
                        "urlopen(sys.argv[1], timeout=5).read().decode())", url],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr[-500:]
    return p.stdout


def both(engines: dict[str, Engine], *args: str) -> dict[str, tuple[int, str, str]]:
    return {name: e(*args) for name, e in engines.items()}


HEX_ID = re.compile(r"\b[0-9a-f]{12,64}\b")


def message(err: str, ports: tuple[int, ...] = ()) -> str:
    """An error as a user reads it: without the CLI's own prefixes (`docker: `,
    `Error response from daemon: `, `Error: `), the run --help hint, ids and host
    ports."""
    text = " ".join(line for line in err.strip().splitlines()
                    if line and not line.startswith("See '"))
    text = re.sub(r"^(docker: )?(Error response from daemon: |Error: )?", "", text)
    text = HEX_ID.sub("<id>", text).rstrip(".")
    for port in ports:
        text = text.replace(str(port), "<port>")
    return text


def wait_listening(e: Engine, cid: str) -> None:
    """httpd runs once `netstat` in the container shows port 80 bound."""
    for _ in range(100):
        rc, out, _ = e("exec", cid, "netstat", "-ltn")
        if rc == 0 and ":80 " in out:
            return
        subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError(f"{e.name}: httpd never listened")


def test_web_server_through_a_published_port_on_loopback(engines, netns):
    bodies, ports = {}, {}
    for name, e in engines.items():
        cid = e.ok("run", "-d", "--name", "web", "-p", f"127.0.0.1:{PORT[name]}:80",
                   "busybox", "sh", "-c", WEB).strip()
        wait_listening(e, cid)
        bodies[name] = fetch(netns, f"http://127.0.0.1:{PORT[name]}/")
        ports[name] = e.ok("port", "web").replace(str(PORT[name]), "<port>")
    assert bodies == {"kade": "hello\n", "docker": "hello\n"}
    assert ports["kade"] == ports["docker"] == "80/tcp -> 127.0.0.1:<port>\n"
    one = {name: e("port", "web", "80") for name, e in engines.items()}
    assert {n: (rc, out.replace(str(PORT[n]), "<port>")) for n, (rc, out, _) in one.items()} \
        == {n: (0, "127.0.0.1:<port>\n") for n in engines}
    missing = both(engines, "port", "web", "81")
    assert missing["kade"][0] == missing["docker"][0] == 1
    assert message(missing["kade"][2]) == message(missing["docker"][2])


def test_port_in_use_is_refused_alike(engines):
    # after the web server above holds 127.0.0.1:PORT
    out = {name: e("run", "-d", "-p", f"127.0.0.1:{PORT[name]}:80", "busybox", "true")
           for name, e in engines.items()}
    assert out["kade"][0] == out["docker"][0] == 125
    docker_says = message(out["docker"][2], (PORT["docker"],))
    kade_says = message(out["kade"][2], (PORT["kade"],))
    # docker names the endpoint and network first; the cause is the same sentence
    tail = "Bind for 127.0.0.1:<port> failed: port is already allocated"
    assert docker_says.endswith(tail) and kade_says.endswith(tail), (kade_says, docker_says)


def test_two_containers_reach_each_other_by_name_on_a_user_network(engines):
    for e in engines.values():
        e.ok("network", "create", "pair")
        cid = e.ok("run", "-d", "--name", "server", "--network", "pair", "busybox", "sh",
                   "-c", WEB).strip()
        wait_listening(e, cid)
    got = both(engines, "run", "--rm", "--network", "pair", "busybox",
               "wget", "-qO-", "http://server/")
    assert got["kade"][:2] == got["docker"][:2] == (0, "hello\n")
    unknown = both(engines, "run", "--rm", "--network", "pair", "busybox",
                   "nslookup", "nosuchcontainer")
    assert unknown["kade"][0] == unknown["docker"][0] != 0


def test_removing_a_network_in_use_is_refused_alike(engines):
    # the server of the test above is still on "pair"
    out = both(engines, "network", "rm", "pair")
    assert out["kade"][0] == out["docker"][0] == 1
    assert message(out["kade"][2]) == message(out["docker"][2]) == \
        "error while removing network: network pair id <id> has active endpoints"


def test_internal_network_has_no_route_out(engines):
    """Nothing leaves an --internal network. docker 20.10 still gives the container a
    default route and drops what takes it in iptables; kade gives it no default route,
    so a connection out fails at once rather than after a timeout. Either way the
    user's `nc` to an address outside fails with exit code 1. (192.0.2.1 is TEST-NET-1,
    and the test's namespace has no route anywhere: nothing can leave it.)"""
    out = {}
    for name, e in engines.items():
        e.ok("network", "create", "--internal", "sealed")
        out[name] = e("run", "--rm", "--network", "sealed", "busybox", "sh", "-c",
                      "ip route; nc -w 2 192.0.2.1 80 </dev/null")
    assert out["kade"][0] == out["docker"][0] == 1, out
    kade_routes = out["kade"][1].splitlines()
    assert kade_routes and not [r for r in kade_routes if r.startswith("default")], out
    assert "can't connect to remote host (192.0.2.1)" in out["kade"][2], out
    assert "can't connect to remote host (192.0.2.1)" in out["docker"][2], out


def test_unknown_network_errors_alike(engines):
    run = both(engines, "run", "--rm", "--network", "nosuch", "busybox", "true")
    assert run["kade"][0] == run["docker"][0] == 125
    assert message(run["kade"][2]) == message(run["docker"][2]) == "network nosuch not found"
    for args in (["network", "rm", "nosuch"], ["network", "inspect", "nosuch"]):
        out = both(engines, *args)
        assert out["kade"][0] == out["docker"][0] == 1, args
        assert message(out["kade"][2]) == message(out["docker"][2]), args


def test_network_ls_has_docker_columns_and_rows(engines):
    listed = {}
    for name, e in engines.items():
        e.ok("network", "create", "listed")
        lines = e.ok("network", "ls").splitlines()
        listed[name] = (lines[0].split(), sorted(tuple(line.split()[1:]) for line in lines[1:]))
    assert listed["kade"][0] == listed["docker"][0] == ["NETWORK", "ID", "NAME", "DRIVER",
                                                        "SCOPE"]
    assert listed["kade"][1] == listed["docker"][1]
    assert ("listed", "bridge", "local") in listed["kade"][1]


def test_network_inspect_has_docker_top_level_keys(engines):
    keys = {}
    for name, e in engines.items():
        e("network", "create", "listed")  # made above when run in order
        for net in ("listed", "bridge"):
            data = json.loads(e.ok("network", "inspect", net))
            keys[name, net] = sorted(data[0])
    assert keys["kade", "listed"] == keys["docker", "listed"]
    assert keys["kade", "bridge"] == keys["docker", "bridge"]
