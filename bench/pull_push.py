#!/usr/bin/env python3
"""Pull and push against Debian's docker-registry on loopback: kade vs docker vs podman.

    python bench/pull_push.py [--runs 5] [--engines kade,docker,podman] [--out FILE]

Two images are made here, from a fixed seed, and uploaded to a source registry:

    big:1     one layer, about 50 MB gzipped (zlib level 6, as docker pushes)
    five:1    five layers of about 10 MB gzipped each

and timed, the engines taking turns run by run:

    pull      `pull 127.0.0.1:PORT/<image>` into an empty store: a new `kade --root`
              per run; docker and podman remove the image (and so its layers) first
    push      `push` of the pulled image to a registry started empty for that run
              (a new port and storage, so no engine can skip or mount a blob)

Every engine has private state in one temporary directory: `kade --root`, a dockerd
with its own socket, data root and exec root (`--insecure-registry 127.0.0.0/8`,
no iptables, no bridge), podman with `--root/--runroot/--tmpdir` and
`--tls-verify=false`. Nothing leaves loopback. Prints medians and the ratios
kade/peer (targets: pulls at most 1/2 of docker's and of podman's, pushes at
most 1/2 of podman's) as a Markdown table, also written to --out when given.
Needs root, docker-registry, docker.io and podman. Never run by the tests.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REGISTRY = "/usr/bin/docker-registry"
DOCKERD = "/usr/sbin/dockerd"
TARGETS = {("pull", "docker"): 0.5, ("pull", "podman"): 0.5, ("push", "podman"): 0.5}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- the images --------------------------------------------------------------------------


def layer(seed: int, target_gz: int) -> bytes:
    """A layer tar like a language runtime's: many small text files, some binaries."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_.", k=rng.randint(2, 9)))
             for _ in range(3000)]
    buf = io.BytesIO()
    gz_estimate = 0
    n = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        while gz_estimate < target_gz:
            d = f"usr/lib/l{seed}/pkg{n // 50:03d}"
            if n % 50 == 0:
                _add(tar, d, None)
            if n % 70 == 69:  # a binary: incompressible
                body = rng.randbytes(rng.randint(200_000, 900_000))
                gz_estimate += len(body)
            else:
                size = int(rng.paretovariate(1.1) * 1500) % 200_000
                body = b" ".join(rng.choices(words, k=size // 5 + 1))[:size]
                gz_estimate += len(body) // 3
            _add(tar, f"{d}/f{n:05d}", body)
            n += 1
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, body: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 1_700_000_000
    if body is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(body), 0o644
        tar.addfile(info, io.BytesIO(body))


def make_image(tars: list[bytes]) -> tuple[bytes, list[bytes]]:
    blobs = [gzip.compress(t, 6, mtime=0) for t in tars]
    config = json.dumps({
        "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64", "os": "linux",
        "created": "2024-01-01T00:00:00Z", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
    }).encode()
    return config, blobs


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_image(host: str, repo: str, tag: str, config: bytes, blobs: list[bytes]) -> None:
    for blob in [config, *blobs]:
        req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
        with urllib.request.urlopen(req) as resp:
            loc = resp.headers["Location"]
        loc = loc if "://" in loc else f"http://{host}{loc}"
        req = urllib.request.Request(f"{loc}&digest={sha(blob)}", data=blob, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req).close()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": sha(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(b), "digest": sha(b)} for b in blobs]}, indent=3).encode()
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    urllib.request.urlopen(req).close()


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, base: Path):
        self.base = base
        self.port = free_port()
        base.mkdir(parents=True)
        (base / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {base / 'storage'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(base / "config.yml")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_http(f"http://{self.host}/v2/", self.proc)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace').strip()[-400:]}")
    return seconds


def quiet(argv: list[str], env: dict | None = None) -> None:
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)


# --- engines -----------------------------------------------------------------------------


class Kade:
    name = "kade"

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.exe = [str(Path(sys.executable).with_name("kade"))]
        if not os.path.exists(self.exe[0]):
            self.exe = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
        self.env = {**os.environ, "DOCKER_CONFIG": str(tmp / "kade-docker-config")}
        self.n = 0
        self.root = ""

    def fresh(self) -> None:
        if self.root:
            self.cleanup()
        self.n += 1
        self.root = str(self.tmp / f"kade-{self.n}")

    def pull(self, ref: str) -> float:
        self.fresh()
        return timed([*self.exe, "--root", self.root, "pull", ref], self.env)

    def push(self, ref: str, target: str) -> float:
        quiet([*self.exe, "--root", self.root, "tag", ref, target], self.env)
        return timed([*self.exe, "--root", self.root, "push", target], self.env)

    def cleanup(self) -> None:
        if self.root:
            quiet(["umount", "-R", self.root])
            shutil.rmtree(self.root, ignore_errors=True)


class Docker:
    name = "docker"

    def __init__(self, tmp: Path):
        base = tmp / "docker"
        base.mkdir()
        self.sock = base / "docker.sock"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = str(base / "client")
        self.proc = subprocess.Popen(
            [DOCKERD, "--host", f"unix://{self.sock}", "--data-root", str(base / "data"),
             "--exec-root", str(base / "exec"), "--pidfile", str(base / "docker.pid"),
             "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--insecure-registry", "127.0.0.0/8"],
            stdout=open(base / "dockerd.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.sock.exists() and subprocess.run(self.cli("version"), env=self.env,
                                                     capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError("dockerd did not start: " +
                           (base / "dockerd.log").read_text(errors="replace")[-500:])

    def cli(self, *args: str) -> list[str]:
        return ["docker", "-H", f"unix://{self.sock}", *args]

    def pull(self, ref: str) -> float:
        self.empty()
        return timed(self.cli("pull", ref), self.env)

    def empty(self) -> None:
        """Remove every image (all its tags), so its layers go too."""
        ids = subprocess.run(self.cli("images", "-q"), env=self.env, capture_output=True,
                             text=True).stdout.split()
        if ids:
            quiet(self.cli("rmi", "-f", *sorted(set(ids))), self.env)

    def push(self, ref: str, target: str) -> float:
        quiet(self.cli("tag", ref, target), self.env)
        return timed(self.cli("push", target), self.env)

    def cleanup(self) -> None:
        stop(self.proc)


class Podman:
    name = "podman"

    def __init__(self, tmp: Path):
        base = tmp / "podman"
        base.mkdir()
        (base / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(base / "registries.conf")}
        self.base_args = ["podman", "--root", str(base / "root"), "--runroot",
                          str(base / "run"), "--tmpdir", str(base / "tmp"),
                          "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                          "--runtime", "runc"]

    def pull(self, ref: str) -> float:
        quiet([*self.base_args, "rmi", "-a", "-f"], self.env)
        return timed([*self.base_args, "pull", "--tls-verify=false", ref], self.env)

    def push(self, ref: str, target: str) -> float:
        quiet([*self.base_args, "tag", ref, target], self.env)
        return timed([*self.base_args, "push", "--tls-verify=false", target], self.env)

    def cleanup(self) -> None:
        quiet([*self.base_args, "rmi", "-a", "-f"], self.env)


# --- the run -----------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--engines", default="kade,docker,podman")
    ap.add_argument("--out")
    ns = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run me as root: kade, dockerd and podman need it")
    tmp = Path(tempfile.mkdtemp(prefix="kade-bench-pullpush-"))
    engines, registries = [], []
    try:
        source = Registry(tmp / "source")
        registries.append(source)
        log("making the images")
        sizes = {}
        for name, tars in (("big", [layer(1, 46 << 20)]),
                           ("five", [layer(10 + i, 9 << 20) for i in range(5)])):
            config, blobs = make_image(tars)
            upload_image(source.host, name, "1", config, blobs)
            sizes[name] = (sum(map(len, blobs)), sum(map(len, tars)), len(blobs))
        for cls in (Kade, Docker, Podman):
            if cls.name in ns.engines.split(","):
                try:
                    engines.append(cls(tmp))
                except Exception as e:  # an engine fails alone
                    log(f"{cls.name} unavailable: {e}")
        results: dict[tuple[str, str, str], list[float]] = {}
        for image in ("big", "five"):
            ref = f"{source.host}/{image}:1"
            for run in range(ns.runs + 1):  # the first run warms caches and is dropped
                for engine in engines:
                    log(f"{image}: run {run}/{ns.runs}: {engine.name} pull")
                    t = engine.pull(ref)
                    if run:
                        results.setdefault((image, "pull", engine.name), []).append(t)
                    target = Registry(tmp / f"push-{image}-{run}-{engine.name}")
                    try:
                        log(f"{image}: run {run}/{ns.runs}: {engine.name} push")
                        t = engine.push(ref, f"{target.host}/{image}:1")
                    finally:
                        target.stop()
                    if run:
                        results.setdefault((image, "push", engine.name), []).append(t)
        report = render(results, sizes, [e.name for e in engines], ns.runs)
        print(report)
        if ns.out:
            Path(ns.out).write_text(report)
        return 0
    finally:
        for e in engines:
            e.cleanup()
        for r in registries:
            r.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def render(results: dict, sizes: dict, names: list[str], runs: int) -> str:
    lines = [f"Medians of {runs} runs (after one dropped warm-up), engines taking turns.", "",
             "| image | op | " + " | ".join(names) + " | kade/docker | kade/podman | target |",
             "|---|---|" + "---|" * (len(names) + 3)]
    for image in ("big", "five"):
        gz, raw, n = sizes[image]
        label = f"{image} ({n} layer{'s' if n > 1 else ''}, {gz / 1e6:.0f} MB gz, " \
                f"{raw / 1e6:.0f} MB tar)"
        for op in ("pull", "push"):
            med = {e: statistics.median(results[(image, op, e)]) for e in names
                   if (image, op, e) in results}
            cells = [f"{med[e]:.2f} s" if e in med else "-" for e in names]
            ratios, verdicts = [], []
            for peer in ("docker", "podman"):
                if "kade" in med and peer in med:
                    r = med["kade"] / med[peer]
                    ratios.append(f"{r:.2f}")
                    goal = TARGETS.get((op, peer))
                    if goal:
                        verdicts.append(f"{peer} <= {goal}: {'met' if r <= goal else 'not met'}")
                else:
                    ratios.append("-")
            lines.append(f"| {label} | {op} | " + " | ".join(cells) + " | " +
                         " | ".join(ratios) + f" | {'; '.join(verdicts)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
