"""`netkade`: the real `kade` CLI run inside a network namespace of the test's own, so
its supervisor (forked by the first command) lives there too, and every bridge, veth,
nftables rule and published port is made in that namespace, never in the host's.

`ip netns add` makes the namespace (test-only use of iproute2); commands enter it with
`nsenter --net` (not `ip netns exec`, which remounts /sys and so hides the cgroup
tree kade needs). `netkade.client(code)` runs Python inside the namespace: the
namespace's "host" side, e.g. to fetch a published port on 127.0.0.1.
"""

import json
import os
import subprocess
import sys
import uuid

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


class NetKade:
    def __init__(self, root: str):
        self.root = root
        self.ns = f"kadetest-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        self.enter = ["nsenter", f"--net=/run/netns/{self.ns}"]
        # in a namespace of its own, Kade may make its default bridge (tests/conftest.py
        # points every other root at a bridge-less daemon.json)
        self.env = {k: v for k, v in os.environ.items() if k != "KADE_DAEMON_CONFIG"}

    def __call__(self, *args, check=True, timeout=60, input=None):
        proc = subprocess.run(self.enter + KADE + ["--root", self.root, *args], input=input,
                              capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kade {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def client(self, code: str, *args, timeout=30):
        """Python in the namespace (the containers' host side)."""
        return subprocess.run(self.enter + [sys.executable, "-c", code, *args],
                              capture_output=True, text=True, timeout=timeout)

    def fetch(self, url: str) -> str:
        out = self.client("import sys, urllib.request; sys.stdout.write(urllib.request."
                          "urlopen(sys.argv[1], timeout=5).read().decode())", url)
        assert out.returncode == 0, out.stderr[-500:]
        return out.stdout

    def inspect(self, *args) -> list:
        return json.loads(self(*args).stdout)

    def host_links(self) -> list[str]:
        out = subprocess.run(["ip", "-n", self.ns, "-o", "link"], capture_output=True,
                             text=True, check=True).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def cleanup(self):
        ids = self("ps", "-aq", "--no-trunc", check=False).stdout.split()
        if ids:
            self("rm", "-f", *ids, check=False)
        self("network", "prune", "-f", check=False)
        self("system", "monitor", "stop", check=False)
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
