"""Debian's skopeo (containers/image) against `kade registry serve`: copies into and
out of it, with and without auth, single images, multi-arch indexes and a
docker-archive made by `kade save`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration", "registry"))
from registry_helpers import (KADE, Server, call, htpasswd_file, make_image,  # noqa: E402
                              tool, write_oci_index_layout, write_oci_layout)

pytestmark = pytest.mark.compat

if shutil.which("skopeo") is None:
    pytest.skip("skopeo is not installed (apt-get install skopeo)", allow_module_level=True)


def read_layout(directory: str) -> tuple[dict, dict]:
    """(top index.json, the manifest it names) of an OCI layout skopeo wrote."""
    with open(os.path.join(directory, "index.json")) as f:
        top = json.load(f)
    digest = top["manifests"][0]["digest"].split(":")[1]
    with open(os.path.join(directory, "blobs", "sha256", digest), "rb") as f:
        return top, json.loads(f.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(str(tmp_path_factory.mktemp("skopeo-registry"))) as s:
        yield s


def test_copy_in_and_out_keeps_every_byte(server, tmp_path):
    image = make_image([{"a.txt": b"a" * 5000}, {"b/c.txt": os.urandom(20000)}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:latest",
         f"docker://{server.addr}/skopeo/app:v1")
    r = call(server.url, "GET", "/v2/skopeo/app/manifests/v1",
             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status == 200 and r.body == image.manifest
    out = str(tmp_path / "out")
    tool("skopeo", "copy", "--src-tls-verify=false", f"docker://{server.addr}/skopeo/app:v1",
         f"oci:{out}:v1")
    _, manifest = read_layout(out)
    assert manifest == json.loads(image.manifest)
    for digest, data in image.blobs.items():
        with open(os.path.join(out, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
            assert f.read() == data


def test_inspect_and_list_tags(server, tmp_path):
    image = make_image([{"i": b"inspect"}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    for tag in ("one", "two"):
        tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:latest",
             f"docker://{server.addr}/skopeo/tags:{tag}")
    info = json.loads(tool("skopeo", "inspect", "--tls-verify=false",
                           f"docker://{server.addr}/skopeo/tags:one").stdout)
    assert info["Digest"] == image.digest and info["Architecture"] == "amd64"
    tags = json.loads(tool("skopeo", "list-tags", "--tls-verify=false",
                           f"docker://{server.addr}/skopeo/tags").stdout)
    assert tags["Tags"] == ["one", "two"]
    tool("skopeo", "delete", "--tls-verify=false", f"docker://{server.addr}/skopeo/tags:two")
    assert call(server.url, "GET", "/v2/skopeo/tags/manifests/one").status == 404


def test_copy_between_repositories_mounts_blobs(server, tmp_path):
    image = make_image([{"m": os.urandom(50000)}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:latest",
         f"docker://{server.addr}/skopeo/from:v1")
    tool("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{server.addr}/skopeo/from:v1", f"docker://{server.addr}/skopeo/to:v1")
    r = call(server.url, "GET", "/v2/skopeo/to/manifests/v1")
    assert r.status == 200 and r.header("Docker-Content-Digest") == image.digest


def test_multi_arch_index(server, tmp_path):
    amd = make_image([{"arch": b"amd64"}])
    arm = make_image([{"arch": b"arm64"}], arch="arm64")
    src, index = write_oci_index_layout(str(tmp_path / "src"), [(amd, "amd64"), (arm, "arm64")])
    tool("skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{src}:latest",
         f"docker://{server.addr}/skopeo/multi:latest")
    r = call(server.url, "GET", "/v2/skopeo/multi/manifests/latest",
             headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    assert r.body == index
    out = str(tmp_path / "arm")
    tool("skopeo", "--override-arch", "arm64", "copy", "--src-tls-verify=false",
         f"docker://{server.addr}/skopeo/multi:latest", f"oci:{out}:x")
    assert read_layout(out)[1] == json.loads(arm.manifest)


def test_kade_save_archive(server, tmp_path):
    """A docker-archive from `kade save` of the bootstrapped busybox (needs root)."""
    if os.geteuid() != 0 or not os.path.exists("/bin/busybox"):
        pytest.skip("bootstrapping busybox needs root and busybox-static")
    root, archive = str(tmp_path / "kade"), str(tmp_path / "busybox.tar")
    tool(*KADE, "--root", root, "image", "bootstrap", "busybox")
    tool(*KADE, "--root", root, "save", "-o", archive, "busybox")
    tool("skopeo", "copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
         f"docker://{server.addr}/library/busybox:latest")
    info = json.loads(tool("skopeo", "inspect", "--tls-verify=false",
                           f"docker://{server.addr}/library/busybox:latest").stdout)
    assert info["Os"] == "linux" and len(info["Layers"]) >= 1
    out = str(tmp_path / "back.tar")
    tool("skopeo", "copy", "--src-tls-verify=false",
         f"docker://{server.addr}/library/busybox:latest", f"docker-archive:{out}:busybox:x")
    assert os.path.getsize(out) > 100_000


def test_with_htpasswd(tmp_path):
    ht = htpasswd_file(str(tmp_path / "htpasswd"), "alice", "wonderland")
    image = make_image([{"secret": b"auth"}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    with Server(str(tmp_path / "root"), "--htpasswd", ht) as s:
        bad = tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:latest",
                   f"docker://{s.addr}/auth/app:v1", check=False)
        assert bad.returncode != 0 and "authentication required" in bad.stderr.lower()
        bad = tool("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:nope",
                   f"oci:{src}:latest", f"docker://{s.addr}/auth/app:v1", check=False)
        assert bad.returncode != 0
        tool("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
             f"oci:{src}:latest", f"docker://{s.addr}/auth/app:v1")
        out = str(tmp_path / "out")
        tool("skopeo", "copy", "--src-tls-verify=false", "--src-creds", "alice:wonderland",
             f"docker://{s.addr}/auth/app:v1", f"oci:{out}:v1")
        assert read_layout(out)[1] == json.loads(image.manifest)


def test_with_token_auth(tmp_path):
    ht = htpasswd_file(str(tmp_path / "htpasswd"), "bob", "builder")
    key = tmp_path / "token.key"
    key.write_bytes(base64.b64encode(os.urandom(32)))
    image = make_image([{"token": b"bearer"}])
    src = write_oci_layout(str(tmp_path / "src"), image)
    with Server(str(tmp_path / "root"), "--htpasswd", ht, "--token-realm", "/token",
                "--token-key", str(key)) as s:
        bad = tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:latest",
                   f"docker://{s.addr}/tok/app:v1", check=False)
        assert bad.returncode != 0
        tool("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "bob:builder",
             f"oci:{src}:latest", f"docker://{s.addr}/tok/app:v1")
        info = json.loads(tool("skopeo", "inspect", "--tls-verify=false", "--creds",
                               "bob:builder", f"docker://{s.addr}/tok/app:v1").stdout)
        assert info["Digest"] == image.digest
