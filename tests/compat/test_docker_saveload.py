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
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerd import Docker, running_dockerd, why_not_docker  # tests/compat, on sys.path

import kade.content
import kade.metadata
import kade.snapshots
from kade.errors import FailedPrecondition
from kade.images import ImageService, saveload
from kade.oci import digest as dg

pytestmark = pytest.mark.compat


def _why_not() -> str | None:
    import kade.archive
    if not hasattr(kade.archive, "apply_layer"):
        return "kade.archive.apply_layer is not there yet"
    return why_not_docker()


@pytest.fixture(scope="module")
def docker(tmp_path_factory) -> Iterator[Docker]:
    why = _why_not()
    if why:
        pytest.skip(why)
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as client:
        yield client


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
