"""A private dockerd for the compat tests: Debian's docker.io (20.10) with its own
socket, data root, exec root and pidfile in a temporary directory, without
iptables or a bridge, so it never touches the host's docker or its network.

Test modules import it by name (pytest puts tests/compat on sys.path):

    from dockerd import Docker, running_dockerd, why_not_docker

    @pytest.fixture(scope="module")
    def docker(tmp_path_factory):
        with running_dockerd(tmp_path_factory.mktemp("dockerd")) as client:
            yield client
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCKERD = "/usr/sbin/dockerd"


def docker_cli() -> str | None:
    """Debian's client before any other on PATH: the client is half of the legacy
    builder (it tars the context and applies .dockerignore), so it must be the
    same 20.10 as the daemon, not whatever newer static binary sits first on PATH."""
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    return shutil.which("docker")


def why_not_docker() -> str | None:
    if os.geteuid() != 0:
        return "dockerd needs root"
    if not os.path.exists(DOCKERD):
        return f"{DOCKERD} is missing: apt-get install docker.io"
    if docker_cli() is None:
        return "the docker CLI is missing: apt-get install docker.io"
    return None


@dataclass
class Docker:
    sock: str
    env: dict
    cli: str = "docker"

    def __call__(self, *args: str, stdin: bytes | None = None, check: bool = True,
                 timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.cli, "-H", f"unix://{self.sock}", *args], input=stdin,
                              check=False, capture_output=True,
                              env={**self.env, **(env or {})}, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr.decode(errors='replace')}")
        return proc

    def out(self, *args: str) -> str:
        return self(*args).stdout.decode().strip()


def _client_env(base: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(base / "client")  # no user config, no credentials
    return env


def _daemon_env() -> dict:
    """The daemon's registry traffic goes to a dead loopback proxy, so a test that
    names an image it did not load fails at once instead of pulling it from Docker
    Hub; loopback itself (a test's registry or HTTP server) is never proxied."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    dead = "http://127.0.0.1:9"
    return env | {"HTTP_PROXY": dead, "HTTPS_PROXY": dead,
                  "NO_PROXY": "localhost,127.0.0.1,::1"}


NO_NETWORK = ("--iptables=false", "--ip6tables=false", "--bridge=none")


def _start(base: Path, driver: str, netns: str | None = None,
           network: tuple[str, ...] = NO_NETWORK) -> tuple[subprocess.Popen, Docker | None]:
    sock = base / "docker.sock"
    log = open(base / f"dockerd-{driver}.log", "wb")  # noqa: SIM115 (lives with dockerd)
    enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
    proc = subprocess.Popen(
        [*enter, DOCKERD, "--host", f"unix://{sock}", "--data-root", str(base / "data"),
         "--exec-root", str(base / "exec"), "--pidfile", str(base / "docker.pid"),
         *network, f"--storage-driver={driver}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_daemon_env())
    log.close()
    docker = Docker(str(sock), _client_env(base), docker_cli() or "docker")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if sock.exists() and docker("version", check=False, timeout=20).returncode == 0:
            return proc, docker
        time.sleep(0.3)
    return proc, None


def _stop(proc: subprocess.Popen, base: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    for mountpoint in reversed(mounts_under(base)):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)


def mounts_under(base: Path) -> list[str]:
    prefix = str(base.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


@contextlib.contextmanager
def running_dockerd(base: Path, netns: str | None = None,
                    network: tuple[str, ...] = NO_NETWORK) -> Iterator[Docker]:
    """A dockerd on overlay2 (vfs where overlay2 cannot start) for the block's
    duration; skips the calling test when none starts. Leaves no mounts behind.
    netns: a namespace of the test's own (/run/netns/NAME) to run it in, with
    network its network flags there (e.g. its own --bip and iptables on)."""
    why = why_not_docker()
    if why:
        pytest.skip(why)
    for driver in ("overlay2", "vfs"):
        proc, client = _start(base, driver, netns, network)
        if client is not None:
            break
        _stop(proc, base)
        shutil.rmtree(base / "data", ignore_errors=True)
    else:
        log = (base / "dockerd-vfs.log").read_text(errors="replace")[-2000:]
        pytest.skip(f"dockerd does not start here: {log}")
    try:
        yield client
    finally:
        _stop(proc, base)
        assert mounts_under(base) == [], "dockerd left mounts behind"
        shutil.rmtree(base, ignore_errors=True)
