"""kill -9 of the supervisor's worker, or of `kade run`, at a random moment of starting a
container with a network, a published port and DNS: whatever the kill interrupted, the
next worker's start (plus `rm -f` of the containers) or `network prune` leaves no veth,
no published rule, no lease. KADE_FAULT_SEED=<seed> replays the moments."""

import os
import random
import signal
import subprocess
import time

from netkade import KADE

SEED = int(os.environ.get("KADE_FAULT_SEED") or random.randrange(1 << 32))
ROUNDS = 4


def _workers(root):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("kade-supervisor-worker --root " + root):
                out.append(int(p))
    return out


def _leftovers(k):
    links = [link for link in k.host_links() if link.startswith("kv")]
    fw = k.client("from kade.network.firewall import Firewall; "
                  "print(sorted(Firewall().published()))").stdout.strip()
    leases = k.client("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
                      "'SELECT COUNT(*) FROM leases').fetchone()[0])",
                      os.path.join(k.root, "kade.db")).stdout.strip()
    return links, fw, leases


def test_kill9_while_starting_leaves_nothing(netkade):
    rng = random.Random(SEED)
    netkade("network", "create", "faulty")
    netkade("run", "--rm", "busybox", "true")  # a warm worker: kills land mid-start
    log = []
    for i in range(ROUNDS):
        victim = rng.choice(("worker", "client"))
        delay = rng.uniform(0.0, 0.25)
        log.append(f"{victim}@{delay:.3f}")
        run = subprocess.Popen(netkade.enter + KADE + [
            "--root", netkade.root, "run", "-d", "--name", f"f{i}", "--network", "faulty",
            "-p", f"{9100 + i}:80", "busybox", "sleep", "300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if victim == "client":
            run.kill()
        else:
            for pid in _workers(netkade.root):
                os.kill(pid, signal.SIGKILL)
        run.wait()
    ids = netkade("ps", "-aq").stdout.split()  # starts a new worker: it reconciles
    if ids:
        netkade("rm", "-f", *ids)
    netkade("network", "prune", "-f")
    assert _leftovers(netkade) == ([], "[]", "0"), f"KADE_FAULT_SEED={SEED}; {log}"
    assert "faulty" not in netkade("network", "ls").stdout
