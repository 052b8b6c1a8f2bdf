"""kade.build.dockerignore: docker's .dockerignore rules (moby/patternmatcher)."""

import os

import pytest

from kade.build.dockerignore import Matcher, clean, ignore_file_for, parse_line, read
from kade.errors import InvalidArgument


@pytest.mark.parametrize("line, expected", [
    ("# comment", None), ("", None), ("   ", None), ("  *.o  ", "*.o"),
    ("/abs/path", "abs/path"), ("/", "/"), ("a/../b/", "b"), ("./a//b/.", "a/b"),
    ("!  /keep/", "!keep"), ("!", "!"), (" # not a comment", "# not a comment"),
])
def test_lines_are_read_as_docker_reads_them(line, expected):
    assert parse_line(line) == expected


@pytest.mark.parametrize("path, expected", [
    ("", "."), ("a/./b/", "a/b"), ("a/..", "."), ("/..", "/"), ("//x", "/x"), ("../a", "../a"),
])
def test_clean_is_go_path_clean(path, expected):
    assert clean(path) == expected


CASES = [
    # (ignore file, path, ignored?)
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),
    ("*/*.log", "dir/a.log", True),
    ("**/*.log", "a.log", True),
    ("**/*.log", "x/y/z/a.log", True),
    ("**", "anything/at/all", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/bb", False),
    ("a/**", "a/x", True),
    ("a/**", "ab", False),
    ("**foo", "x/barfoo", True),
    ("build", "build/obj/x.o", True),
    ("build/", "build/obj/x.o", True),
    ("/build", "build", True),
    ("build", "src/build", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("file[0-9].txt", "file7.txt", True),
    ("file[!0-9].txt", "file!.txt", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a.b", "axb", False),
    ("(x)+{y}|$", "(x)+{y}|$", True),
    ("*\n!keep.log", "keep.log", False),
    ("*\n!keep.log", "other", True),
    ("!keep.log\n*", "keep.log", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
    ("docs\n!docs/keep", "docs/keep", False),
    ("docs\n!docs/keep", "docs/keep/inner.txt", False),
    ("docs\n!docs/keep", "docs/other", True),
    ("# comment\n\n  node_modules  \n", "node_modules/x/index.js", True),
    ("\ufeff*.tmp", "a.tmp", True),
    ("./a/../secret", "secret", True),
    ("a\r\n", "a", True),
]


@pytest.mark.parametrize("text, path, ignored", CASES)
def test_matches(text, path, ignored):
    assert Matcher(read(text)).matches(path) is ignored


def test_bad_patterns_are_refused():
    with pytest.raises(InvalidArgument, match='illegal exclusion pattern: "!"'):
        read("!")
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        read("a[")


@pytest.mark.parametrize("text, directory, skip", [
    ("build", "build", True),
    ("build\n!build/keep", "build", False),
    ("build\n!build/keep", "build/other", True),
    ("build\n!**/keep", "build", False),
    ("build\n!*/keep", "build", False),
    ("build\n!src/keep", "build", True),
    ("*\n!src", "src", False),
    ("*\n!src", "lib", True),
    ("build", "src", False),
])
def test_can_skip_dir(text, directory, skip):
    assert Matcher(read(text)).can_skip_dir(directory) is skip


def test_read_from_a_file(tmp_path):
    path = tmp_path / ".dockerignore"
    path.write_text("*.o\n!main.o\n")
    patterns = read(str(path))
    assert [(p.text, p.exclusion) for p in patterns] == [("*.o", False), ("main.o", True)]


def test_per_dockerfile_ignore_file_wins(tmp_path):
    ctx = str(tmp_path)
    assert ignore_file_for(ctx, "Dockerfile") is None
    (tmp_path / ".dockerignore").write_text("a\n")
    assert ignore_file_for(ctx, "Dockerfile") == os.path.join(ctx, ".dockerignore")
    assert ignore_file_for(ctx) == os.path.join(ctx, ".dockerignore")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("b\n")
    assert ignore_file_for(ctx, "build/app.Dockerfile") == os.path.join(
        ctx, "build", "app.Dockerfile.dockerignore")
    absolute = str(tmp_path / "build" / "app.Dockerfile")
    assert ignore_file_for("/elsewhere", absolute) == absolute + ".dockerignore"
