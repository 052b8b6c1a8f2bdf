"""docker cp's rules, tar rewriting, and the helpers that read and write a container's
root, run against a plain directory as the root (no mounts, no root needed)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from kade.engine.files import (
    ContainerRoot,
    CopyPlan,
    archive_in_root,
    base_name,
    export_root,
    extract_in_root,
    plan_copy,
    rebased,
    rewrite_tar,
    stat_in_root,
)
from kade.errors import InvalidArgument, NotFound


# --- docker's rules ---------------------------------------------------------------
@pytest.mark.parametrize("path, name", [
    ("/etc/passwd", "passwd"), ("/etc/", "etc"), ("/etc/.", "."), ("/etc/./", "."),
    ("/", "."), (".", "."), ("dir", "dir"), ("a/b/", "b"),
])
def test_base_name(path, name):
    assert base_name(path) == name


@pytest.mark.parametrize("src, src_dir, dst, exists, dst_dir, plan", [
    # into an existing directory, under the source's own name (or its contents)
    ("/etc", True, "/tmp", True, True, CopyPlan("/etc", "/tmp", None)),
    ("/etc/.", True, "/tmp", True, True, CopyPlan("/etc/.", "/tmp", None)),
    ("/f", False, "/tmp/", True, True, CopyPlan("/f", "/tmp/", None)),
    # a new name: the parent gets it under that name
    ("/etc", True, "/tmp/new", False, False, CopyPlan("/etc", "/tmp", ("etc", "new"))),
    ("/etc/.", True, "/tmp/new", False, False, CopyPlan("/etc", "/tmp", ("etc", "new"))),
    ("/", True, "/tmp/new", False, False, CopyPlan("/", "/tmp", (".", "new"))),
    ("/f", False, "/tmp/g", False, False, CopyPlan("/f", "/tmp", ("f", "g"))),
    ("/f", False, "g", False, False, CopyPlan("/f", ".", ("f", "g"))),
    # a file over a file
    ("/f", False, "/tmp/g", True, False, CopyPlan("/f", "/tmp", ("f", "g"))),
    ("/f", False, "/tmp/f", True, False, CopyPlan("/f", "/tmp", None)),
])
def test_plan_copy(src, src_dir, dst, exists, dst_dir, plan):
    assert plan_copy(src, src_dir, dst, exists, dst_dir) == plan


def test_plan_copy_errors_are_dockers():
    with pytest.raises(InvalidArgument, match="^cannot copy directory$"):
        plan_copy("/etc", True, "/tmp/file", True, False)
    with pytest.raises(NotFound, match="^no such directory$"):
        plan_copy("/f", False, "/tmp/missing/", False, False)


# --- tar rewriting ------------------------------------------------------------------
def make_tar(members: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                t.addfile(info)
            else:
                info.size = len(data)
                info.pax_headers = {"SCHILY.xattr.user.k": "v\udcff"}
                t.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            t.addfile(info)
    return buf.getvalue()


def read_tar(data: bytes) -> dict[str, tuple]:
    with tarfile.open(fileobj=io.BytesIO(data), errors="surrogateescape") as t:
        return {m.name: (m.type, t.extractfile(m).read() if m.isreg() else m.linkname,
                         m.pax_headers.get("SCHILY.xattr.user.k")) for m in t}


def test_rebased_renames_the_top_name_and_hardlinks():
    long = "src/" + "d" * 120 + "/file"  # long enough for a pax "path" header
    src = make_tar({"src": None, "src/a": b"1", long: b"2", "srcx": b"3"}, {"src/h": "src/a"})
    out = read_tar(rebased(io.BytesIO(src), "src", "dst").read())
    assert set(out) == {"dst", "dst/a", "dst/" + "d" * 120 + "/file", "srcx", "dst/h"}
    assert out["dst/h"][1] == "dst/a"
    assert out["dst/a"][2] == "v\udcff"  # binary xattr values survive


def test_rebased_contents_go_below_the_new_name():
    src = make_tar({"a": b"1", "b": None, "b/c": b"2"})
    assert set(read_tar(rebased(io.BytesIO(src), ".", "new").read())) == {
        "new/a", "new/b", "new/b/c"}


def test_rewrite_tar_drops_members():
    src = make_tar({"etc": None, "etc/hosts": b"", "etc/x": b"data"})
    out = read_tar(rewrite_tar(io.BytesIO(src), lambda m: None if m.name == "etc/hosts"
                               else m).read())
    assert set(out) == {"etc", "etc/x"} and out["etc/x"][1] == b"data"


def test_rewrite_tar_refuses_garbage():
    with pytest.raises(InvalidArgument, match="not a valid tar"):
        rewrite_tar(io.BytesIO(b"\x01" * 1024), lambda m: m).read()


# --- helpers on a root --------------------------------------------------------------
@pytest.fixture
def root(tmp_path):
    """A container root with symlinks that point out of it, and a host file beside it."""
    top = tmp_path / "root"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "passwd").write_text("container\n")
    (top / "dir" / "sub").mkdir(parents=True)
    (top / "dir" / "sub" / "f").write_text("f\n")
    os.symlink("/", top / "evil")
    os.symlink("../../../..", top / "up")
    os.symlink("/etc/passwd", top / "link")
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "secret").write_text("host\n")
    return ContainerRoot(str(top))


def test_stat_in_root(root):
    st = stat_in_root(root, "/etc/passwd")
    assert (st.name, st.size, st.is_dir) == ("passwd", 10, False)
    assert stat_in_root(root, "/link").link_target == "/etc/passwd"
    assert stat_in_root(root, "/link", follow=True).size == 10
    assert stat_in_root(root, "/evil/").is_dir


def test_stat_in_root_missing_uses_dockers_words(root):
    with pytest.raises(NotFound, match="^Could not find the file /nope in container c1$"):
        stat_in_root(root, "/nope", label="c1")
    with pytest.raises(NotFound):
        stat_in_root(root, "/etc/passwd/x", label="c1")


@pytest.mark.parametrize("path", ["/evil/etc/passwd", "/up/etc/passwd", "../../etc/passwd",
                                  "/up/../../etc/passwd", "evil/../../etc/passwd"])
def test_reading_never_leaves_the_root(root, path):
    with archive_in_root(root, path) as (st, stream):
        out = read_tar(stream.read())
    assert out == {"passwd": (tarfile.REGTYPE, b"container\n", None)}


def test_archive_of_a_directory_and_of_its_contents(root):
    with archive_in_root(root, "/dir") as (st, stream):
        assert st.is_dir and set(read_tar(stream.read())) == {"dir", "dir/sub", "dir/sub/f"}
    with archive_in_root(root, "/dir/.") as (_, stream):
        assert set(read_tar(stream.read())) == {"sub", "sub/f"}
    with archive_in_root(root, "/dir/") as (_, stream):
        assert set(read_tar(stream.read())) == {"dir", "dir/sub", "dir/sub/f"}


def test_archive_follows_a_last_symlink_only_when_asked(root):
    with archive_in_root(root, "/link") as (_, stream):
        assert read_tar(stream.read())["link"][0] == tarfile.SYMTYPE
    with archive_in_root(root, "/link", follow=True) as (_, stream):
        assert read_tar(stream.read())["link"][1] == b"container\n"


def test_archive_of_a_missing_path_fails_before_any_data(root):
    with pytest.raises(NotFound, match="Could not find the file /nope"):
        with archive_in_root(root, "/nope", label="c1"):
            pass


def test_export_root(root):
    with export_root(root) as stream:
        names = set(read_tar(stream.read()))
    assert {"etc", "etc/passwd", "dir/sub/f", "evil", "up"} <= names


def put(root, dest, data, **kw):
    extract_in_root(root, dest, lambda out: out.write(data), **kw)


@pytest.mark.parametrize("dest", ["/evil/tmp", "/up/tmp", "../../../tmp", "/evil/../tmp"])
def test_writing_never_leaves_the_root(root, dest, tmp_path):
    os.makedirs(os.path.join(root.path, "tmp"))
    put(root, dest, make_tar({"secret": b"pwned"}))
    assert (tmp_path / "host" / "secret").read_text() == "host\n"
    with open(os.path.join(root.path, "tmp", "secret"), "rb") as f:
        assert f.read() == b"pwned"


def test_writing_refuses_entries_that_climb_out(root, tmp_path):
    with pytest.raises(InvalidArgument, match="escapes"):
        put(root, "/etc", make_tar({"../../host/secret": b"pwned"}))
    assert (tmp_path / "host" / "secret").read_text() == "host\n"


def test_writing_with_a_rebase(root):
    put(root, "/etc", make_tar({"a": None, "a/b": b"x"}), rebase=("a", "renamed"))
    assert open(os.path.join(root.path, "etc/renamed/b")).read() == "x"


def test_writing_needs_an_existing_directory(root):
    with pytest.raises(NotFound, match="Could not find the file /missing in container c1"):
        put(root, "/missing", make_tar({"a": b"1"}), label="c1")
    with pytest.raises(InvalidArgument, match='destination "c1:/etc/passwd" must be a dir'):
        put(root, "/etc/passwd", make_tar({"a": b"1"}), label="c1")


def test_writing_never_swaps_a_directory_and_a_file(root):
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        put(root, "/", make_tar({"dir": b"1"}), arrives=("dir", False))
    with pytest.raises(InvalidArgument, match="cannot overwrite non-directory"):
        put(root, "/etc", make_tar({"passwd": None}), arrives=("passwd", True))
    assert os.path.isdir(os.path.join(root.path, "dir"))


def test_a_helper_error_mid_stream_is_reported(root):
    with pytest.raises(InvalidArgument, match="not a valid tar"):
        put(root, "/etc", b"\x01" * 4096, rebase=("a", "b"))
