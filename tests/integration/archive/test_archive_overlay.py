"""Layers applied with overlay whiteouts really hide lower files under a real
overlayfs mount, and write_layer turns the upper directory back into OCI
whiteouts. Needs root."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kade.archive import apply_layer, write_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount overlayfs")


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    d = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for p in d.values():
        p.mkdir()
    (d["lower"] / "hidden").write_text("lower")
    (d["lower"] / "kept").write_text("lower")
    (d["lower"] / "opq").mkdir()
    (d["lower"] / "opq/old").write_text("lower")
    (d["lower"] / "opq/sub").mkdir()
    (d["lower"] / "opq/sub/older").write_text("lower")
    return d


@pytest.fixture
def merged(dirs: dict[str, Path]) -> Iterator[Path]:
    layer = _tar([(".wh.hidden", b""), ("opq", None), ("opq/.wh..wh..opq", b""),
                  ("opq/new", b"upper")])
    apply_layer(io.BytesIO(layer), str(dirs["upper"]), whiteouts="overlay")
    opts = (f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']},"
            "redirect_dir=off,metacopy=off")
    mount = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts,
                            str(dirs["merged"])], check=False, capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount overlayfs here: {mount.stderr.strip()}")
    try:
        yield dirs["merged"]
    finally:
        subprocess.run(["umount", str(dirs["merged"])], check=True)


def test_overlay_whiteouts_hide_lower_files(merged: Path) -> None:
    assert sorted(os.listdir(merged)) == ["kept", "opq"]
    assert sorted(os.listdir(merged / "opq")) == ["new"]
    assert (merged / "opq/new").read_text() == "upper"


def test_write_layer_of_the_upper_gives_the_whiteouts_back(merged: Path,
                                                           dirs: dict[str, Path]) -> None:
    out = io.BytesIO()
    write_layer(out, str(dirs["upper"]), lowers=[str(dirs["lower"])])
    assert _names(out.getvalue()) == [".wh.hidden", "opq", "opq/.wh..wh..opq", "opq/new"]


def test_changes_made_through_the_mount_become_a_layer(merged: Path,
                                                       dirs: dict[str, Path]) -> None:
    (merged / "kept").unlink()  # overlayfs makes the whiteout itself
    (merged / "added").write_text("new")
    (merged / "opq/new").write_text("changed")
    subprocess.run(["sync"], check=True)
    out = io.BytesIO()
    write_layer(out, str(dirs["upper"]), lowers=[str(dirs["lower"])])
    data = out.getvalue()
    assert _names(data) == [".wh.hidden", ".wh.kept", "added", "opq", "opq/.wh..wh..opq",
                            "opq/new"]
    # Applying that layer with "delete" onto a copy of the lower gives the merged view.
    copy = dirs["lower"].parent / "copy"
    subprocess.run(["cp", "-a", str(dirs["lower"]), str(copy)], check=True)
    apply_layer(io.BytesIO(data), str(copy), whiteouts="delete")
    assert _listing(copy) == _listing(merged)


def _listing(root: Path) -> list[tuple[str, str | None]]:
    out = []
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = Path(dirpath, name)
            out.append((str(path.relative_to(root)), path.read_text()))
    return out
