"""A network lab of the test's own: nothing here touches the host's namespace.

`@isolated` runs a test in a forked child that first unshares a new network
namespace (the lab's "host"); bridges, veths and rules are made there, and the
"containers" and the "outside" are further namespaces held by `unshare -n sleep`
processes (no /run/netns names to leak). Traffic goes only to addresses made here.
`ip` commands are fine in tests; Kade itself never shells out to them.
"""

import ctypes
import functools
import os
import shutil
import socket
import subprocess
import sys
import traceback

import pytest

CLONE_NEWNET = 0x40000000

SERVER = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
if proto == "tcp":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        with c:
            c.sendall(c.recv(1024) + b" from " + peer[0].encode())
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((host, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(1024)
        print(data.decode(), flush=True)
        s.sendto(data + b" from " + peer[0].encode(), peer)
"""

CLIENT = r"""
import socket, sys
proto, host, port, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if proto == "tcp":
        with socket.create_connection((host, port), timeout=3) as c:
            c.sendall(data); print(c.recv(1024).decode())
    else:
        with socket.socket(fam, socket.SOCK_DGRAM) as c:
            c.settimeout(3); c.sendto(data, (host, port)); print(c.recv(1024).decode())
except OSError as e:
    print(type(e).__name__)
"""


def needs_lab():
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def isolated(test):
    """Run the test in a forked child inside a new network namespace; its failure
    (traceback) is reported by the parent."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        needs_lab()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            message = b""
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
                test(*args, **kwargs)
            except BaseException:  # noqa: B036 - reported to the parent
                message = traceback.format_exc().encode() or b"failed"
            with os.fdopen(w, "wb") as out:
                out.write(message)
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as inp:
            message = inp.read()
        os.waitpid(pid, 0)
        if message:
            pytest.fail(message.decode(), pytrace=False)
    return wrapper


def sh(cmd: str) -> str:
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    return proc.stdout


class Netns:
    """A namespace held by a sleeping process; commands enter it with nsenter."""

    def __init__(self):
        self.proc = subprocess.Popen(["unshare", "-n", "sh", "-c", "echo ready; exec sleep 3600"],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == b"ready\n"
        self.path = f"/proc/{self.proc.pid}/ns/net"
        self.sh("ip link set lo up")

    def sh(self, cmd: str) -> str:
        return sh(f"nsenter --net={self.path} sh -c '{cmd}'")

    def popen(self, *argv, **kw) -> subprocess.Popen:
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], **kw)

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Lab:
    """The test's "host" namespace plus containers on bridges and one outside peer."""

    def __init__(self):
        self.spaces: list[Netns] = []
        self.procs: list[subprocess.Popen] = []
        self.veths = 0
        sh("ip link set lo up")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for space in self.spaces:
            space.close()

    def bridge(self, name: str, cidr: str) -> None:
        sh(f"ip link add {name} type bridge && ip addr add {cidr} dev {name} "
           f"&& ip link set {name} up")

    def _veth(self, cidr: str, gateway: str, host_cidr: str = "", master: str = "") -> Netns:
        ns = Netns()
        self.spaces.append(ns)
        self.veths += 1
        host, peer = f"kv{self.veths}", f"kp{self.veths}"
        ns.host_if = host
        sh(f"ip link add {host} type veth peer name {peer} "
           f"&& ip link set {peer} netns {ns.proc.pid} && ip link set {host} up")
        if master:  # hairpin: what the bridge driver sets on a port, as docker does
            sh(f"ip link set {host} master {master} && "
               f"ip link set {host} type bridge_slave hairpin on")
        if host_cidr:
            sh(f"ip addr add {host_cidr} dev {host}")
        ns.sh(f"ip link set {peer} name eth0 && ip addr add {cidr} dev eth0 "
              f"&& ip link set eth0 up && ip route add default via {gateway}")
        return ns

    def container(self, bridge: str, cidr: str, gateway: str) -> Netns:
        return self._veth(cidr, gateway, master=bridge)

    def outside(self, host_cidr: str, cidr: str) -> Netns:
        """A peer on a routed link, like a machine on the host's LAN."""
        return self._veth(cidr, host_cidr.split("/")[0], host_cidr=host_cidr)

    def serve(self, ns: Netns | None, proto: str, host: str, port: int) -> subprocess.Popen:
        argv = [sys.executable, "-c", SERVER, proto, host, str(port)]
        proc = ns.popen(*argv, stdout=subprocess.PIPE) if ns else subprocess.Popen(
            argv, stdout=subprocess.PIPE)
        self.procs.append(proc)
        assert proc.stdout.readline() == b"ready\n"
        return proc


def talk(proto: str, host: str, port: int, data: str = "hello", ns: Netns | None = None) -> str:
    """Send data from ns (None: the lab's host) and return the answer, or the name of
    the error (ConnectionRefusedError, TimeoutError)."""
    argv = [sys.executable, "-c", CLIENT, proto, host, str(port), data]
    if ns is not None:
        argv = ["nsenter", f"--net={ns.path}", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
