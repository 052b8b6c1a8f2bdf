from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from archive_helpers import (
    MTIME,
    CountingReader,
    chardev,
    directory,
    fifo,
    file,
    hardlink,
    listing,
    make_tar,
    root_only,
    symlink,
    whiteout,
)

from kade.archive import apply_layer
from kade.errors import InvalidArgument


def test_types_modes_and_times(apply, root: Path) -> None:
    result = apply([
        directory("etc", 0o755, mtime=MTIME + 5),
        file("etc/passwd", b"root:x:0:0\n", 0o644),
        file("bin/su", b"\x7fELF", 0o4755),
        directory("tmp", 0o1777),
        directory("srv", 0o2775),
        symlink("etc/link", "passwd"),
        symlink("abs", "/etc/passwd"),
        hardlink("etc/hard", "etc/passwd"),
        fifo("run-fifo", 0o600),
        file("ro", b"x", 0o444),
        file("gw", b"y", 0o664),
    ])
    assert result.size == len(b"root:x:0:0\n") + 4 + 2
    assert result.entries == 11
    assert (root / "etc/passwd").read_bytes() == b"root:x:0:0\n"
    modes = {p: stat.S_IMODE(os.lstat(root / p).st_mode)
             for p in ("bin/su", "tmp", "srv", "ro", "gw", "run-fifo", "etc")}
    assert modes == {"bin/su": 0o4755, "tmp": 0o1777, "srv": 0o2775, "ro": 0o444,
                     "gw": 0o664, "run-fifo": 0o600, "etc": 0o755}
    assert os.readlink(root / "etc/link") == "passwd"
    assert os.readlink(root / "abs") == "/etc/passwd"
    assert os.stat(root / "etc/hard").st_ino == os.stat(root / "etc/passwd").st_ino
    assert stat.S_ISFIFO(os.lstat(root / "run-fifo").st_mode)
    assert os.lstat(root / "etc/passwd").st_mtime == MTIME
    assert os.lstat(root / "etc/link").st_mtime == MTIME
    # A directory's time is set after its children were written.
    assert os.lstat(root / "etc").st_mtime == MTIME + 5
    assert stat.S_IMODE(os.lstat(root / "bin").st_mode) == 0o755  # made as a parent


def test_pax_long_names_and_links(apply, root: Path) -> None:
    long_dir = "/".join(["d" * 60] * 3)
    long_file = f"{long_dir}/{'f' * 120}"
    apply([file(long_file, b"data"), symlink("s", "t" * 150), hardlink("h", long_file),
           file("ünïcode-名前", b"u")])
    assert (root / long_file).read_bytes() == b"data"
    assert os.readlink(root / "s") == "t" * 150
    assert os.stat(root / "h").st_ino == os.stat(root / long_file).st_ino
    assert (root / "ünïcode-名前").read_bytes() == b"u"


def test_gnu_longname_and_longlink(apply, root: Path) -> None:
    name = "g/" + "n" * 200
    apply([file(name, b"gnu"), symlink("l", "x" * 300), hardlink("h" * 150, name)],
          format=tarfile.GNU_FORMAT)
    assert (root / name).read_bytes() == b"gnu"
    assert os.readlink(root / "l") == "x" * 300
    assert (root / ("h" * 150)).read_bytes() == b"gnu"


def test_ustar_prefix_field(apply, root: Path) -> None:
    name = "p" * 90 + "/" + "q" * 90
    apply([file(name, b"ustar")], format=tarfile.USTAR_FORMAT)
    assert (root / name).read_bytes() == b"ustar"


def test_user_xattrs_via_pax(apply, root: Path) -> None:
    info, data = file("f", b"x")
    info.pax_headers = {"SCHILY.xattr.user.kade": "yes"}
    apply([(info, data)])
    assert os.getxattr(root / "f", "user.kade") == b"yes"


@root_only
def test_owners_devices_and_capabilities(apply, root: Path) -> None:
    cap = bytes.fromhex("0100000200040000000000000000000000000000")  # cap_net_bind_service
    info, data = file("bin/ping", b"p", 0o4755, uid=1000, gid=1001)
    info.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("ascii")}
    tf = make_tar([directory("home", uid=1000, gid=1000), (info, data),
                   symlink("home/l", "x", uid=7, gid=8), chardev("dev/null", 1, 3),
                   fifo("f", uid=5, gid=6)], format=tarfile.PAX_FORMAT)
    apply_layer(io.BytesIO(tf), str(root))
    st = os.lstat(root / "bin/ping")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o4755)
    assert os.getxattr(root / "bin/ping", "security.capability") == cap
    assert (os.lstat(root / "home").st_uid, os.lstat(root / "home/l").st_uid) == (1000, 7)
    dev = os.lstat(root / "dev/null")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
    assert (os.lstat(root / "f").st_uid, os.lstat(root / "f").st_gid) == (5, 6)


def test_owners_false_keeps_caller_ids(apply, root: Path) -> None:
    apply([file("f", b"x", uid=4242, gid=4242)], owners=False)
    assert os.lstat(root / "f").st_uid == os.geteuid()


def test_replacing_paths_of_another_type(apply, root: Path) -> None:
    (root / "was-dir").mkdir()
    (root / "was-dir/child").write_text("x")
    (root / "was-file").write_text("x")
    (root / "was-link").symlink_to("elsewhere")
    (root / "keep-dir").mkdir(mode=0o700)
    (root / "keep-dir/old").write_text("stays")
    apply([file("was-dir", b"now a file"), directory("was-file"), file("was-link", b"f"),
           directory("keep-dir", 0o751)])
    assert (root / "was-dir").read_bytes() == b"now a file"
    assert (root / "was-file").is_dir()
    assert not (root / "was-link").is_symlink()
    assert (root / "keep-dir/old").read_text() == "stays"
    assert stat.S_IMODE(os.lstat(root / "keep-dir").st_mode) == 0o751


def test_a_file_replaced_by_a_file_gets_a_new_inode(apply, root: Path) -> None:
    (root / "f").write_text("old")
    os.link(root / "f", root / "other")  # e.g. shared with a lower layer
    apply([file("f", b"new")])
    assert (root / "f").read_text() == "new"
    assert (root / "other").read_text() == "old"


def test_root_entry_sets_root_metadata(apply, root: Path) -> None:
    apply([directory("./", 0o700, mtime=MTIME), file("./a", b"")])
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    assert os.lstat(root).st_mtime == MTIME
    assert (root / "a").exists()


def test_dot_slash_names_and_inner_dotdot(apply, root: Path) -> None:
    apply([file("./a/./b", b"1"), file("c/../d", b"2")])
    assert (root / "a/b").read_bytes() == b"1"
    assert (root / "d").read_bytes() == b"2"
    assert not (root / "c").exists()


def test_absolute_names_relative_policy(apply, root: Path) -> None:
    apply([file("/etc/kade-abs", b"x"), hardlink("/l", "/etc/kade-abs")], absolute="relative")
    assert (root / "etc/kade-abs").read_bytes() == b"x"
    assert (root / "l").read_bytes() == b"x"
    assert not os.path.exists("/etc/kade-abs")


def test_stream_is_drained_and_sizes_reported(root: Path) -> None:
    data = make_tar([file("a", b"12345")])  # tarfile pads to a 10 KiB record
    reader = CountingReader(data + b"\0" * 4096)
    result = apply_layer(reader, str(root))
    assert reader.count == len(data) + 4096
    assert result.tar_size == len(data) + 4096
    assert result.size == 5


def test_missing_end_blocks_are_tolerated(root: Path) -> None:
    data = make_tar([file("a", b"x")])
    apply_layer(io.BytesIO(data[:1024]), str(root))
    assert (root / "a").read_bytes() == b"x"


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d[:700], "truncated"),
    (lambda d: d[:100] + b"\x01" + d[101:], "checksum"),
])
def test_corrupt_tars_are_refused(root: Path, mangle, message: str) -> None:
    data = make_tar([file("a", b"x" * 1000)])
    with pytest.raises(InvalidArgument, match=message):
        apply_layer(io.BytesIO(mangle(data)), str(root))


def test_unsupported_member_types_are_refused(root: Path) -> None:
    info, _ = file("sparse")
    info.type = b"S"
    with pytest.raises(InvalidArgument, match="unsupported type"):
        apply_layer(io.BytesIO(make_tar([(info, None)], tarfile.GNU_FORMAT)), str(root))


def test_bad_policy_values(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="whiteouts"):
        apply_layer(io.BytesIO(b""), str(root), whiteouts="aufs")
    with pytest.raises(InvalidArgument, match="absolute"):
        apply_layer(io.BytesIO(b""), str(root), absolute="strip")


# Whiteouts, "delete": applied onto a copy of the parent layer.

@pytest.fixture
def lower(root: Path) -> Path:
    for d in ("d", "d/sub", "o", "o/keep-dir"):
        (root / d).mkdir()
    for f in ("gone", "stays", "d/x", "d/sub/y", "o/old", "o/keep-dir/old-child"):
        (root / f).write_text(f)
    return root


def test_whiteouts_delete(apply, lower: Path) -> None:
    apply([whiteout(".wh.gone"), whiteout(".wh.d"), whiteout(".wh.never-existed"),
           whiteout("no-such-dir/.wh.x"), whiteout(".wh..wh.plnk")], whiteouts="delete")
    assert listing(str(lower)) == ["o", "o/keep-dir", "o/keep-dir/old-child", "o/old", "stays"]


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_delete_keeps_only_this_layers_entries(apply, lower: Path,
                                                      marker_first: bool) -> None:
    members = [directory("o"), file("o/new", b"n"), directory("o/keep-dir"),
               file("o/keep-dir/fresh", b"f"), file("o/deep/er/file", b"d")]
    marker = whiteout("o/.wh..wh..opq")
    members = ([members[0], marker] + members[1:]) if marker_first else members + [marker]
    apply(members, whiteouts="delete")
    assert listing(str(lower / "o")) == ["deep", "deep/er", "deep/er/file", "keep-dir",
                                         "keep-dir/fresh", "new"]


def test_a_layers_own_entry_survives_its_whiteout(apply, root: Path) -> None:
    apply([file("a", b"mine"), whiteout(".wh.a")], whiteouts="delete")
    assert (root / "a").read_bytes() == b"mine"


@pytest.mark.parametrize("name", [".wh.", "d/.wh..", ".wh..."])
def test_whiteouts_of_no_name_are_refused(apply, name: str) -> None:
    with pytest.raises(InvalidArgument, match="whiteout"):
        apply([whiteout(name)], whiteouts="delete")


# Whiteouts, "overlay": an upper directory for overlayfs.

@root_only
def test_whiteouts_overlay(apply, root: Path) -> None:
    apply([directory("d"), whiteout("d/.wh.gone"), whiteout("d/.wh..wh..opq"),
           file("d/new", b"n"), whiteout(".wh.top")], whiteouts="overlay")
    for p in ("d/gone", "top"):
        st = os.lstat(root / p)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(root / "d", "trusted.overlay.opaque") == b"y"
    assert (root / "d/new").read_bytes() == b"n"
    assert not (root / "d/.wh.gone").exists()


def test_many_directories_and_no_descriptor_leaks(apply, root: Path) -> None:
    members = []
    for i in range(700):  # more than RootDir caches at once
        members += [directory(f"d{i % 7}/sub{i}"), file(f"d{i % 7}/sub{i}/f", b"%d" % i)]
    before = len(os.listdir("/proc/self/fd"))
    apply(members)
    assert len(os.listdir("/proc/self/fd")) == before
    assert (root / "d3/sub10/f").read_bytes() == b"10"
    assert len(listing(str(root))) == 7 + 700 * 2


def test_subsecond_pax_mtimes(apply, root: Path) -> None:
    info, data = file("f", b"x")
    info.pax_headers = {"mtime": "1600000000.123456789"}
    apply([(info, data)])
    assert os.lstat(root / "f").st_mtime_ns == 1_600_000_000_123_456_789


def test_nul_in_a_name_is_refused(apply) -> None:
    info, data = file("x")
    info.pax_headers = {"path": "a\x00b"}
    with pytest.raises(InvalidArgument, match="invalid"):
        apply([(info, data)])


def test_hardlink_to_nothing_is_refused(apply) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        apply([hardlink("h", "missing")])
