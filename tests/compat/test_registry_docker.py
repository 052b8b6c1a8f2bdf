"""Docker's own client (Debian's dockerd 20.10) pushes to and pulls from
`kade registry serve`: chunked PATCH uploads, HEAD checks, cross-repository
mounts, manifest negotiation, and `docker login` against htpasswd.

dockerd runs with its own socket, data root and exec root in a temporary
directory, without iptables or a bridge; images come from `docker import` of a
tar made here, so nothing leaves the machine (127.0.0.0/8 registries are
insecure, i.e. plain HTTP, to docker by default)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "registry"))
from registry_helpers import Server, call, htpasswd_file  # noqa: E402

pytestmark = pytest.mark.compat
DOCKERD = "/usr/sbin/dockerd"


class Docker:
    def __init__(self, base):
        self.base = base
        self.sock = f"{base}/docker.sock"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = f"{base}/client"
        self.proc = None

    def start(self) -> bool:
        self.log = open(f"{self.base}/dockerd.log", "wb")
        self.proc = subprocess.Popen(
            [DOCKERD, "--host", f"unix://{self.sock}", "--data-root", f"{self.base}/data",
             "--exec-root", f"{self.base}/exec", "--pidfile", f"{self.base}/docker.pid",
             "--iptables=false", "--ip6tables=false", "--bridge=none",
             "--storage-driver=vfs"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(self.sock) and self("version", check=False).returncode == 0:
                return True
            time.sleep(0.3)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __call__(self, *args, check=True, input=None, timeout=120):
        proc = subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], input=input,
                              capture_output=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stdout.decode()}{proc.stderr.decode()}")
        return proc


@pytest.fixture(scope="module")
def docker():
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    if not os.path.exists(DOCKERD) or shutil.which("docker") is None:
        pytest.skip("docker.io is not installed (apt-get install docker.io)")
    import tempfile
    base = tempfile.mkdtemp(prefix="kade-dockerd-", dir="/tmp")
    d = Docker(base)
    try:
        if not d.start():
            with open(f"{base}/dockerd.log", errors="replace") as f:
                pytest.skip(f"dockerd does not start here: {f.read()[-1500:]}")
        yield d
    finally:
        d.stop()
        subprocess.run(["umount", "-R", "-l", base], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def rootfs_tar(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("hello.txt", payload), ("etc/os-release", b"ID=kade-test\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_push_pull_and_mount(docker, tmp_path):
    with Server(str(tmp_path / "root")) as s:
        ref = f"{s.addr}/docker/app:v1"
        docker("import", "-", ref, input=rootfs_tar(os.urandom(200_000)))
        out = docker("push", ref).stdout.decode()
        assert "v1: digest: sha256:" in out
        digest = out.split("digest: ")[1].split()[0]
        r = call(s.url, "GET", "/v2/docker/app/manifests/v1",
                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        assert r.status == 200 and r.header("Docker-Content-Digest") == digest
        # a second repository: docker mounts the layer instead of uploading it again
        docker("tag", ref, f"{s.addr}/docker/copy:v1")
        out = docker("push", f"{s.addr}/docker/copy:v1").stdout.decode()
        assert "Mounted from docker/app" in out
        docker("rmi", ref, f"{s.addr}/docker/copy:v1")
        out = docker("pull", ref).stdout.decode()
        assert f"Digest: {digest}" in out and "Downloaded newer image" in out


def test_login_push_pull_with_htpasswd(docker, tmp_path):
    ht = htpasswd_file(str(tmp_path / "htpasswd"), "alice", "wonderland")
    with Server(str(tmp_path / "root"), "--htpasswd", ht) as s:
        ref = f"{s.addr}/private/app:v1"
        docker("import", "-", ref, input=rootfs_tar(b"private"))
        denied = docker("push", ref, check=False)
        assert denied.returncode != 0 and b"no basic auth credentials" in denied.stderr
        bad = docker("login", "-u", "alice", "--password-stdin", s.addr, input=b"nope\n",
                     check=False)
        assert bad.returncode != 0
        docker("login", "-u", "alice", "--password-stdin", s.addr, input=b"wonderland\n")
        docker("push", ref)
        docker("rmi", ref)
        docker("pull", ref)
        docker("logout", s.addr)
