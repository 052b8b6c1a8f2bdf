from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from archive_helpers import MTIME, listing, read_tar, root_only, tree

from kade.archive import apply_layer, write_changes, write_layer, write_tree
from kade.errors import InvalidArgument, NotFound


def _populate(src: Path) -> None:
    (src / "etc").mkdir()
    (src / "etc/passwd").write_text("root:x:0:0\n")
    (src / "etc/shadow").write_text("secret")
    os.chmod(src / "etc/shadow", 0o600)
    (src / "bin").mkdir()
    (src / "bin/su").write_bytes(b"\x7fELF" * 1000)
    os.chmod(src / "bin/su", 0o4755)
    os.link(src / "bin/su", src / "bin/su-hard")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    (src / "etc/link").symlink_to("passwd")
    (src / "etc/abs").symlink_to("/etc/passwd")
    (src / "dangling").symlink_to("nowhere")
    os.mkfifo(src / "fifo", 0o640)
    deep = src / ("long-" * 30) / ("name-" * 30)
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_text("deep")
    (src / "ünï").write_text("u")
    (src / "empty").write_bytes(b"")
    os.setxattr(src / "etc/passwd", "user.kade", b"value")
    for path in sorted(src.rglob("*"), reverse=True):
        os.utime(path, ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    s = tmp_path / "src"
    s.mkdir()
    _populate(s)
    return s


def _roundtrip(src: Path, dst: Path) -> bytes:
    out = io.BytesIO()
    write_tree(out, str(src))
    dst.mkdir()
    apply_layer(io.BytesIO(out.getvalue()), str(dst))
    return out.getvalue()


def test_write_tree_then_apply_gives_the_same_tree(src: Path, tmp_path: Path) -> None:
    _roundtrip(src, tmp_path / "dst")
    assert tree(str(tmp_path / "dst")) == tree(str(src))


@root_only
def test_roundtrip_keeps_owners_devices_and_capabilities(src: Path, tmp_path: Path) -> None:
    os.chown(src / "etc/shadow", 0, 42)
    os.lchown(src / "etc/link", 7, 8)
    os.chown(src / "tmp", 1000, 1000)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    cap = bytes.fromhex("0100000200040000000000000000000000000000")
    os.setxattr(src / "bin/su", "security.capability", cap)
    os.setxattr(src / "tmp", "trusted.kade", b"t")
    for p in ("null", "tmp", "etc/link", "etc/shadow", "bin/su"):
        os.utime(src / p, ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)
    _roundtrip(src, tmp_path / "dst")
    assert tree(str(tmp_path / "dst")) == tree(str(src))
    assert os.getxattr(tmp_path / "dst/bin/su", "security.capability") == cap


def test_output_format(src: Path) -> None:
    out = io.BytesIO()
    write_tree(out, str(src))
    data = out.getvalue()
    members = read_tar(data)
    names = [m.name for m in members]
    assert names[:4] == ["bin", "bin/su", "bin/su-hard", "dangling"]
    by_name = {m.name: m for m in members}
    assert by_name["bin/su-hard"].type == tarfile.LNKTYPE
    assert by_name["bin/su-hard"].linkname == "bin/su"
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert by_name["etc/passwd"].pax_headers == {"SCHILY.xattr.user.kade": "value"}
    assert by_name["tmp"].mode == 0o1777 and by_name["tmp"].isdir()
    assert by_name["etc/passwd"].mtime == MTIME
    assert any(len(n) > 100 for n in names)  # pax path records
    assert data.endswith(bytes(1024)) and len(data) % 512 == 0


def test_output_is_deterministic(src: Path) -> None:
    a, b = io.BytesIO(), io.BytesIO()
    write_tree(a, str(src))
    write_tree(b, str(src))
    assert a.getvalue() == b.getvalue()


def test_write_tree_paths_like_docker_cp(src: Path) -> None:
    (src / "var").mkdir()
    (src / "var/run").symlink_to("/etc")  # absolute: inside the container's root

    def names(paths: list[str], **kw: object) -> list[str]:
        out = io.BytesIO()
        write_tree(out, str(src), paths, **kw)  # type: ignore[arg-type]
        return [m.name for m in read_tar(out.getvalue())]

    assert names(["/etc/passwd"]) == ["passwd"]
    assert names(["/etc"])[:3] == ["etc", "etc/abs", "etc/link"]
    assert names(["/etc/."])[:2] == ["abs", "link"]
    assert names(["/var/run/passwd"]) == ["passwd"]
    assert names(["/var/run"]) == ["run"]  # the symlink itself
    assert names(["/var/run"], follow=True)[:2] == ["run", "run/abs"]
    assert names(["/var/run/"])[:2] == ["run", "run/abs"]
    assert names(["/var/run/."])[:2] == ["abs", "link"]
    assert names(["/"])[:2] == ["bin", "bin/su"]
    with pytest.raises(InvalidArgument, match="not a directory"):
        names(["/etc/passwd/"])
    assert names(["/etc/passwd"], prefix="x") == ["x/passwd"]
    assert names(["/../../etc/passwd"]) == ["passwd"]
    with pytest.raises(NotFound):
        names(["/nope"])


# write_layer: an overlay upper directory.

def test_write_layer_userxattr_opaque(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d/sub").mkdir(parents=True)
    (upper / "d/sub/f").write_text("f")
    os.setxattr(upper / "d", "user.overlay.opaque", b"y")
    os.setxattr(upper / "d", "user.overlay.origin", b"junk")
    out = io.BytesIO()
    write_layer(out, str(upper), mode="userxattr")
    members = read_tar(out.getvalue())
    assert [m.name for m in members] == ["d", "d/.wh..wh..opq", "d/sub", "d/sub/f"]
    assert members[0].pax_headers == {}  # overlay's own xattrs never leak


@root_only
def test_write_layer_overlay_whiteouts(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "d").mkdir(parents=True)
    (lower / "d").mkdir(parents=True)
    (lower / "gone").write_text("x")
    os.mknod(upper / "gone", stat.S_IFCHR, 0)
    os.mknod(upper / "never-was", stat.S_IFCHR, 0)
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    (upper / "d/new").write_text("n")
    out = io.BytesIO()
    write_layer(out, str(upper))
    assert [m.name for m in read_tar(out.getvalue())] == [
        ".wh.gone", ".wh.never-was", "d", "d/.wh..wh..opq", "d/new"]
    out = io.BytesIO()
    write_layer(out, str(upper), lowers=[str(lower)])
    assert [m.name for m in read_tar(out.getvalue())] == [
        ".wh.gone", "d", "d/.wh..wh..opq", "d/new"]


def test_write_layer_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        write_layer(io.BytesIO(), str(tmp_path), mode="aufs")


# write_changes: two full trees (the copy snapshotter).

def _change(new: Path) -> None:
    (new / "etc/passwd").write_text("root:x:0:0\nkade:x:1:1\n")  # content + mtime
    os.chmod(new / "etc/shadow", 0o640)  # metadata only
    os.unlink(new / "etc/abs")
    (new / "etc/link").unlink()
    (new / "etc/link").symlink_to("shadow")  # new target
    shutil.rmtree(new / ("long-" * 30))  # a whole directory
    (new / "tmp/added").write_text("a")
    (new / "empty").unlink()
    (new / "empty").mkdir()  # file -> dir
    (new / "empty/inside").write_text("i")


def test_write_changes_then_apply_gives_new(src: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    _copy(src, new)
    _change(new)
    out = io.BytesIO()
    write_changes(out, str(src), str(new))
    names = [m.name for m in read_tar(out.getvalue())]
    assert names == [".wh." + "long-" * 30, "empty", "empty/inside", "etc", "etc/.wh.abs",
                     "etc/link", "etc/passwd", "etc/shadow", "tmp", "tmp/added"]
    applied = tmp_path / "applied"
    _copy(src, applied)
    apply_layer(io.BytesIO(out.getvalue()), str(applied), whiteouts="delete")
    assert tree(str(applied), times=False) == tree(str(new), times=False)
    assert listing(str(applied)) == listing(str(new))


def test_write_changes_of_identical_trees_is_empty(src: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    _copy(src, new)
    out = io.BytesIO()
    write_changes(out, str(src), str(new))
    assert out.getvalue() == bytes(1024)


def _copy(src: Path, dst: Path) -> None:
    """What a copy snapshotter does: everything kept, times and links included."""
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def test_clamp_mtime_caps_every_time_at_the_epoch(tmp_path: Path) -> None:
    """A reproducible build's layer: nothing newer than SOURCE_DATE_EPOCH, older
    times kept, whiteouts included."""
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "new").write_text("n")
    (upper / "old").write_text("o")
    if os.geteuid() == 0:  # an overlayfs whiteout
        os.mknod(upper / "gone", stat.S_IFCHR | 0o600, 0)
    os.utime(upper / "new", (2_000_000_000, 2_000_000_000))
    os.utime(upper / "old", (1_000_000_000, 1_000_000_000))
    os.utime(upper, (2_000_000_000, 2_000_000_000))
    out = io.BytesIO()
    write_layer(out, str(upper), clamp_mtime=1_500_000_000)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        times = {m.name: m.mtime for m in tar}
    assert times.pop("new") == 1_500_000_000 and times.pop("old") == 1_000_000_000
    assert all(t == 1_500_000_000 for t in times.values())  # .wh.gone, as root
    plain = io.BytesIO()
    write_layer(plain, str(upper))
    with tarfile.open(fileobj=io.BytesIO(plain.getvalue())) as tar:
        assert tar.getmember("new").mtime == 2_000_000_000
