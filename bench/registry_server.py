"""Kade's registry server against Debian's docker-registry (distribution 2.8),
side by side on loopback, with the same small client for both.

    python bench/registry_server.py [--size-mb 100] [--rounds 3] [--heads 1000]

Measures, for each server, on its own fresh root directory:
- monolithic blob PUT (POST, then PUT ?digest= with the whole body), MB/s;
- blob GET of that blob, MB/s (client reads into a reused buffer);
- HEAD of a blob, requests/s, from 8 client processes on 8 keep-alive
  connections, `--heads` requests each.
The best of `--rounds` is kept for PUT and GET. Prints a table with the
ratios kade/registry. Needs docker-registry (apt-get install docker-registry).
Never run by the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REGISTRY = "/usr/bin/docker-registry"
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def start_registry(workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = os.path.join(workdir, "registry.yml")
    with open(config, "w") as f:
        f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {workdir}/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    proc = subprocess.Popen([REGISTRY, "serve", config], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(workdir, "registry.log"), "w"))
    wait_listening(port, proc)
    return proc, port


def start_kade(workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-c", "from kade.cli.main import entry; entry()", "registry",
           "serve", "--addr", f"127.0.0.1:{port}", "--root", f"{workdir}/kade-data"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(workdir, "kade.log"), "w"))
    wait_listening(port, proc)
    return proc, port


# -- a minimal HTTP/1.1 client: the same, cheap code path for both servers

class Client:
    def __init__(self, port: int):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, path: str, body: bytes | memoryview = b"",
                headers: dict | None = None) -> tuple[int, dict, int]:
        """Sends a request, reads the head; returns (status, headers, body length)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if body:
            self.sock.sendall(body)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        length = 0 if method == "HEAD" else int(hdrs.get("content-length", "0"))
        return int(status_line.split()[1]), hdrs, length

    def read_body(self, length: int, sink: memoryview) -> None:
        take = min(len(self.buf), length)
        self.buf = self.buf[take:]
        length -= take
        while length:
            n = self.sock.recv_into(sink[:min(length, len(sink))])
            if n == 0:
                raise ConnectionError("short body")
            length -= n

    def skip_body(self, length: int) -> None:
        if length:
            self.read_body(length, memoryview(bytearray(65536)))


def put_blob(port: int, name: str, data: bytes) -> tuple[str, float]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    c = Client(port)
    t0 = time.perf_counter()
    status, hdrs, length = c.request("POST", f"/v2/{name}/blobs/uploads/")
    c.skip_body(length)
    assert status == 202, status
    loc = hdrs["location"]
    loc = re.sub(r"^https?://[^/]+", "", loc)
    sep = "&" if "?" in loc else "?"
    status, _, length = c.request("PUT", f"{loc}{sep}digest={digest}", memoryview(data),
                                  {"Content-Type": "application/octet-stream"})
    c.skip_body(length)
    elapsed = time.perf_counter() - t0
    assert status == 201, status
    return digest, elapsed


def get_blob(port: int, name: str, digest: str, size: int) -> float:
    c = Client(port)
    sink = memoryview(bytearray(1 << 20))
    t0 = time.perf_counter()
    status, _, length = c.request("GET", f"/v2/{name}/blobs/{digest}")
    assert status == 200 and length == size, (status, length)
    c.read_body(length, sink)
    return time.perf_counter() - t0


def _head_worker(port: int, path: str, count: int, start, queue) -> None:
    c = Client(port)
    c.request("HEAD", path)
    start.wait()
    t0 = time.perf_counter()
    for _ in range(count):
        status, _, _ = c.request("HEAD", path)
        if status != 200:
            queue.put(("error", status))
            return
    queue.put(("ok", time.perf_counter() - t0))


def heads_per_second(port: int, name: str, digest: str, count: int) -> float:
    start, queue = mp.Event(), mp.Queue()
    path = f"/v2/{name}/blobs/{digest}"
    workers = [mp.Process(target=_head_worker, args=(port, path, count, start, queue))
               for _ in range(CLIENTS)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    results = [queue.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
    if any(kind != "ok" for kind, _ in results):
        raise SystemExit(f"HEAD failed: {results}")
    return CLIENTS * count / elapsed


def measure(port: int, size: int, rounds: int, heads: int) -> dict:
    put_times, get_times, digest = [], [], ""
    base = os.urandom(size)
    for i in range(rounds):
        data = i.to_bytes(8, "big") + base[8:]
        digest, t = put_blob(port, "bench/blob", data)
        put_times.append(t)
        get_times.append(get_blob(port, "bench/blob", digest, size))
    mb = size / 1e6
    return {"put": mb / min(put_times), "get": mb / min(get_times),
            "head": heads_per_second(port, "bench/blob", digest, heads)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--heads", type=int, default=1000, help="HEAD requests per client")
    ns = p.parse_args()
    if not os.path.exists(REGISTRY):
        print(f"{REGISTRY} is missing: apt-get install docker-registry", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="kade-bench-registry-")
    procs = []
    try:
        reg, reg_port = start_registry(workdir)
        procs.append(reg)
        kade, kade_port = start_kade(workdir)
        procs.append(kade)
        size = ns.size_mb * 1000 * 1000
        results = {}
        for label, port in (("docker-registry", reg_port), ("kade", kade_port)):
            results[label] = measure(port, size, ns.rounds, ns.heads)
        _print(results, ns)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _print(results: dict, ns) -> None:
    reg, kade = results["docker-registry"], results["kade"]
    rows = [(f"blob PUT, {ns.size_mb} MB monolithic (MB/s)", "put", 2.0),
            (f"blob GET, {ns.size_mb} MB (MB/s)", "get", 1.0),
            (f"blob HEAD, {CLIENTS} keep-alive clients (req/s)", "head", 2.0)]
    print(f"{'measure':<44} {'docker-registry':>16} {'kade':>10} {'ratio':>7} {'aim':>6}")
    for label, key, aim in rows:
        ratio = kade[key] / reg[key]
        print(f"{label:<44} {reg[key]:>16.1f} {kade[key]:>10.1f} {ratio:>6.2f}x {aim:>5.1f}x")


if __name__ == "__main__":
    sys.exit(main())
