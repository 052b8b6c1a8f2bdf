#!/usr/bin/env python3
"""The network benchmark: kade's bridge, DNS and published ports beside docker's and
podman's, in one run, inside a network namespace of the benchmark's own.

    python bench/network.py [--install-peers] [--engines kade,docker,podman] [--runs 3]
                            [--out docs/benchmarks-network.md]

First (with --install-peers) apt-get installs docker.io, podman, iperf3 and
apache2-utils. Then it makes `kadebench-<random>` with `ip netns add` and moves
itself into it (setns), so every process it starts, dockerd, podman's netavark,
kade's supervisor, iperf3 and ab, lives there: every bridge, veth, nftables or
iptables rule and published port is made in that namespace, never in the host's,
and goes with it at the end (`ip netns del`). The rest is bench/run.py's (imported):
the workspace, the engines with private state, the shared busybox image, the
turn-taking sampler, the report's frame and machine facts, the cleanup. Here:

    dockerd     its default bridge docker0 (--bip 172.30.0.1/16: kade0 has 172.17),
                iptables on, its userland proxy on (its default): as a user gets it
    podman      its default network (netavark) and network configs in the workspace
    kade        its default bridge kade0, ports published in nftables

iperf3 runs in the containers from the host's binary: <tmp>/iperf holds
/usr/bin/iperf3, the libraries `ldd` names and the dynamic loader, bind-mounted
read-only at /opt/iperf and started through that loader, identically in every
engine. Measured, the engines taking turns round by round:

    a. iperf3 host -> container through a published port, on 127.0.0.1 and on
       the gateway address of the engine's default network
    b. ab -n 5000 -c 8 (no keep-alive) to busybox httpd through a port published
       on 127.0.0.1
    c. iperf3 container -> container on one user network (by address)
    d. `run --rm busybox true` on the default network (bench/run.py's sampler)
    e. name lookup of a container on a user network from another one: busybox
       nslookup in a loop inside the container, timed with /proc/uptime
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402 - bench/ is not a package: found through sys.path above
    PEERS,
    REPO,
    Engine,
    Samples,
    Unavailable,
    Workspace,
    add_common_args,
    call,
    install_peers,
    log,
    ms,
    ratio,
    sample,
    session,
    table,
    unavailable_row,
    verdict,
)

DEFAULT_RUNS = 3
IPERF_SECONDS = 5
AB_REQUESTS, AB_CONCURRENCY = 5000, 8
LOOKUPS = 200
NETWORK = "benchnet"
# host ports per engine: all three publish in the one namespace
PORTS = {"kade": (15201, 18080), "docker": (25201, 28080), "podman": (35201, 38080)}
DOCKER_BIP = "172.30.0.1/16"
PACKAGES = (*PEERS, "iperf3", "apache2-utils")
CLONE_NEWNET = 0x40000000

# kade over docker (higher is better for a, b, c; lower for d, e), and kade over podman
AIMS = {
    "loopback": ("throughput through 127.0.0.1", ">=", {"docker": 2.0, "podman": 1.0}),
    "gateway": ("throughput through the gateway address", ">=", {"docker": 2.0, "podman": 1.0}),
    "http": ("HTTP requests per second", ">=", {"docker": 2.0, "podman": 1.0}),
    "c2c": ("container to container throughput", ">=", {"docker": 0.95}),
    "run": ("`run --rm busybox true` on the default network", "<=", {"docker": 1 / 8}),
    "lookup": ("name lookup of another container", "<=", {"docker": 1.0}),
}


# ---------------------------------------------------------------- the namespace


def enter_netns(name: str) -> None:
    """Move this process into /run/netns/NAME (os.setns is Python 3.12's; this is 3.11)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


# ---------------------------------------------------------------- setting up


def iperf_dir(ws: Workspace) -> Path:
    """/usr/bin/iperf3, the libraries ldd names and the loader, in one folder."""
    folder = ws.dir / "iperf"
    folder.mkdir()
    binary = shutil.which("iperf3")
    if not binary:
        raise Unavailable("iperf3 is not installed (run with --install-peers)")
    shutil.copy(binary, folder / "iperf3")
    for line in call(["ldd", binary]).out.splitlines():
        m = re.search(r"(/\S+\.so[.\d]*)", line)
        if m:
            shutil.copy(os.path.realpath(m.group(1)), folder / os.path.basename(m.group(1)))
    return folder


# --forceflush: else "Server listening" sits in stdio's buffer, unseen by `logs`
IPERF = ["/opt/iperf/ld-linux-x86-64.so.2", "--library-path", "/opt/iperf",
         "/opt/iperf/iperf3", "--forceflush"]


def iperf_mount(ws: Workspace) -> list[str]:
    return ["-v", f"{ws.dir / 'iperf'}:/opt/iperf:ro"]


def prepare(ws: Workspace, engines: list[Engine]) -> None:
    """Every engine on its default network, podman's network configs in the workspace."""
    for engine in engines:
        engine.create_flags = [f for f in engine.create_flags if f not in ("--network", "none")]
        if engine.name == "podman" and not engine.unavailable:
            engine.argv += ["--network-config-dir", str(ws.dir / "podnet")]
            backend = engine.cli("info", "--format", "{{.Host.NetworkBackend}}").out.strip()
            engine.facts["network"] = backend or "?"
        elif engine.name == "docker" and not engine.unavailable:
            engine.facts["network"] = (f"default bridge docker0 --bip {DOCKER_BIP}, "
                                       "iptables, userland proxy (defaults)")
        elif engine.name == "kade" and not engine.unavailable:
            engine.facts["network"] = "default bridge kade0, nftables DNAT, no proxy"


def start(engine: Engine, *args: str) -> str:
    """`run -d ...`, returning the container id."""
    out = engine.cli(*engine.create_args("run", "-d", *args)).out.split()
    if not out:
        raise Unavailable(f"{engine.name} run -d printed no id")
    return out[-1]


def wait_log(engine: Engine, cid: str, text: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c = engine.cli("logs", cid)
        if text in c.out + c.err:
            return
        time.sleep(0.2)
    raise Unavailable(f"{engine.name}: container never logged {text!r}")


def inspect(engine: Engine, cid: str) -> dict:
    return json.loads(engine.cli("inspect", cid).out)[0]


def gateway_and_ip(engine: Engine, cid: str, network: str | None = None) -> tuple[str, str]:
    settings = inspect(engine, cid)["NetworkSettings"]
    nets = settings.get("Networks") or {}
    ep = nets.get(network) if network else next(iter(nets.values()), None)
    ep = ep or settings
    if not ep.get("IPAddress"):
        raise Unavailable(f"{engine.name}: container {cid[:12]} has no address on "
                          f"{network or 'its default network'}")
    return ep.get("Gateway") or settings.get("Gateway"), ep["IPAddress"]


class Servers:
    """Per engine: an iperf3 server and an httpd published on the default network, and
    an iperf3 server on a user network (the container-to-container peer and the name
    that lookups resolve)."""

    def __init__(self, ws: Workspace, engine: Engine) -> None:
        iperf_port, http_port = PORTS[engine.name]
        mount = iperf_mount(ws)
        self.iperf = start(engine, "-p", f"{iperf_port}:5201", *mount, engine.image,
                           *IPERF, "-s")
        self.http = start(engine, "-p", f"127.0.0.1:{http_port}:80", engine.image, "sh", "-c",
                          "mkdir -p /www && echo hello > /www/index.html && "
                          "exec httpd -f -p 80 -h /www")
        engine.cli("network", "create", NETWORK)
        self.peer = start(engine, "--network", NETWORK, "--name", "bench-peer", *mount,
                          engine.image, *IPERF, "-s")
        for cid in (self.iperf, self.peer):
            wait_log(engine, cid, "Server listening")
        self.gateway, _ = gateway_and_ip(engine, self.iperf)
        _, self.peer_ip = gateway_and_ip(engine, self.peer, NETWORK)
        self.iperf_port, self.http_port = iperf_port, http_port


# ---------------------------------------------------------------- measuring


def iperf_gbits(output: str) -> float:
    try:
        data = json.loads(output)
    except ValueError:
        raise Unavailable(f"iperf3 printed no JSON: {output[-200:]!r}") from None
    if data.get("error"):
        raise Unavailable(f"iperf3: {data['error']}")
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def host_iperf(address: str, port: int) -> float:
    c = call(["iperf3", "-c", address, "-p", str(port), "-t", str(IPERF_SECONDS), "-J"],
             timeout=IPERF_SECONDS + 60)
    return iperf_gbits(c.out)


def container_iperf(ws: Workspace, engine: Engine, servers: Servers) -> float:
    c = engine.cli(*engine.create_args(
        "run", "--rm", "--network", NETWORK, *iperf_mount(ws), engine.image, *IPERF,
        "-c", servers.peer_ip, "-t", str(IPERF_SECONDS), "-J"), timeout=IPERF_SECONDS + 60)
    return iperf_gbits(c.out)


def ab_rps(port: int) -> float:
    c = call(["ab", "-q", "-n", str(AB_REQUESTS), "-c", str(AB_CONCURRENCY),
              f"http://127.0.0.1:{port}/"], timeout=300)
    rps = re.search(r"^Requests per second:\s*([\d.]+)", c.out, re.M)
    failed = re.search(r"^Failed requests:\s*(\d+)", c.out, re.M)
    if c.rc != 0 or not rps:
        raise Unavailable(f"ab exited {c.rc}: {(c.err or c.out).strip()[-200:]}")
    if failed and int(failed.group(1)):
        raise Unavailable(f"ab: {failed.group(1)} of {AB_REQUESTS} requests failed")
    return float(rps.group(1))


# in the container: one lookup to warm up and check, then LOOKUPS lookups, then as many
# starts of a process that does nothing (the cost of starting nslookup, subtracted)
LOOKUP_SCRIPT = f"""nslookup bench-peer >/dev/null || exit 3
read a _ </proc/uptime
i=0; while [ $i -lt {LOOKUPS} ]; do nslookup bench-peer >/dev/null; i=$((i+1)); done
read b _ </proc/uptime
i=0; while [ $i -lt {LOOKUPS} ]; do /bin/sh -c : ; i=$((i+1)); done
read c _ </proc/uptime
echo $a $b $c"""


def lookup_seconds(engine: Engine) -> tuple[float, float]:
    """(seconds per lookup, seconds per lookup less a process start), in one container."""
    c = engine.cli(*engine.create_args("run", "--rm", "--network", NETWORK, engine.image,
                                       "sh", "-c", LOOKUP_SCRIPT))
    try:
        a, b, end = (float(x) for x in c.out.split()[-3:])
    except ValueError:
        raise Unavailable(f"{engine.name}: the lookup loop printed {c.out[-120:]!r}") from None
    return (b - a) / LOOKUPS, ((b - a) - (end - b)) / LOOKUPS


Measure = Callable[[Engine], float]


def rounds(engines: list[Engine], measure: Measure, runs: int, label: str,
           skip: dict[str, str]) -> dict[str, Samples | str]:
    """runs rounds, each engine once per round in turn; an engine that fails drops out,
    and one in skip (name -> why) never runs."""
    values: dict[str, list[float]] = {e.name: [] for e in engines}
    failed = {e.name: e.unavailable for e in engines if e.unavailable} | skip
    for i in range(runs):
        for engine in engines:
            if engine.name in failed:
                continue
            log(f"{label}: {engine.name}, round {i + 1}/{runs}")
            try:
                values[engine.name].append(measure(engine))
            except Unavailable as e:
                log(f"{label}: {engine.name} unavailable: {e}")
                failed[engine.name] = str(e)
    return {e.name: failed.get(e.name) or Samples(values[e.name]) for e in engines}


Figures = dict[str, dict[str, Samples | str]]


def bench_network(ws: Workspace, engines: list[Engine], runs: int) -> Figures:
    servers: dict[str, Servers] = {}
    broken: dict[str, str] = {}  # engine -> why its servers did not start
    for engine in engines:
        if engine.unavailable:
            continue
        log(f"starting servers: {engine.name}")
        try:
            servers[engine.name] = Servers(ws, engine)
        except Unavailable as e:
            log(f"{engine.name} unavailable: {e}")
            broken[engine.name] = f"setting up its servers: {e}"
    f: Figures = {}
    f["loopback"] = rounds(engines, lambda e: host_iperf("127.0.0.1", servers[e.name].iperf_port),
                           runs, "iperf3 via 127.0.0.1", broken)
    f["gateway"] = rounds(engines, lambda e: host_iperf(servers[e.name].gateway,
                                                        servers[e.name].iperf_port),
                          runs, "iperf3 via the gateway", broken)
    f["http"] = rounds(engines, lambda e: ab_rps(servers[e.name].http_port), runs, "ab",
                       broken)
    f["c2c"] = rounds(engines, lambda e: container_iperf(ws, e, servers[e.name]), runs,
                      "iperf3 container to container", broken)
    less_start: dict[str, list[float]] = {}

    def lookup(engine: Engine) -> float:
        whole, net = lookup_seconds(engine)
        less_start.setdefault(engine.name, []).append(net)
        return whole

    f["lookup"] = rounds(engines, lookup, runs, "name lookups", broken)
    f["lookup_net"] = {n: Samples(less_start[n]) if isinstance(s, Samples) else s
                       for n, s in f["lookup"].items()}
    live = [e for e in engines if not e.unavailable]
    log("run --rm on the default network, interleaved")
    timed = sample(live, lambda e: e.create_args("run", "--rm", e.image, "true"),
                   runs * 7, 2)
    f["run"] = {e.name: e.unavailable or timed[e.name] for e in engines}
    f["gateways"] = {name: s.gateway for name, s in servers.items()}
    return f


# ---------------------------------------------------------------- the report


INTRO = """Written by `python bench/network.py{args}` on {date} UTC, in {took}. Do not edit
by hand: rerun the runner (bench/README.md). Everything ran inside one network namespace
made for the run (`ip netns add kadebench-…`, deleted at the end): the three engines, their
bridges and rules, and the clients (iperf3, ab), which stand for the host. Every engine ran
as root with private state in one temporary directory and the same busybox image; iperf3
inside the containers is the host's binary with its libraries, bind-mounted read-only.
The engines took turns round by round, so a change in load fell on all of them alike;
ratios compare figures of this one run only. docker is Debian's dockerd 20.10 on its
default bridge with its defaults (iptables, docker-proxy for 127.0.0.1); podman 4.3 on
its default network (netavark). Other figures are in docs/benchmarks.md."""

THROUGHPUT_TEXT = """`iperf3 -c ADDRESS -p PORT -t {secs} -J` from the namespace's host side
to `iperf3 -s` in a container started with `-p PORT:5201` on the engine's default network;
{runs} rounds, Gbit/s received (median, min, max). ADDRESS is 127.0.0.1, then the gateway
address of that network (kade {gateways})."""

HTTP_TEXT = """`ab -q -n {n} -c {c} http://127.0.0.1:PORT/` (no keep-alive: one connection
per request) to busybox `httpd` serving a 6-byte file in a container started with
`-p 127.0.0.1:PORT:80`; {runs} rounds, requests per second (median, min, max), no request
failed."""

C2C_TEXT = """`iperf3 -c ADDRESS -t {secs} -J` in a `run --rm` container to `iperf3 -s` in
another, both on one user network made with `network create {net}`, ADDRESS the server's
address on it; {runs} rounds, Gbit/s received."""

RUN_TEXT = """`run --rm busybox true` on the engine's default network (kade0, docker0,
podman's `podman`), {runs} runs per engine after 2 warm-ups, the engines taking turns
call by call; wall time of the CLI."""

LOOKUP_TEXT = """Inside one `run --rm --network {net}` container per round: one `nslookup
bench-peer` (the iperf3 server on that network) to warm up and check, then {n} more in a
shell loop, timed with /proc/uptime (10 ms ticks, over the whole loop); then {n} starts of
`/bin/sh -c :`, the cost of starting a process, which the last column subtracts. Every
engine answers from its own resolver: kade's and docker's at 127.0.0.11, podman's
aardvark-dns at the network's gateway. {runs} rounds, time per lookup."""


def cells(samples: Samples | str, fmt: Callable[[float], str]) -> list[str]:
    if isinstance(samples, str):
        return [f"unavailable: {samples}", "", ""]
    return [fmt(samples.median), fmt(min(samples.seconds)), fmt(max(samples.seconds))]


def compare(kade, other, name: str) -> str:
    if name == "kade" or not isinstance(kade, Samples) or not isinstance(other, Samples):
        return ""
    return ratio(kade.median, other.median)


def figure_table(results: dict[str, Samples | str], fmt: Callable[[float], str],
                 unit: str) -> list[str]:
    header = ["engine", f"median {unit}", "min", "max", "kade/engine (median)"]
    kade = results.get("kade")
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append(unavailable_row(name, r, len(header)))
        else:
            rows.append([name, *cells(r, fmt), compare(kade, r, name)])
    return table(header, rows)


def gbit(x: float) -> str:
    return f"{x:.2f}"


def per_second(x: float) -> str:
    return f"{x:.0f}"


def report_aims(f: Figures) -> list[str]:
    lines = ["## Aims", "", "kade's median over each peer's, against the issue's aims "
             "(for throughput and requests higher is better, for times lower):", ""]
    for key, (what, sense, limits) in AIMS.items():
        kade = f[key].get("kade")
        for peer, limit in limits.items():
            other = f[key].get(peer)
            aim = f"kade/{peer} {sense} {limit:g}" if limit >= 1 or sense == ">=" else \
                f"kade/{peer} <= 1/{round(1 / limit)}"
            if not isinstance(kade, Samples) or not isinstance(other, Samples):
                why = "kade" if not isinstance(kade, Samples) else peer
                lines.append(f"- {what}, {aim}: not measured ({why} unavailable)")
                continue
            r = kade.median / other.median
            ok = r >= limit if sense == ">=" else r <= limit
            lines.append(f"- {what}, {aim}: {r:.3f}: {verdict(ok)}")
    return lines


def report(f: Figures, runs: int) -> list[list[str]]:
    gws = ", ".join(f"{n} {g}" for n, g in f["gateways"].items())
    tput = THROUGHPUT_TEXT.format(secs=IPERF_SECONDS, runs=runs, gateways=gws)
    return [
        report_aims(f),
        ["## a. Host to container through a published port", "", tput, "",
         "### 127.0.0.1", "", *figure_table(f["loopback"], gbit, "Gbit/s"), "",
         "### The gateway address", "", *figure_table(f["gateway"], gbit, "Gbit/s")],
        ["## b. HTTP requests through a published port", "",
         HTTP_TEXT.format(n=AB_REQUESTS, c=AB_CONCURRENCY, runs=runs), "",
         *figure_table(f["http"], per_second, "requests/s")],
        ["## c. Container to container on a user network", "",
         C2C_TEXT.format(secs=IPERF_SECONDS, net=NETWORK, runs=runs), "",
         *figure_table(f["c2c"], gbit, "Gbit/s")],
        ["## d. `run --rm busybox true` on the default network", "",
         RUN_TEXT.format(runs=runs * 7), "", *figure_table(f["run"], ms, "")],
        ["## e. Name lookup of another container", "",
         LOOKUP_TEXT.format(net=NETWORK, n=LOOKUPS, runs=runs), "",
         "### Per lookup", "", *figure_table(f["lookup"], ms, ""), "",
         "### Per lookup, less a process start", "", *figure_table(f["lookup_net"], ms, "")],
    ]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Kade's networking beside docker's and podman's.")
    add_common_args(p, DEFAULT_RUNS, "rounds per measurement (run --rm: 7 times as many)",
                    REPO / "docs" / "benchmarks-network.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("run as root: network namespaces, the peers' daemons and kade's runtime need it")
        return 2
    if args.install_peers:  # before entering the namespace, which has no way out
        install_peers(PACKAGES)
        args.install_peers = False
    name = f"kadebench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        enter_netns(name)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        log(f"in network namespace {name}")

        def benchmarks(ws: Workspace, engines: list[Engine]) -> list[list[str]]:
            iperf_dir(ws)
            prepare(ws, engines)
            return report(bench_network(ws, engines, args.runs), args.runs)

        return session(args, argv, benchmarks, title="Network benchmarks", intro=INTRO,
                       dockerd_network=[f"--bip={DOCKER_BIP}", "--ip6tables=false"])
    finally:
        # the namespace lives on while a process is in it: session() has killed ours
        subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    sys.exit(main())
