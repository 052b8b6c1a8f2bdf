"""Docker's own daemon against Kade's archives: `kade save` -> `docker load`, and
`docker save` -> `kade load`.

Debian's dockerd (docker.io, 20.10) runs with its own socket, data root and
exec root in a temporary directory, without iptables or a bridge, and never
touches the network: images come from Kade's offline busybox or `docker import`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import kade.content
import kade.metadata
import kade.snapshots
from kade.errors import FailedPrecondition
from kade.images import ImageService, saveload
from kade.oci import digest as dg

pytestmark = pytest.mark.compat

DOCKERD = "/usr/sbin/dockerd"


def _why_not() -> str | None:
    import kade.archive
    if os.geteuid() != 0:
        return "dockerd and unpacking layers need root"
    if not os.path.exists(DOCKERD):
        return f"{DOCKERD} is missing: apt-get install docker.io"
    if shutil.which("docker") is None:
        return "the docker CLI is missing: apt-get install docker.io"
    if not hasattr(kade.archive, "apply_layer"):
        return "kade.archive.apply_layer is not there yet"
    return None


@dataclass
class Docker:
    sock: str
    env: dict

    def __call__(self, *args: str, stdin: bytes | None = None, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], input=stdin,
                              check=False,
                              capture_output=True, env=self.env, timeout=timeout)
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


def _start(base: Path, driver: str) -> tuple[subprocess.Popen, Docker | None]:
    sock = base / "docker.sock"
    log = open(base / f"dockerd-{driver}.log", "wb")  # noqa: SIM115 (lives with dockerd)
    proc = subprocess.Popen(
        [DOCKERD, "--host", f"unix://{sock}", "--data-root", str(base / "data"),
         "--exec-root", str(base / "exec"), "--pidfile", str(base / "docker.pid"),
         "--iptables=false", "--ip6tables=false", "--bridge=none",
         f"--storage-driver={driver}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    docker = Docker(str(sock), _client_env(base))
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
    for mountpoint in reversed(_mounts_under(base)):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


@pytest.fixture(scope="module")
def docker(tmp_path_factory) -> Iterator[Docker]:
    why = _why_not()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.mktemp("dockerd")
    for driver in ("overlay2", "vfs"):
        proc, client = _start(base, driver)
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
        assert _mounts_under(base) == [], "dockerd left mounts behind"
        shutil.rmtree(base, ignore_errors=True)


def make_service(root: Path) -> ImageService:
    db = kade.metadata.open_db(str(root))
    content = kade.content.ContentStore(str(root / "content"))
    snaps = kade.snapshots.open_snapshotter(str(root), "overlay", db)
    return ImageService(content, db, snaps)


def files_of(images: ImageService, image_id: str) -> dict[str, bytes | str | None]:
    """path -> body (files), "-> target" (symlinks), None (dirs), over all layers."""
    out: dict[str, bytes | str | None] = {}
    diff_ids = [lay["diff_id"] for lay in images.record(image_id)["layers"]]
    for chain_id in dg.chain_ids(diff_ids):
        top = images.snapshots.upper_dir(chain_id)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, top)
                if os.path.islink(full):
                    out[rel] = "-> " + os.readlink(full)
                elif os.path.isdir(full):
                    out[rel] = None
                else:
                    with open(full, "rb") as f:
                        out[rel] = f.read()
    return out


def member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_kade_save_docker_load_and_run(docker, tmp_path):
    from kade.images.bootstrap import bootstrap_busybox
    images = make_service(tmp_path / "kade")
    try:
        image_id = bootstrap_busybox(images)
    except FailedPrecondition as e:
        pytest.skip(str(e))
    archive = tmp_path / "busybox.tar"
    with open(archive, "wb") as f:
        saveload.save(images, ["busybox:latest"], f)

    assert "Loaded image: busybox:latest" in docker.out("load", "-i", str(archive))
    inspect = json.loads(docker.out("image", "inspect", "busybox:latest"))[0]
    assert inspect["Id"] == image_id
    assert inspect["RootFS"]["Layers"] == [lay["diff_id"] for lay in
                                           images.record(image_id)["layers"]]
    assert inspect["Config"]["Cmd"] == ["sh"]

    # and back: docker's own save of it loads into a fresh Kade with the same id
    again = make_service(tmp_path / "again")
    saved = docker("save", "busybox:latest").stdout
    assert saveload.load(again, io.BytesIO(saved)) == ["Loaded image: busybox:latest"]
    assert again.resolve("busybox") == image_id
    assert files_of(again, image_id) == files_of(images, image_id)

    run = docker("run", "--rm", "--network", "none", "busybox:latest", "echo", "hi",
                 check=False)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert run.stdout == b"hi\n"


ROOTFS = {"hello": b"hello from docker import\n", "etc/": None, "etc/motd": b"motd\n",
          "link": "-> etc/motd"}


def rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in ROOTFS.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.mode = 1_700_000_000, 0o755 if body is None else 0o644
            if body is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(body, str):
                info.type, info.linkname = tarfile.SYMTYPE, body[3:]
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_docker_save_kade_load(docker, tmp_path):
    docker("import", "--change", 'CMD ["/hello"]', "--change", "ENV KADE=compat", "-",
           "imported:1", stdin=rootfs_tar())
    docker("tag", "imported:1", "example.com/kade/imported:2")
    image_id = docker.out("image", "inspect", "--format", "{{.Id}}", "imported:1")
    saved = docker("save", "imported:1", "example.com/kade/imported:2").stdout

    images = make_service(tmp_path / "kade")
    lines = saveload.load(images, io.BytesIO(saved))
    assert sorted(lines) == ["Loaded image: example.com/kade/imported:2",
                             "Loaded image: imported:1"]
    assert images.resolve("imported:1") == image_id
    assert images.resolve("example.com/kade/imported:2") == image_id
    config_name = json.loads(member(saved, "manifest.json"))[0]["Config"]
    assert images.content.read(image_id) == member(saved, config_name)
    assert images.config(image_id)["config"]["Cmd"] == ["/hello"]
    assert "KADE=compat" in images.config(image_id)["config"]["Env"]
    files = files_of(images, image_id)
    assert {k.rstrip("/"): v for k, v in ROOTFS.items()}.items() <= files.items()


def test_docker_save_by_id_loads_untagged(docker, tmp_path):
    docker("import", "-", "byid:1", stdin=rootfs_tar())
    image_id = docker.out("image", "inspect", "--format", "{{.Id}}", "byid:1")
    saved = docker("save", image_id).stdout
    images = make_service(tmp_path / "kade")
    assert saveload.load(images, io.BytesIO(saved)) == [f"Loaded image ID: {image_id}"]
    assert images.tags_of(image_id) == []
