"""Kade's registry client and other people's clients, through Debian's docker-registry.

What one pushes, the other pulls and runs: docker (a private dockerd, 20.10),
podman and skopeo against Kade, and logins shared through docker's config.json.
Every test has its own registry on 127.0.0.1 and its own DOCKER_CONFIG; nothing
leaves loopback. Images come from Kade's offline busybox.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_pull_push import DockerRegistry, registry_missing  # noqa: E402

pytestmark = pytest.mark.compat

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
DOCKERD = "/usr/sbin/dockerd"


def run(argv: list[str], env: dict, input: str | None = None, check: bool = True,
        timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, input=input, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:6])} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


class Env:
    """Private state for every client: a Kade root, DOCKER_CONFIG, podman's storage."""

    def __init__(self, base: Path):
        self.base = base
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = str(base / "docker-config")
        (base / "docker-config").mkdir()
        (base / "docker-config" / "config.json").write_text("{}")  # podman wants one
        (base / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.env["CONTAINERS_REGISTRIES_CONF"] = str(base / "registries.conf")
        self.roots: list[str] = []
        self.short: Path | None = None

    def kade(self, *args: str, root: str = "kade", **kw) -> subprocess.CompletedProcess:
        path = str(self.base / root)
        if path not in self.roots:
            self.roots.append(path)
        return run([*KADE, "--root", path, *args], self.env, **kw)

    def podman(self, *args: str, **kw) -> subprocess.CompletedProcess:
        if self.short is None:  # podman wants a runroot under 50 characters
            self.short = Path(tempfile.mkdtemp(prefix="kcp-", dir="/tmp"))
        b = self.short
        return run(["podman", "--root", str(b / "root"), "--runroot", str(b / "run"),
                    "--tmpdir", str(b / "tmp"), "--cgroup-manager", "cgroupfs",
                    "--events-backend", "file", "--runtime", "runc", *args], self.env, **kw)

    def cleanup(self) -> None:
        for root in self.roots:
            ids = run([*KADE, "--root", root, "ps", "-aq"], self.env, check=False).stdout.split()
            if ids:
                run([*KADE, "--root", root, "rm", "-f", *ids], self.env, check=False)
        if self.short is not None:
            self.podman("rm", "-a", "-f", check=False)
            self.podman("rmi", "-a", "-f", check=False)
            _unmount_under(self.short)
            shutil.rmtree(self.short, ignore_errors=True)


def _needs(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("pulling and running images needs root")
    why = registry_missing()
    if why:
        pytest.skip(why)
    if not os.path.exists("/bin/busybox"):
        pytest.skip("Debian's busybox-static is not installed")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


@pytest.fixture
def registry(tmp_path):
    reg = DockerRegistry(tmp_path / "registry").start()
    yield reg
    reg.stop()


def kade_image(env: Env, ref: str) -> None:
    """busybox plus a layer from `kade commit`, under ref."""
    env.kade("image", "bootstrap", "busybox")
    env.kade("run", "--name", "mk", "busybox", "sh", "-c", "echo from-kade > /origin")
    env.kade("commit", "-c", 'CMD ["cat", "/origin"]', "mk", ref)
    env.kade("rm", "mk")


# --- docker ------------------------------------------------------------------------------


class Dockerd:
    def __init__(self, base: Path, env: dict):
        base.mkdir()
        self.top = base.parent
        self.sock = base / "docker.sock"
        self.env = env
        self.base = base
        log = open(base / "dockerd.log", "wb")  # noqa: SIM115 (lives with dockerd)
        self.proc = subprocess.Popen(
            [DOCKERD, "--host", f"unix://{self.sock}", "--data-root", str(base / "data"),
             "--exec-root", str(base / "exec"), "--pidfile", str(base / "docker.pid"),
             "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--insecure-registry", "127.0.0.0/8"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def __call__(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return run(["docker", "-H", f"unix://{self.sock}", *args], self.env, **kw)

    def wait(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.sock.exists() and self("version", check=False, timeout=20).returncode == 0:
                return True
            time.sleep(0.3)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _unmount_under(self.top)
        shutil.rmtree(self.top, ignore_errors=True)


def _unmount_under(base: Path) -> None:
    prefix = str(base.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for point in reversed(points):
        subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture
def docker(env):
    _needs("docker")
    if not os.path.exists(DOCKERD):
        pytest.skip(f"{DOCKERD} is missing: apt-get install docker.io")
    # containerd's socket path must fit in sun_path: a short directory of our own
    d = Dockerd(Path(tempfile.mkdtemp(prefix="kcd-", dir="/tmp")) / "d", env.env)
    if not d.wait():
        log = (d.base / "dockerd.log").read_text(errors="replace")[-300:]
        d.stop()
        pytest.skip(f"dockerd does not start here: {log}")
    yield d
    d.stop()


def test_kade_pushes_docker_pulls_and_runs(env, registry, docker):
    ref = f"{registry.host}/kade-made:1"
    kade_image(env, ref)
    env.kade("push", ref)
    pulled = docker("pull", ref).stdout
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert docker("run", "--rm", "--network", "none", ref).stdout == "from-kade\n"
    # the same image, the same id on both sides
    assert docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == \
        env.kade("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()


def test_docker_pushes_kade_pulls_and_runs(env, registry, docker):
    env.kade("image", "bootstrap", "busybox")
    archive = env.base / "busybox.tar"
    env.kade("save", "-o", str(archive), "busybox")
    docker("load", "-i", str(archive))
    docker("run", "--name", "dmk", "--network", "none", "busybox", "sh", "-c",
           "echo from-docker > /origin")
    ref = f"{registry.host}/docker-made:1"
    docker("commit", "--change", 'CMD ["cat", "/origin"]', "dmk", ref)
    docker("rm", "dmk")
    pushed = docker("push", ref).stdout
    digest = pushed.strip().splitlines()[-1].split()[2]
    out = env.kade("pull", ref, root="fresh").stdout.splitlines()
    assert out[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {ref}", ref]
    assert env.kade("run", "--rm", ref, root="fresh").stdout == "from-docker\n"
    assert env.kade("image", "inspect", "-f", "{{.Id}}", ref, root="fresh").stdout == \
        docker("image", "inspect", "-f", "{{.Id}}", ref).stdout


def test_kade_and_docker_share_logins(env, tmp_path, docker):
    reg = DockerRegistry(tmp_path / "auth-registry", {"shared": "pw-123"}).start()
    try:
        ref = f"{reg.host}/private:1"
        kade_image(env, ref)
        env.kade("login", "-u", "shared", "--password-stdin", reg.host, input="pw-123\n")
        env.kade("push", ref)
        docker("pull", ref)  # docker reads the login kade wrote
        env.kade("logout", reg.host)
        assert docker("pull", ref, check=False).returncode != 0
        docker("login", "-u", "shared", "--password-stdin", reg.host, input="pw-123\n")
        cfg = json.loads((tmp_path / "docker-config" / "config.json").read_text())
        assert base64.b64decode(cfg["auths"][reg.host]["auth"]) == b"shared:pw-123"
        env.kade("pull", ref, root="fresh")  # kade reads the login docker wrote
    finally:
        reg.stop()


# --- podman and skopeo -------------------------------------------------------------------


def test_kade_and_podman_through_the_registry(env, registry):
    _needs("podman")
    ref = f"{registry.host}/kade-for-podman:1"
    kade_image(env, ref)
    env.kade("push", ref)
    env.podman("pull", "--tls-verify=false", ref)
    # hosts that cap nofile and nproc below podman's defaults need explicit limits
    assert env.podman("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                      "--ulimit", "nproc=1024:1024", ref).stdout == "from-kade\n"
    back = f"{registry.host}/podman-made:1"
    env.podman("tag", ref, back)
    env.podman("push", "--tls-verify=false", back)
    assert env.kade("run", "--rm", back, root="fresh").stdout == "from-kade\n"


def test_skopeo_reads_what_kade_pushed_and_kade_pulls_skopeos_oci_zstd_copy(env, registry):
    _needs("skopeo")
    ref = f"{registry.host}/for-skopeo:1"
    kade_image(env, ref)
    env.kade("push", ref)
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                          env.env).stdout)
    assert len(info["Layers"]) == 2
    copy = f"{registry.host}/skopeo-copy:zstd"
    run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
         "--format", "oci", "--dest-compress-format", "zstd",
         f"docker://{ref}", f"docker://{copy}"], env.env)
    raw = json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{copy}"], env.env).stdout)
    assert {lay["mediaType"] for lay in raw["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert env.kade("run", "--rm", copy, root="fresh").stdout == "from-kade\n"
