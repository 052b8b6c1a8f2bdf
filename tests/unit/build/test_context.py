"""kade.build.context: sources by name and pattern, never outside the context; checksums."""

import os

import pytest

from kade.build.context import Context, Source, has_wildcards
from kade.build.dockerignore import Matcher, read
from kade.errors import InvalidArgument, NotFound


def write(path, data="", mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


@pytest.fixture
def root(tmp_path):
    """ctx/ with files, a subtree and symlinks; outside/ next to it."""
    ctx = tmp_path / "ctx"
    for name in ("a.txt", "b.txt", "c.md", "sub/d.txt", "sub/deeper/e.txt", "dir/keep",
                 "dir/other", "x.txt/inner"):
        write(str(ctx / name), name)
    write(str(tmp_path / "outside" / "secret"), "secret")
    os.symlink("a.txt", ctx / "link-in")
    os.symlink("../outside/secret", ctx / "link-out")
    os.symlink(str(tmp_path / "outside"), ctx / "dirlink-out")
    os.symlink("sub", ctx / "dirlink-in")
    return str(ctx)


def ignoring(root, text):
    return Context(root, Matcher(read(text + "\n")))


def rels(sources):
    return [(s.rel, s.name, s.is_dir) for s in sources]


def walk(ctx, rel=""):
    src = ctx.sources([rel or "."])[0]
    return [below for below, _ in ctx.entries(src)]


# --- naming sources ------------------------------------------------------------------------

def test_a_file_by_name(root):
    assert Context(root).sources(["a.txt"]) == [Source("a.txt", "a.txt", False)]


def test_a_directory_by_name_with_or_without_slash(root):
    ctx = Context(root)
    assert rels(ctx.sources(["sub"])) == [("sub", "sub", True)]
    assert rels(ctx.sources(["sub/"])) == [("sub", "sub", True)]
    assert rels(ctx.sources(["./sub/deeper/"])) == [("sub/deeper", "deeper", True)]


def test_the_context_itself(root):
    ctx = Context(root)
    for name in (".", "./", "/", "sub/.."):
        assert rels(ctx.sources([name])) == [("", "", True)]


def test_paths_are_cleaned_inside_the_context(root):
    assert rels(Context(root).sources(["/sub/../a.txt", "./b.txt", "sub//d.txt"])) == [
        ("a.txt", "a.txt", False), ("b.txt", "b.txt", False), ("sub/d.txt", "d.txt", False)]


def test_several_sources_keep_their_order(root):
    assert [s.rel for s in Context(root).sources(["b.txt", "a.txt"])] == ["b.txt", "a.txt"]


def test_a_missing_source(root):
    with pytest.raises(NotFound) as info:
        Context(root).sources(["nope.txt"])
    assert str(info.value) == ("file not found in build context or excluded by .dockerignore: "
                               "stat nope.txt: file does not exist")


def test_the_label_names_where_a_source_was_looked_for(root):
    with pytest.raises(NotFound, match="file not found in stage or image 'b'"):
        Context(root, label="stage or image 'b'").sources(["nope"])


# --- wildcards: Go's filepath.Match -----------------------------------------------------------

@pytest.mark.parametrize("pattern, expected", [
    ("*.txt", ["a.txt", "b.txt", "x.txt"]),       # x.txt is a directory: it matches too
    ("*/*.txt", ["sub/d.txt"]),                    # `*` never crosses "/"
    ("sub/*", ["sub/d.txt", "sub/deeper"]),
    ("sub/*/*", ["sub/deeper/e.txt"]),
    ("?.txt", ["a.txt", "b.txt", "x.txt"]),
    ("[ab].txt", ["a.txt", "b.txt"]),
    ("[!a].txt", ["b.txt", "x.txt"]),
    ("[a-b].*", ["a.txt", "b.txt"]),
    ("./s*b/d.*", ["sub/d.txt"]),
    # symlinks matched by a wildcard are followed when they stay inside (docker's
    # legacy builder copies what they name); those leaving it stay links
    ("*", ["a.txt", "b.txt", "c.md", "dir", "sub", "dirlink-out", "a.txt", "link-out",
           "sub", "x.txt"]),
])
def test_wildcards(root, pattern, expected):
    assert [s.rel for s in Context(root).sources([pattern])] == expected


def test_a_wildcard_follows_links_inside_under_their_own_names(root):
    assert rels(Context(root).sources(["link-*", "dirlink-in"])) == [
        ("a.txt", "link-in", False), ("link-out", "link-out", False), ("sub", "dirlink-in", True)]


def test_wildcard_sources_are_named_by_their_base_name(root):
    assert rels(Context(root).sources(["*/d.txt", "sub/de*"])) == [
        ("sub/d.txt", "d.txt", False), ("sub/deeper", "deeper", True)]


def test_a_wildcard_never_reaches_outside_through_a_symlinked_directory(root):
    with pytest.raises((NotFound, InvalidArgument)):
        Context(root).sources(["dirlink-out/*"])


def test_a_wildcard_that_matches_nothing(root):
    with pytest.raises(NotFound) as info:
        Context(root).sources(["*.go"])
    assert "no source files were specified" in str(info.value)


def test_has_wildcards():
    assert [has_wildcards(p) for p in ("a.txt", "*.txt", "a?", "[ab]", "dir/")] == \
        [False, True, True, True, False]


# --- nothing outside the context --------------------------------------------------------------

@pytest.mark.parametrize("path", ["..", "../outside/secret", "sub/../../outside/secret",
                                  "./../ctx/a.txt"])
def test_dot_dot_leaving_the_context_is_refused(root, path):
    with pytest.raises(InvalidArgument) as info:
        Context(root).sources([path])
    assert "forbidden path outside the build context" in str(info.value)
    assert path in str(info.value)


@pytest.mark.parametrize("path", ["link-out", "dirlink-out", "dirlink-out/secret"])
def test_symlinks_leaving_the_context_are_refused(root, path):
    with pytest.raises(InvalidArgument) as info:
        Context(root).sources([path])
    assert "forbidden path outside the build context" in str(info.value)
    assert path in str(info.value)


def test_a_symlink_inside_the_context_is_followed(root):
    # the target's content, under the link's name
    assert rels(Context(root).sources(["link-in"])) == [("a.txt", "link-in", False)]
    assert rels(Context(root).sources(["dirlink-in/d.txt"])) == [("sub/d.txt", "d.txt", False)]


def test_a_dangling_symlink_is_not_found(root):
    os.symlink("nowhere", os.path.join(root, "dangling"))
    with pytest.raises(NotFound):
        Context(root).sources(["dangling"])


def test_the_context_root_may_itself_be_a_symlink(root, tmp_path):
    os.symlink(root, tmp_path / "alias")
    ctx = Context(str(tmp_path / "alias"))
    assert rels(ctx.sources(["a.txt"])) == [("a.txt", "a.txt", False)]


# --- .dockerignore ---------------------------------------------------------------------------

def test_an_ignored_file_is_not_found(root):
    with pytest.raises(NotFound) as info:
        ignoring(root, "*.md").sources(["c.md"])
    assert "excluded by .dockerignore" in str(info.value)


def test_a_file_in_an_ignored_directory_is_not_found(root):
    with pytest.raises(NotFound):
        ignoring(root, "sub").sources(["sub/d.txt"])


def test_ignored_files_do_not_match_wildcards(root):
    ctx = ignoring(root, "b.txt")
    assert [s.rel for s in ctx.sources(["*.txt"])] == ["a.txt", "x.txt"]
    with pytest.raises(NotFound):
        ignoring(root, "*.md").sources(["*.md"])


def test_ignored_files_are_left_out_of_directory_walks(root):
    ctx = ignoring(root, "*.md\nsub/deeper\nlink-*\ndirlink-*")
    assert walk(ctx) == ["", "a.txt", "b.txt", "dir", "dir/keep", "dir/other", "sub",
                         "sub/d.txt", "x.txt", "x.txt/inner"]
    assert walk(ctx, "sub") == ["", "d.txt"]


def test_exceptions_bring_files_back(root):
    ctx = ignoring(root, "dir\n!dir/keep\n*.txt\n!b.txt")
    assert [s.rel for s in ctx.sources(["*.txt"])] == ["b.txt"]
    assert ctx.sources(["dir/keep"])[0].rel == "dir/keep"
    with pytest.raises(NotFound):
        ctx.sources(["dir/other"])
    assert [b for b in walk(ctx) if b.startswith("dir/")] == ["dir/keep"]


def test_an_ignored_directory_with_an_exception_can_be_named(root):
    # docker's context tar holds dir/keep (and so a "dir"), without dir/other
    ctx = ignoring(root, "dir\n!dir/keep")
    src = ctx.sources(["dir"])
    assert rels(src) == [("dir", "dir", True)]
    assert [below for below, _ in ctx.entries(src[0])] == ["", "keep"]


def test_an_ignored_directory_whose_exception_keeps_nothing_is_not_found(root):
    with pytest.raises(NotFound):
        ignoring(root, "dir\n!dir/nothing").sources(["dir"])


def test_entries_list_a_file_alone(root):
    ctx = Context(root)
    [(below, st)] = list(ctx.entries(ctx.sources(["a.txt"])[0]))
    assert below == "" and st.st_size == len("a.txt")


def test_entries_keep_symlinks_as_symlinks(root):
    import stat
    ctx = Context(root)
    modes = {b: st.st_mode for b, st in ctx.entries(ctx.sources(["."])[0])}
    assert stat.S_ISLNK(modes["link-out"]) and stat.S_ISLNK(modes["dirlink-out"])
    assert "dirlink-out/secret" not in modes  # a walk never follows a link


def test_path_of(root):
    ctx = Context(root)
    assert ctx.path_of(ctx.sources(["sub/d.txt"])[0]) == os.path.join(ctx.root, "sub/d.txt")
    assert ctx.path_of(ctx.sources(["."])[0]) == ctx.root


# --- checksums ---------------------------------------------------------------------------------

def digest(root, *patterns, **kw):
    ctx = Context(root, **kw)
    return ctx.checksum(ctx.sources(list(patterns)))


def test_checksum_is_a_digest_and_stable(root):
    d = digest(root, ".")
    assert d.startswith("sha256:") and len(d) == 71
    assert digest(root, ".") == d


def test_checksum_changes_with_content(root):
    before = digest(root, "sub")
    write(os.path.join(root, "sub/d.txt"), "other")
    assert digest(root, "sub") != before


def test_checksum_changes_with_same_size_content(root):
    path = os.path.join(root, "a.txt")
    before = digest(root, "a.txt")
    st = os.stat(path)
    write(path, "A.TXT")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert digest(root, "a.txt") != before


def test_checksum_changes_with_mode(root):
    before = digest(root, "sub")
    os.chmod(os.path.join(root, "sub/d.txt"), 0o755)
    assert digest(root, "sub") != before


def test_checksum_changes_with_a_directory_mode(root):
    before = digest(root, "sub")
    os.chmod(os.path.join(root, "sub/deeper"), 0o700)
    assert digest(root, "sub") != before


def test_checksum_changes_with_names(root):
    before = digest(root, "sub")
    os.rename(os.path.join(root, "sub/d.txt"), os.path.join(root, "sub/D.txt"))
    assert digest(root, "sub") != before


def test_checksum_changes_with_the_source_name(root):
    # same content under another name: COPY a.txt /dst/ and COPY link-in /dst/ differ
    assert digest(root, "a.txt") != digest(root, "link-in")


def test_checksum_changes_with_a_new_file(root):
    before = digest(root, ".")
    write(os.path.join(root, "sub/new"), "")
    assert digest(root, ".") != before


def test_checksum_changes_with_symlink_targets(root):
    before = digest(root, ".")
    os.remove(os.path.join(root, "link-in"))
    os.symlink("b.txt", os.path.join(root, "link-in"))  # same length target
    assert digest(root, ".") != before


def test_checksum_ignores_mtimes(root):
    before = digest(root, ".")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (1, 1), follow_symlinks=False)
    os.utime(root, (1, 1))
    assert digest(root, ".") == before


def test_checksum_ignores_ignored_files(root):
    before = digest(root, ".", ignore=Matcher(read("*.md\n")))
    write(os.path.join(root, "c.md"), "changed, and longer")
    assert digest(root, ".", ignore=Matcher(read("*.md\n"))) == before


def test_checksum_of_several_sources_depends_on_their_order(root):
    assert digest(root, "a.txt", "b.txt") != digest(root, "b.txt", "a.txt")


def _chown_or_skip(path):
    if os.geteuid() == 0:
        os.chown(path, 1234, 4321, follow_symlinks=False)
        return
    st = os.stat(path)
    others = [g for g in os.getgroups() if g != st.st_gid]
    if not others:
        pytest.skip("needs root or a second group to change an owner")
    os.chown(path, -1, others[0])


def test_owners_count_only_with_keep_owners(root):
    kept, plain = digest(root, "sub", keep_owners=True), digest(root, "sub")
    assert kept != plain  # the owners are in the digest at all
    _chown_or_skip(os.path.join(root, "sub/d.txt"))
    assert digest(root, "sub") == plain
    assert digest(root, "sub", keep_owners=True) != kept
