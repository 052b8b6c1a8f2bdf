"""Malicious archives: each must raise InvalidArgument and change nothing
outside the root (the sentinel directory next to it stays as it was)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from archive_helpers import directory, file, hardlink, make_tar, symlink, whiteout

from kade.archive import apply_layer, extract_into
from kade.errors import InvalidArgument

ESCAPE = "kade-test-escape"


def _cases(outside: str) -> dict[str, list]:
    return {
        "dotdot": [file(f"../{ESCAPE}", b"x")],
        "inner dotdot": [file(f"a/../../{ESCAPE}", b"x")],
        "dotdot into sentinel": [file("../outside/file", b"pwned")],
        "absolute": [file(f"/etc/{ESCAPE}", b"x")],
        "symlink to /etc": [symlink("a", "/etc"), file(f"a/{ESCAPE}", b"x")],
        "symlink absolute to sentinel": [symlink("a", outside), file("a/file", b"pwned")],
        "symlink up": [symlink("a", "../../.."), file(f"a/{ESCAPE}", b"x")],
        "symlink to sibling": [symlink("a", "../outside"), file("a/file", b"pwned")],
        "symlink deep": [directory("d"), symlink("d/l", "../../outside"),
                         file("d/l/file", b"pwned")],
        "symlink chain": [symlink("a", "b"), symlink("b", "c"), symlink("c", "../outside"),
                          file("a/new", b"x")],
        "symlink chain via dir": [directory("d"), symlink("d/up", ".."),
                                  symlink("x", "d/up/d/up/.."), file("x/new", b"x")],
        "symlink then dir in it": [symlink("a", outside), directory("a/sub")],
        "hardlink absolute": [hardlink("h", "/etc/passwd")],
        "hardlink dotdot": [hardlink("h", f"../../{ESCAPE}")],
        "hardlink to sentinel": [hardlink("h", "../outside/file")],
        "hardlink through symlink": [symlink("a", outside), hardlink("h", "a/file")],
        "hardlink through relative symlink": [symlink("a", "../outside"),
                                              hardlink("h", "a/file")],
    }


def _whiteout_cases(outside: str) -> dict[str, list]:
    return {
        "whiteout through symlink": [symlink("a", outside), whiteout("a/.wh.file")],
        "opaque through symlink": [symlink("a", outside), whiteout("a/.wh..wh..opq")],
        "whiteout dotdot": [whiteout("../outside/.wh.file")],
        "whiteout through relative symlink": [symlink("a", "../outside"),
                                              whiteout("a/.wh.file")],
    }


@pytest.mark.parametrize("case", list(_cases("/x")))
@pytest.mark.parametrize("whiteouts", ["delete", "overlay"])
def test_escapes_are_refused(case: str, whiteouts: str, root: Path, outside: Path,
                             assert_outside_untouched) -> None:
    data = make_tar(_cases(str(outside))[case])
    with pytest.raises(InvalidArgument) as err:
        apply_layer(io.BytesIO(data), str(root), whiteouts=whiteouts)
    assert "\n" not in str(err.value)
    assert_outside_untouched()
    assert not os.path.lexists(f"/etc/{ESCAPE}")
    assert not os.path.lexists(f"/{ESCAPE}")


@pytest.mark.parametrize("case", list(_whiteout_cases("/x")))
@pytest.mark.parametrize("whiteouts", ["delete", "overlay"])
def test_whiteout_escapes_are_refused(case: str, whiteouts: str, root: Path, outside: Path,
                                      assert_outside_untouched) -> None:
    if whiteouts == "overlay" and os.geteuid() != 0:
        pytest.skip("overlay whiteouts need root")
    data = make_tar(_whiteout_cases(str(outside))[case])
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(data), str(root), whiteouts=whiteouts)
    assert_outside_untouched()


def test_message_names_the_entry(root: Path) -> None:
    data = make_tar([file("../../etc/passwd", b"x")])
    with pytest.raises(InvalidArgument, match=r'^layer entry "../../etc/passwd" escapes the root$'):
        apply_layer(io.BytesIO(data), str(root))


def test_absolute_refusal_names_the_entry(root: Path) -> None:
    data = make_tar([file("/etc/passwd", b"x")])
    with pytest.raises(InvalidArgument, match='"/etc/passwd": absolute paths are refused'):
        apply_layer(io.BytesIO(data), str(root))


def test_preexisting_symlink_in_root_is_not_written_through(root: Path, outside: Path,
                                                            assert_outside_untouched) -> None:
    (root / "lib").symlink_to(outside)  # e.g. left by a lower layer
    data = make_tar([file("lib/file", b"pwned")])
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(data), str(root), whiteouts="delete")
    assert_outside_untouched()


def test_symlink_loop_is_refused(root: Path) -> None:
    data = make_tar([symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")])
    with pytest.raises(InvalidArgument, match="symbolic links"):
        apply_layer(io.BytesIO(data), str(root))


def test_symlinks_inside_the_root_are_followed(root: Path) -> None:
    data = make_tar([directory("usr/lib"), symlink("lib", "usr/lib"),
                     directory("d"), symlink("d/up", "../usr"), file("lib/a", b"1"),
                     file("d/up/lib/b", b"2")])
    apply_layer(io.BytesIO(data), str(root))
    assert sorted(os.listdir(root / "usr/lib")) == ["a", "b"]


def test_symlink_replaced_by_dir_is_not_followed(root: Path, outside: Path,
                                                 assert_outside_untouched) -> None:
    data = make_tar([symlink("a", str(outside)), directory("a"), file("a/file", b"mine")])
    apply_layer(io.BytesIO(data), str(root))
    assert (root / "a/file").read_bytes() == b"mine"
    assert_outside_untouched()


def test_symlink_targets_are_only_data(root: Path) -> None:
    data = make_tar([symlink("etc-link", "/etc"), symlink("up", "../../..")])
    apply_layer(io.BytesIO(data), str(root))
    assert os.readlink(root / "etc-link") == "/etc"


# extract_into (kade cp into a container)

def test_extract_into_resolves_dest_inside_root(root: Path, outside: Path,
                                                assert_outside_untouched) -> None:
    (root / "run").mkdir()
    (root / "var").mkdir()
    (root / "var/run").symlink_to("/run")  # absolute, as in Debian: means <root>/run
    extract_into(io.BytesIO(make_tar([file("pidfile", b"1")])), str(root), "/var/run")
    assert (root / "run/pidfile").read_bytes() == b"1"
    extract_into(io.BytesIO(make_tar([file("top", b"2")])), str(root), "/../../..")
    assert (root / "top").read_bytes() == b"2"
    assert_outside_untouched()


def test_extract_into_refuses_escapes_from_dest(root: Path, outside: Path,
                                                assert_outside_untouched) -> None:
    (root / "dest").mkdir()
    for members in ([file("../../outside/file", b"x")],
                    [symlink("l", str(outside)), file("l/file", b"x")],
                    [symlink("l", "../../outside"), file("l/file", b"x")]):
        with pytest.raises(InvalidArgument, match="archive entry"):
            extract_into(io.BytesIO(make_tar(members)), str(root), "dest")
    assert_outside_untouched()


def test_extract_into_keeps_whiteout_names_as_files(root: Path) -> None:
    extract_into(io.BytesIO(make_tar([file(".wh.x", b"plain")])), str(root), "/")
    assert (root / ".wh.x").read_bytes() == b"plain"
