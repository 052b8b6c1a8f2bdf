"""The volumes, images and build routers under the real docker CLI and docker-py,
against `kade system service` on a private unix socket."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


@pytest.fixture(scope="module")
def service(kade, tmp_path_factory):
    sock = str(tmp_path_factory.mktemp("api") / "docker.sock")
    proc = subprocess.Popen(KADE + ["--root", kade.root, "system", "service", "--socket",
                                    sock], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    while not os.path.exists(sock):  # the listener exists before the socket file
        if proc.poll() is not None:
            pytest.fail(f"service exited: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(timeout=30)


def docker(host, *args, input=None, check=True):
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": "/nonexistent-kade-test"}
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, env=env,
                          timeout=120)
    if check and proc.returncode:
        pytest.fail(f"docker {' '.join(args)}: {proc.returncode}\n{proc.stderr.decode()}")
    return proc


def test_volume_create_ls_inspect_rm(service):
    assert docker(service, "volume", "create", "--label", "a=1", "apivol").stdout == b"apivol\n"
    ls = docker(service, "volume", "ls", "-q", "--filter", "label=a=1").stdout.split()
    assert ls == [b"apivol"]
    fmt = docker(service, "volume", "inspect", "-f", "{{.Driver}} {{.Labels.a}}", "apivol")
    assert fmt.stdout == b"local 1\n"
    assert docker(service, "volume", "rm", "apivol").stdout == b"apivol\n"
    gone = docker(service, "volume", "inspect", "apivol", check=False)
    assert gone.returncode == 1 and b"no such volume" in gone.stderr.lower()


def test_network_ls_and_inspect_of_the_builtin_networks(service):
    names = docker(service, "network", "ls", "--format", "{{.Name}}").stdout.split()
    assert b"host" in names and b"none" in names
    out = docker(service, "network", "inspect", "-f", "{{.Driver}}", "host").stdout
    assert out == b"host\n"


def test_images_tag_rmi(service):
    assert b"busybox" in docker(service, "images", "--format", "{{.Repository}}").stdout
    docker(service, "tag", "busybox", "apitag:v1")
    listed = docker(service, "images", "apitag", "--format", "{{.Repository}}:{{.Tag}}")
    assert listed.stdout == b"apitag:v1\n"
    assert docker(service, "rmi", "apitag:v1").stdout == b"Untagged: apitag:v1\n"
    missing = docker(service, "rmi", "apitag:v1", check=False)
    assert missing.returncode == 1 and b"No such image" in missing.stderr


def test_save_then_load_round_trip(service):
    docker(service, "tag", "busybox", "apisave:1")
    tar = docker(service, "save", "apisave:1").stdout
    assert tarfile.open(fileobj=io.BytesIO(tar)).getnames()
    docker(service, "rmi", "apisave:1")
    out = docker(service, "load", input=tar).stdout
    assert b"Loaded image: apisave:1" in out
    docker(service, "rmi", "apisave:1")


def test_legacy_build_of_a_small_dockerfile(service, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo built > /f\nCMD cat /f\n")
    out = docker(service, "build", "-t", "apibuilt:1", str(tmp_path)).stdout.decode()
    assert "Step 1/3 : FROM busybox" in out and "Successfully tagged apibuilt:1" in out
    ids = docker(service, "images", "-q", "apibuilt:1").stdout.split()
    assert len(ids) == 1


def test_failed_build_step_exits_with_dockers_message(service, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    proc = docker(service, "build", str(tmp_path), check=False)
    assert proc.returncode != 0
    assert b"returned a non-zero code: 3" in proc.stderr


def test_docker_py_lists_images_creates_volumes_and_builds(service):
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=service)
    try:
        assert any("busybox:latest" in i.tags for i in client.images.list())
        vol = client.volumes.create("pyvol", labels={"x": "y"})
        assert vol.attrs["Labels"] == {"x": "y"}
        vol.remove()
        df = io.BytesIO(b"FROM busybox\nLABEL made=by-py\n")
        image, logs = client.images.build(fileobj=df, tag="pybuilt:1", rm=True)
        assert image.labels["made"] == "by-py"
        assert any("Successfully built" in (m.get("stream") or "") for m in logs)
    finally:
        client.close()
