"""Reproducible builds: with SOURCE_DATE_EPOCH (or `kade build --timestamp`), the same
Dockerfile and context built on two stores give the same image, RUN layers
included; without it, created times are the build's own, as docker's are."""

import hashlib
import io
import json
import os
import shutil
import tarfile
import time

import pytest

from build_helpers import build, inspect, write_tree

EPOCH = 1700000000  # 2023-11-14T22:13:20Z
DOCKERFILE = """\
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY a.txt old.txt ./
COPY sub/ /app/sub/
RUN echo "$GREETING" > greeting && mkdir -p /var/data && rm /bin/ls && ln -s /app /link
COPY a.txt /link/through-link.txt
RUN touch -d @1000000000 /var/data/ancient
"""


@pytest.fixture(scope="module")
def other_root(kade_root):
    """A second store, made as the suite's `kade` fixture makes its own."""
    return kade_root()


def _context(path) -> str:
    ctx = write_tree(path, {"Dockerfile": DOCKERFILE, "a.txt": "a\n", "old.txt": "old\n",
                            "sub/b.bin": bytes(range(256)) * 4})
    future = time.time() + 86400 * 365  # newer than the epoch: clamped to it
    os.utime(os.path.join(ctx, "a.txt"), (future, future))
    os.utime(os.path.join(ctx, "old.txt"), (1200000000, 1200000000))  # kept
    return ctx


def _saved_layers(kade, ref: str, out: str) -> list[tuple[str, bytes]]:
    """(digest, bytes) of each layer in `kade save`'s archive (written to out)."""
    kade("save", "-o", out, ref)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        blobs = [tar.extractfile(path).read() for path in manifest[0]["Layers"]]
    return [("sha256:" + hashlib.sha256(b).hexdigest(), b) for b in blobs]


def _members(blob: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name.rstrip("/"): m for m in tar}


def test_two_stores_give_the_same_image(kade, other_root, tmp_path, monkeypatch):
    ctx1 = _context(tmp_path / "ctx1")
    ctx2 = str(tmp_path / "ctx2")
    shutil.copytree(ctx1, ctx2)  # copy2: the same mtimes
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    build(kade, ctx1, "--no-cache", "-t", "repro:1")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    build(other_root, ctx2, "--no-cache", "--timestamp", str(EPOCH), "-t", "repro:1")

    ids = [k("image", "inspect", "-f", "{{.Id}}", "repro:1").stdout.strip()
           for k in (kade, other_root)]
    assert ids[0] == ids[1]
    ours = _saved_layers(kade, "repro:1", str(tmp_path / "ours.tar"))
    theirs = _saved_layers(other_root, "repro:1", str(tmp_path / "theirs.tar"))
    assert [d for d, _ in ours] == [d for d, _ in theirs]
    # busybox, WORKDIR, two COPYs, RUN, COPY (through a symlink), RUN
    assert len(ours) == 7

    assert inspect(kade, "repro:1")["Created"] == "2023-11-14T22:13:20Z"
    rows = kade("history", "--no-trunc", "--format", "{{.CreatedAt}}", "repro:1").stdout.split()
    assert rows[:7] == ["2023-11-14T22:13:20Z"] * 7  # every step of this build


def test_layer_times_are_clamped_to_the_epoch(kade, tmp_path):
    ctx = _context(tmp_path / "ctx")
    build(kade, ctx, "--no-cache", "--timestamp", str(EPOCH), "-t", "repro:times")
    saved = _saved_layers(kade, "repro:times", str(tmp_path / "times.tar"))
    layers = [_members(b) for _, b in saved]
    copy, run, last = layers[2], layers[4], layers[6]
    assert copy["app/a.txt"].mtime == EPOCH  # a year ahead: clamped
    assert copy["app/old.txt"].mtime == 1200000000  # older: kept
    assert run["app/greeting"].mtime == EPOCH and run["bin/.wh.ls"].mtime == EPOCH
    assert run["link"].issym() and run["link"].mtime == EPOCH
    assert last["var/data/ancient"].mtime == 1000000000
    for layer in layers[1:]:
        for m in layer.values():
            assert m.mtime <= EPOCH, m.name
            assert (m.uname, m.gname) == ("", ""), m.name
            assert "atime" not in m.pax_headers and "ctime" not in m.pax_headers, m.name
        assert list(layer) == sorted(layer, key=lambda n: n.split("/")), "members not sorted"


def test_without_the_epoch_created_is_the_builds_own(kade, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    ctx = _context(tmp_path / "ctx")
    before = time.time()
    build(kade, ctx, "--no-cache", "-t", "plain:1")
    build(kade, ctx, "--no-cache", "-t", "plain:2")
    first, second = inspect(kade, "plain:1"), inspect(kade, "plain:2")
    assert first["Id"] != second["Id"]
    assert first["Created"] != second["Created"]
    from kade.util.ids import parse_rfc3339
    assert parse_rfc3339(first["Created"]) >= before - 1


@pytest.mark.parametrize("how", [["--timestamp", "soon"], ["env", "-5"]])
def test_a_bad_epoch_is_one_line_and_builds_nothing(kade, tmp_path, monkeypatch, how):
    ctx = _context(tmp_path / "ctx")
    if how[0] == "env":
        monkeypatch.setenv("SOURCE_DATE_EPOCH", how[1])
        args, name = [], "SOURCE_DATE_EPOCH"
    else:
        args, name = how, "--timestamp"
    images = kade("images", "-aq").stdout
    out = build(kade, ctx, *args, "-t", "bad:1", check=False)
    assert out.returncode == 1
    assert out.stderr == (f'invalid {name} "{how[1]}": it must be a whole number of '
                          "seconds since 1970-01-01 UTC\n")
    assert kade("images", "-aq").stdout == images
