"""kade.util.inroot: every path stays inside its root, with openat2 and with the walk.

Each test runs twice: once with the kernel's openat2(RESOLVE_IN_ROOT), once with
the O_NOFOLLOW walk used where the kernel has none; a last test checks that the
two agree on a table of hostile paths.
"""

from __future__ import annotations

import errno
import os
import stat

import pytest

from kade.util import inroot


def _has_openat2() -> bool:
    inroot._state.pop("openat2", None)
    try:
        os.close(inroot.open_in_root("/", "/"))
    except OSError:
        return False
    return bool(inroot._state.get("openat2"))


IMPLS = ["openat2", "walk"]


@pytest.fixture(params=IMPLS)
def impl(request):
    if request.param == "openat2" and not _has_openat2():
        pytest.skip("this kernel has no openat2")
    saved = inroot._state.pop("openat2", None)
    if request.param == "walk":
        inroot._state["openat2"] = False
    yield request.param
    inroot._state.pop("openat2", None)
    if saved is not None:
        inroot._state["openat2"] = saved


@pytest.fixture
def tree(tmp_path):
    """root/ with etc/passwd, symlinks that aim at the host, and a host secret beside."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host\n")
    os.symlink("/", root / "slash")
    os.symlink("/etc", root / "abs")
    os.symlink("../../../../../etc", root / "rel")
    os.symlink(str(outside), root / "host")       # a host-absolute path
    os.symlink("../outside", root / "up")
    os.symlink("loop", root / "loop")
    os.symlink("/nowhere/file", root / "dangling")
    (root / "file").write_text("f\n")
    return root


def _ino(fd: int) -> int:
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def test_absolute_and_climbing_symlinks_resolve_inside_the_root(tree, impl):
    passwd = (tree / "etc" / "passwd").stat().st_ino
    for path in ("/abs/passwd", "/rel/passwd", "/slash/etc/passwd", "/../../etc/passwd",
                 "etc/../../../etc/passwd", "/slash/slash/../abs/passwd"):
        assert _ino(inroot.open_in_root(str(tree), path)) == passwd, path


def test_host_paths_are_never_reached(tree, impl):
    for path in ("/host/secret", "/up/secret", "/../outside/secret"):
        with pytest.raises(FileNotFoundError):
            os.close(inroot.open_in_root(str(tree), path))


def test_a_symlink_loop_is_eloop(tree, impl):
    with pytest.raises(OSError) as e:
        inroot.open_in_root(str(tree), "/loop/x")
    assert e.value.errno == errno.ELOOP


def test_no_follow_gives_the_link_itself(tree, impl):
    fd = inroot.open_in_root(str(tree), "/abs", os.O_PATH, follow=False)
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as e:
        inroot.open_in_root(str(tree), "/abs", follow=False)
    assert e.value.errno == errno.ELOOP


def test_create_through_a_dangling_absolute_symlink_stays_inside(tree, impl):
    (tree / "nowhere").mkdir()
    os.close(inroot.open_in_root(str(tree), "/dangling", os.O_WRONLY | os.O_CREAT, 0o600))
    assert (tree / "nowhere" / "file").exists()
    assert not os.path.exists("/nowhere/file")


def test_a_file_on_the_way_is_enotdir(tree, impl):
    with pytest.raises(NotADirectoryError):
        inroot.open_in_root(str(tree), "/file/x")


def test_root_given_as_a_descriptor(tree, impl):
    root_fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = inroot.open_in_root(root_fd, "/abs/passwd")
        assert os.read(fd, 100) == b"inside\n"
        os.close(fd)
        os.fstat(root_fd)    # still open: the caller's
    finally:
        os.close(root_fd)


def test_mkdir_all_creates_inside_the_root(tree, impl):
    fd = inroot.mkdir_all(str(tree), "/host/new/deeper", 0o750, owner=(123, 456))
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    inside = tree / str(tree.parent / "outside").lstrip("/")   # the host path, in the root
    assert (inside / "new" / "deeper").is_dir()
    assert not (tree.parent / "outside" / "new").exists()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 123, 456)


def test_mkdir_all_through_a_climbing_symlink_and_dotdot(tree, impl):
    os.close(inroot.mkdir_all(str(tree), "/up/../../../made"))
    assert (tree / "made").is_dir()
    assert not (tree.parent / "made").exists()
    assert not (tree.parent / "outside" / "made").exists()


def test_mkdir_all_of_an_existing_directory_keeps_it(tree, impl):
    before = os.stat(tree / "etc")
    fd = inroot.mkdir_all(str(tree), "/abs")
    assert _ino(fd) == before.st_ino
    assert stat.S_IMODE(os.stat(tree / "etc").st_mode) == stat.S_IMODE(before.st_mode)


def test_mkdir_all_refuses_a_file_on_the_way(tree, impl):
    with pytest.raises(NotADirectoryError):
        inroot.mkdir_all(str(tree), "/file/x")


def test_a_target_descriptor_survives_a_swapped_component(tree, impl, tmp_path):
    """A mount target is named by its descriptor: replacing the directory with a
    symlink to the host afterwards changes nothing the descriptor names."""
    fd = inroot.mkdir_all(str(tree), "/data/sub")
    try:
        original = os.fstat(fd).st_ino
        os.rename(tree / "data", tree / "data.old")
        os.symlink(str(tmp_path / "outside"), tree / "data")
        assert os.stat(inroot.fd_path(fd)).st_ino == original
        assert os.path.samefile(inroot.fd_path(fd), tree / "data.old" / "sub")
    finally:
        os.close(fd)


def test_resolve_gives_the_real_components(tree):
    root_fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        pfd, name, real = inroot.resolve(root_fd, "/rel/passwd", follow=False)
        os.close(pfd)
        assert (name, real) == ("passwd", ["etc", "passwd"])
        pfd, name, real = inroot.resolve(root_fd, "/abs", follow=True)
        os.close(pfd)
        assert (name, real) == ("etc", ["etc"])
        pfd, name, real = inroot.resolve(root_fd, "/abs/", follow=False)
        os.close(pfd)
        assert (name, real) == ("", ["etc"])
    finally:
        os.close(root_fd)


HOSTILE = ["/", "/abs/passwd", "/rel/passwd", "/host/secret", "/up/secret", "/loop",
           "/dangling", "/file/x", "/file/", "/etc/", "/slash/../../..", "/abs/../file",
           "/missing/x", "/missing", "etc/passwd/.."]


def test_openat2_and_the_walk_agree(tree):
    if not _has_openat2():
        pytest.skip("this kernel has no openat2")
    results = {}
    for impl in IMPLS:
        inroot._state.pop("openat2", None)
        if impl == "walk":
            inroot._state["openat2"] = False
        got = []
        for path in HOSTILE:
            for flags, follow in ((os.O_RDONLY, True), (os.O_PATH, False)):
                try:
                    got.append(_ino(inroot.open_in_root(str(tree), path, flags,
                                                        follow=follow)))
                except OSError as e:
                    got.append(errno.errorcode[e.errno])
        results[impl] = got
    inroot._state.pop("openat2", None)
    assert results["openat2"] == results["walk"]
