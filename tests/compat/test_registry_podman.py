"""Debian's podman pushes to and pulls from `kade registry serve`, with and without
htpasswd auth. Podman keeps its store in a temporary directory (vfs driver,
cgroupfs, file events), so it never touches the machine's own."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "registry"))
from registry_helpers import (Server, call, htpasswd_file, make_image, tool,  # noqa: E402
                              write_oci_layout)

pytestmark = pytest.mark.compat

if shutil.which("podman") is None or shutil.which("skopeo") is None:
    pytest.skip("podman and skopeo are not installed (apt-get install podman skopeo)",
                allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("podman with a private store runs as root here", allow_module_level=True)


class Podman:
    def __init__(self, base):
        self.base = str(base)
        self.cmd = ["podman", "--root", f"{base}/podman", "--runroot", f"{base}/podrun",
                    "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                    "--events-backend", "file", "--runtime", "runc"]
        self.env_auth = os.path.join(self.base, "auth.json")
        with open(self.env_auth, "w") as f:
            f.write('{"auths": {}}')

    def __call__(self, *args, check=True, input=None):
        return tool(*self.cmd, *args, check=check, input=input)

    def registry_args(self):
        return ["--tls-verify=false", "--authfile", self.env_auth]


@pytest.fixture
def podman():
    # podman refuses a runroot longer than 50 characters: pytest's tmp_path can be longer
    base = tempfile.mkdtemp(prefix="kade-podman-", dir="/tmp")
    p = Podman(base)
    yield p
    p("rmi", "-a", "-f", check=False)
    shutil.rmtree(base, ignore_errors=True)


def seed(server: Server, tmp_path, name: str, creds: str | None = None):
    image = make_image([{"hello.txt": b"hello from a podman test\n"}])
    src = write_oci_layout(str(tmp_path / "seed"), image)
    extra = ["--dest-creds", creds] if creds else []
    tool("skopeo", "copy", "--dest-tls-verify=false", *extra, f"oci:{src}:latest",
         f"docker://{server.addr}/{name}")
    return image


def test_pull_tag_push_pull(podman, tmp_path):
    with Server(str(tmp_path / "root")) as s:
        image = seed(s, tmp_path, "podman/src:v1")
        podman("pull", *podman.registry_args(), f"{s.addr}/podman/src:v1")
        podman("tag", f"{s.addr}/podman/src:v1", f"{s.addr}/podman/dst:v2")
        podman("push", *podman.registry_args(), f"{s.addr}/podman/dst:v2")
        r = call(s.url, "GET", "/v2/podman/dst/tags/list")
        assert r.json()["tags"] == ["v2"]
        podman("rmi", "-a", "-f")
        podman("pull", *podman.registry_args(), f"{s.addr}/podman/dst:v2")
        inspect = json.loads(podman("image", "inspect", f"{s.addr}/podman/dst:v2").stdout)
        config = json.loads(image.config)
        assert inspect[0]["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]


def test_with_htpasswd_login(podman, tmp_path):
    ht = htpasswd_file(str(tmp_path / "htpasswd"), "alice", "wonderland")
    with Server(str(tmp_path / "root"), "--htpasswd", ht) as s:
        seed(s, tmp_path, "private/src:v1", "alice:wonderland")
        denied = podman("pull", *podman.registry_args(), f"{s.addr}/private/src:v1",
                        check=False)
        assert denied.returncode != 0
        bad = podman("login", *podman.registry_args(), "-u", "alice", "--password-stdin",
                     s.addr, input="wrong\n", check=False)
        assert bad.returncode != 0
        podman("login", *podman.registry_args(), "-u", "alice", "--password-stdin", s.addr,
               input="wonderland\n")
        podman("pull", *podman.registry_args(), f"{s.addr}/private/src:v1")
        podman("tag", f"{s.addr}/private/src:v1", f"{s.addr}/private/dst:v1")
        podman("push", *podman.registry_args(), f"{s.addr}/private/dst:v1")
        podman("logout", "--authfile", podman.env_auth, s.addr)
        denied = podman("push", *podman.registry_args(), f"{s.addr}/private/dst:v2",
                        check=False)
        assert denied.returncode != 0
