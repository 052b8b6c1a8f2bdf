"""kade.util.fs.remove_tree: shutil.rmtree(ignore_errors=True) without shutil."""

import os

from kade.util.fs import remove_tree


def test_removes_a_tree_and_never_follows_symlinks(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "f").write_text("x")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("y")
    (top / "locked").mkdir()
    (top / "locked" / "g").write_text("z")
    os.chmod(top / "locked", 0)
    os.symlink(outside, top / "a" / "to-dir")
    os.symlink(outside / "keep" / "f", top / "to-file")
    os.symlink("nowhere", top / "dangling")
    remove_tree(str(top))
    assert not os.path.lexists(top)
    assert (outside / "keep" / "f").read_text() == "x"


def test_a_missing_path_or_a_symlink_is_left_alone(tmp_path):
    remove_tree(str(tmp_path / "nothing"))
    os.symlink(tmp_path, tmp_path / "link")
    remove_tree(str(tmp_path / "link"))
    assert os.path.islink(tmp_path / "link")
