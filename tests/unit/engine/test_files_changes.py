"""tree_changes: docker diff over hand-made overlay uppers and full copies (no mounts)."""

from __future__ import annotations

import os
import stat

import pytest

from kade.engine.files import INIT_PATHS, tree_changes


def write(root, rel, text="x"):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def mkdir(root, rel, mode=0o755):
    path = os.path.join(root, rel)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    return path


def whiteout(root, rel):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, 0)
    except PermissionError:
        pytest.skip("this kernel or user cannot make whiteouts (0/0 character devices)")


def opaque(path):
    try:
        os.setxattr(path, "trusted.overlay.opaque", b"y")
    except OSError:
        pytest.skip("trusted.* xattrs need CAP_SYS_ADMIN")


@pytest.fixture
def layers(tmp_path):
    """A lower layer like a small image, and an empty upper."""
    lower, upper = str(tmp_path / "lower"), str(tmp_path / "upper")
    for d in ("bin", "etc", "home", "var/log"):
        mkdir(lower, d)
    write(lower, "bin/ls")
    write(lower, "bin/sh")
    write(lower, "etc/passwd", "root\n")
    write(lower, "home/old")
    os.mkdir(upper)
    return upper, lower


def copy_meta(lower, upper, rel):
    """What overlayfs does on copy-up of a directory: same owner, mode and times."""
    st = os.stat(os.path.join(lower, rel))
    path = mkdir(upper, rel, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return path


def test_added_changed_and_deleted_with_parents_as_changed(layers):
    upper, lower = layers
    write(upper, "newdir/f")
    copy_meta(lower, upper, "etc")
    write(upper, "etc/passwd", "root\ny\n")
    copy_meta(lower, upper, "bin")
    whiteout(upper, "bin/ls")
    assert tree_changes(upper, [lower]) == [
        ("C", "/bin"), ("D", "/bin/ls"), ("C", "/etc"), ("C", "/etc/passwd"),
        ("A", "/newdir"), ("A", "/newdir/f")]


def test_a_directory_copied_up_unchanged_is_not_reported(layers):
    upper, lower = layers
    copy_meta(lower, upper, "var")
    copy_meta(lower, upper, "var/log")
    assert tree_changes(upper, [lower]) == []


def test_a_chmod_directory_is_changed(layers):
    upper, lower = layers
    mkdir(upper, "home", 0o700)
    assert tree_changes(upper, [lower]) == [("C", "/home")]


def test_opaque_directory_deletes_what_it_hides(layers):
    upper, lower = layers
    home = copy_meta(lower, upper, "home")
    opaque(home)
    write(upper, "home/new")
    assert tree_changes(upper, [lower]) == [
        ("C", "/home"), ("A", "/home/new"), ("D", "/home/old")]


def test_whiteout_of_nothing_is_not_a_deletion(layers):
    upper, lower = layers
    whiteout(upper, "ghost")
    assert tree_changes(upper, [lower]) == []


def test_layers_below_honour_their_own_whiteouts(tmp_path, layers):
    upper, lower = layers
    middle = str(tmp_path / "middle")
    whiteout(middle, "bin/sh")
    write(upper, "bin/sh")  # re-created over a file a middle layer removed
    assert tree_changes(upper, [middle, lower]) == [("C", "/bin"), ("A", "/bin/sh")]


def test_a_file_replacing_a_directory_is_changed(layers):
    upper, lower = layers
    write(upper, "home", "now a file")
    assert tree_changes(upper, [lower]) == [("C", "/home")]


def test_runtime_mount_points_are_skipped(layers):
    upper, lower = layers
    copy_meta(lower, upper, "etc")
    for name in ("hosts", "hostname", "resolv.conf"):
        write(upper, f"etc/{name}", "")
    assert tree_changes(upper, [lower], skip=INIT_PATHS) == []
    write(upper, "etc/extra")
    assert tree_changes(upper, [lower], skip=INIT_PATHS) == [("C", "/etc"), ("A", "/etc/extra")]


def test_full_copy_compares_entry_by_entry(tmp_path, layers):
    _, lower = layers
    full = str(tmp_path / "full")
    import shutil
    shutil.copytree(lower, full, symlinks=True, copy_function=shutil.copy2)
    for d in ("bin", "etc", "home", "var", "var/log", ""):
        st = os.stat(os.path.join(lower, d))
        os.utime(os.path.join(full, d), ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tree_changes(full, [lower], full=True) == []
    os.unlink(os.path.join(full, "bin/ls"))
    write(full, "etc/passwd", "root\ny\n")
    write(full, "newdir/f")
    assert tree_changes(full, [lower], full=True) == [
        ("C", "/bin"), ("D", "/bin/ls"), ("C", "/etc"), ("C", "/etc/passwd"),
        ("A", "/newdir"), ("A", "/newdir/f")]


def test_full_copy_of_an_empty_image(tmp_path):
    full = str(tmp_path / "full")
    write(full, "a/b")
    assert tree_changes(full, [], full=True) == [("A", "/a"), ("A", "/a/b")]
