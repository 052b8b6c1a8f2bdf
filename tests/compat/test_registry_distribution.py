"""Kade's registry keeps distribution's on-disk layout: Debian's docker-registry
serves what Kade stored, and Kade serves what docker-registry stored (skopeo
copies in through one and out through the other)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "registry"))
from registry_helpers import (Server, call, make_image, tool,  # noqa: E402
                              write_oci_index_layout, write_oci_layout)

pytestmark = pytest.mark.compat
REGISTRY = "/usr/bin/docker-registry"

if not os.path.exists(REGISTRY) or shutil.which("skopeo") is None:
    pytest.skip("docker-registry and skopeo are needed (apt-get install docker-registry skopeo)",
                allow_module_level=True)


class Distribution:
    """Debian's docker-registry on 127.0.0.1 with `root` as its rootdirectory."""

    def __init__(self, root: str, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = workdir / "registry.yml"
        config.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
""")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addr = f"127.0.0.1:{self.port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise AssertionError("docker-registry did not start")

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def copy(src: str, dst: str) -> None:
    tool("skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
         src, dst)


def manifest_of(layout: str) -> dict:
    with open(os.path.join(layout, "index.json")) as f:
        digest = json.load(f)["manifests"][0]["digest"].split(":")[1]
    with open(os.path.join(layout, "blobs", "sha256", digest)) as f:
        return json.load(f)


def test_docker_registry_serves_what_kade_stored(tmp_path):
    root = str(tmp_path / "root")
    image = make_image([{"x": os.urandom(10000)}, {"y": b"second layer"}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    amd, arm = make_image([{"a": b"amd"}]), make_image([{"a": b"arm"}], arch="arm64")
    multi, _ = write_oci_index_layout(str(tmp_path / "multi"), [(amd, "amd64"), (arm, "arm64")])
    with Server(root) as s:
        copy(f"oci:{src}:latest", f"docker://{s.addr}/compat/app:v1")
        copy(f"oci:{multi}:latest", f"docker://{s.addr}/compat/multi:latest")
    with Distribution(root, tmp_path) as d:
        out = str(tmp_path / "out")
        copy(f"docker://{d.addr}/compat/app:v1", f"oci:{out}:v1")
        assert manifest_of(out) == json.loads(image.manifest)
        tags = json.loads(tool("skopeo", "list-tags", "--tls-verify=false",
                               f"docker://{d.addr}/compat/app").stdout)
        assert tags["Tags"] == ["v1"]
        copy(f"docker://{d.addr}/compat/multi:latest", f"oci:{tmp_path / 'multi-out'}:x")


def test_kade_serves_what_docker_registry_stored(tmp_path):
    root = str(tmp_path / "root")
    image = make_image([{"z": os.urandom(10000)}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    with Distribution(root, tmp_path) as d:
        copy(f"oci:{src}:latest", f"docker://{d.addr}/compat/theirs:v1")
    with Server(root) as s:
        out = str(tmp_path / "out")
        copy(f"docker://{s.addr}/compat/theirs:v1", f"oci:{out}:v1")
        assert manifest_of(out) == json.loads(image.manifest)
        assert "compat/theirs" in call(s.url, "GET", "/v2/_catalog").json()["repositories"]
