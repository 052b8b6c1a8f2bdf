"""Suite-wide fixtures: a private Kade root per module and the real `kade` CLI (for
integration, security and fault tests), and the supervisors' stop at the end."""

import os
import shutil
import subprocess
import sys

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]

# Every root this suite makes, whoever makes it, runs in the host's network namespace
# unless a test gives it one of its own (tests/integration/network): point them all at a
# bridge-less daemon.json, so no test makes a bridge or rule in the host's namespace.
_NO_BRIDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-bridge.json")
os.environ.setdefault("KADE_DAEMON_CONFIG", _NO_BRIDGE)


def _needs_root():
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (namespaces, mounts, cgroups)")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("Debian's busybox-static is not installed (apt-get install busybox-static)")


class Kade:
    def __init__(self, root: str):
        self.root = root

    def __call__(self, *args, input=None, check=True, timeout=60):
        proc = subprocess.run(KADE + ["--root", self.root, *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kade {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def cleanup(self):
        ids = self("ps", "-aq", "--no-trunc", check=False).stdout.split()
        if ids:
            self("rm", "-f", *ids, check=False)
        self("system", "monitor", "stop", check=False)


@pytest.fixture(scope="module")
def kade_root(tmp_path_factory):
    """Makes more private roots like `kade`'s (busybox bootstrapped); all go at the end."""
    made: list[Kade] = []

    def make() -> Kade:
        _needs_root()
        root = str(tmp_path_factory.mktemp("kade-root"))
        _no_default_bridge(root)
        k = Kade(root)
        made.append(k)
        k("image", "bootstrap", "busybox")
        return k
    yield make
    for k in made:
        k.cleanup()
        if not os.environ.get("KADE_KEEP_TEST_ROOT"):
            shutil.rmtree(k.root, ignore_errors=True)


@pytest.fixture(scope="module")
def kade(kade_root):
    return kade_root()


def _no_default_bridge(root: str) -> None:
    """The suite's roots run in the host's network namespace: no default bridge there
    (docker's --bridge=none), so their containers get lo only and no test touches the
    host's interfaces or rules. Network tests run Kade in a namespace of their own
    (tests/integration/network/conftest.py)."""
    with open(os.path.join(root, "daemon.json"), "w") as f:
        f.write('{"bridge": "none"}\n')


def _host_kade_links() -> set[str]:
    """Kade's links, and its nftables table, in this process's network namespace."""
    try:
        found = {n for n in os.listdir("/sys/class/net") if n.startswith(("kade", "kv"))}
    except OSError:
        found = set()
    if shutil.which("nft"):
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        if "table inet kade" in tables.stdout:
            found.add("table inet kade")
    return found


@pytest.fixture(scope="session", autouse=True)
def _host_network_untouched():
    """The network rule, checked: the suite leaves no Kade bridge or veth in the host's
    own network namespace."""
    before = _host_kade_links()
    yield
    made = _host_kade_links() - before
    assert not made, f"the suite made {sorted(made)} in the host's network namespace"


@pytest.fixture(scope="session", autouse=True)
def _stop_supervisors(tmp_path_factory):
    """Every Kade root a test made may have a container supervisor; stop the idle ones
    when the session ends rather than leave them to their idle timeout. Best effort:
    a supervisor that is exiting anyway must not fail the run."""
    yield
    from kade.engine.monitorclient import shutdown
    try:
        sockets = list(tmp_path_factory.getbasetemp().rglob("monitor.sock"))
    except OSError:
        return
    for sock in sockets:
        try:
            shutdown(str(sock.parent), wait=0)
        except (OSError, ValueError):
            continue


@pytest.fixture(scope="module")
def box(kade):
    """A running container of the module's root, for exec tests."""
    kade("run", "-d", "--name", "box", "busybox", "sleep", "3600")
    yield "box"
    kade("rm", "-f", "box", check=False)


@pytest.fixture(scope="module")
def runc_box(kade):
    """The same, run by Debian's runc (`--runtime`)."""
    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("needs Debian's runc (apt-get install runc)")
    kade("run", "-d", "--runtime", "/usr/sbin/runc", "--name", "runc-box", "busybox", "sleep", "3600")
    yield "runc-box"
    kade("rm", "-f", "runc-box", check=False)

