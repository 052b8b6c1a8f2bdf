"""The layer explorer on images whose layers are known exactly: `kade image layers`
(text, --format json, --tree), `kade history --layers`, and the interactive view
under tmux."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from build_helpers import build, history, write_tree

THREE_RUNS = """\
FROM busybox
RUN echo one > /one
RUN echo two > /two
RUN echo three > /three
"""
ONE_RUN = """\
FROM busybox
RUN echo one > /one && echo two > /two && echo three > /three
"""
CHANGES = """\
FROM busybox
COPY a.txt /app/
COPY data/ /data/
RUN mkdir /d && echo a > /d/a && echo bb > /d/b
RUN rm /bin/ls /app/a.txt
RUN rm -rf /d && mkdir /d && echo new > /d/new && echo b2 > /d/b
"""
FILES = {"a.txt": "hello", "data/small": "s" * 100, "data/big": b"\x00" * 1000}


def _layers(kade, ref, *args):
    return json.loads(kade("image", "layers", "--format", "json", *args, ref).stdout)


def _mine(layer):
    return (layer["Added"], layer["Changed"], layer["Removed"], layer["Size"])


@pytest.fixture(scope="module")
def images(kade, tmp_path_factory):
    root = tmp_path_factory.mktemp("layer-contexts")
    build(kade, root / "three", "-t", "three-runs", dockerfile=THREE_RUNS)
    build(kade, root / "one", "-t", "one-run", dockerfile=ONE_RUN)
    ctx = write_tree(root / "changes", {**FILES, "Dockerfile": CHANGES})
    os.symlink("small", os.path.join(ctx, "data", "link"))
    build(kade, ctx, "-t", "changes")
    return kade


def test_three_runs_make_three_layers_one_run_one(images):
    three = _layers(images, "three-runs")
    one = _layers(images, "one-run")
    assert [lay["Index"] for lay in three["Layers"]] == [1, 2, 3, 4]
    assert [_mine(lay) for lay in three["Layers"][1:]] == [
        (["/one"], [], [], 4), (["/two"], [], [], 4), (["/three"], [], [], 6)]
    assert [lay["CreatedBy"] for lay in three["Layers"][1:]] == [
        "/bin/sh -c echo one > /one", "/bin/sh -c echo two > /two",
        "/bin/sh -c echo three > /three"]
    assert len(one["Layers"]) == 2
    assert _mine(one["Layers"][1]) == (["/one", "/three", "/two"], [], [], 14)
    assert three["Layers"][0] == one["Layers"][0]  # the same busybox layer
    assert three["RepoTags"] == ["three-runs:latest"]
    assert three["Id"] == images("image", "inspect", "-f", "{{.Id}}", "three-runs").stdout.strip()


def test_copy_whiteouts_and_opaque_directories(images):
    layers = _layers(images, "changes")["Layers"]
    assert [_mine(lay) for lay in layers[1:]] == [
        (["/app", "/app/a.txt"], [], [], 5),
        (["/data", "/data/big", "/data/link", "/data/small"], [], [], 1105),
        (["/d", "/d/a", "/d/b"], [], [], 5),
        ([], ["/app", "/bin"], ["/app/a.txt", "/bin/ls"], 0),  # whiteouts
        (["/d/new"], ["/d", "/d/b"], ["/d/a"], 7),  # an opaque /d
    ]


def test_sizes_are_the_ones_history_shows(images):
    from kade.util.units import human_size
    layers = _layers(images, "changes")["Layers"]
    rows = dict(history(images, "changes"))
    assert [rows[lay["CreatedBy"]] for lay in layers] == [human_size(lay["Size"])
                                                          for lay in layers]
    diff_ids = images("image", "inspect", "-f", "{{json .RootFS.Layers}}", "changes").stdout
    assert json.loads(diff_ids) == [lay["DiffID"] for lay in layers]


def test_text_lists_each_layer_with_docker_diff_letters(images):
    out = images("image", "layers", "changes").stdout
    assert out.endswith("  C /d\n  D /d/a\n  C /d/b\n  A /d/new\n")
    blocks = out.split("\n\n")
    assert len(blocks) == 6
    head, by, *files = blocks[4].splitlines()
    assert head.startswith("Layer 5 of 6  0B  sha256:")
    assert by == "/bin/sh -c rm /bin/ls /app/a.txt"
    assert files == ["  C /app", "  D /app/a.txt", "  C /bin", "  D /bin/ls"]
    assert blocks[5].splitlines()[2:] == ["  C /d", "  D /d/a", "  C /d/b", "  A /d/new"]
    assert blocks[2].splitlines()[0].startswith("Layer 3 of 6  1.1kB  ")


def test_tree_shows_each_entry_with_its_layer(images):
    tree = {e["Path"]: e for e in _layers(images, "changes", "--tree")["Tree"]}
    assert "/bin/ls" not in tree and "/app/a.txt" not in tree and "/d/a" not in tree
    assert (tree["/d/b"]["Layer"], tree["/d/b"]["Size"]) == (6, 3)
    assert tree["/d"] == {"Path": "/d", "Type": "dir", "Layer": 6, "Size": 0, "LinkTarget": ""}
    assert tree["/data/link"] == {"Path": "/data/link", "Type": "symlink", "Layer": 3,
                                  "Size": 5, "LinkTarget": "small"}
    assert tree["/bin/busybox"]["Layer"] == 1 and tree["/bin/sh"]["Type"] == "hardlink"
    lines = images("image", "layers", "--tree", "changes").stdout.splitlines()
    assert lines[0] == "LAYER  SIZE      PATH"
    start = lines.index("6      -         d/")
    assert lines[start + 1:start + 3] == ["6      3B          b", "6      4B          new"]
    assert "3      5B          link -> small" in lines


def test_history_layers_puts_the_files_under_their_rows(images):
    lines = images("history", "--layers", "three-runs").stdout.splitlines()
    assert lines[0].startswith("IMAGE ")
    assert "echo three > /three" in lines[1] and lines[2] == "    A /three"
    assert "echo two > /two" in lines[3] and lines[4] == "    A /two"
    assert "echo one > /one" in lines[5] and lines[6] == "    A /one"
    assert "CMD" in lines[7] and "ADD file:busybox" in lines[8]
    bad = images("history", "--layers", "--format", "{{.ID}}", "three-runs", check=False)
    assert bad.returncode == 125  # docker's for a usage error, then its "See ..." line
    assert bad.stderr.startswith("--layers cannot be combined with --format or --quiet")


def test_bad_input_is_one_line(images):
    missing = images("image", "layers", "nope:latest", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "nope" in missing.stderr
    fmt = images("image", "layers", "--format", "yaml", "one-run", check=False)
    assert fmt.returncode != 0 and 'unknown format "yaml"' in fmt.stderr


def test_piped_output_does_not_import_the_terminal_ui(images):
    out = subprocess.run([sys.executable, "-X", "importtime", "-c",
                          "from kade.cli.main import entry; entry()", "--root", images.root,
                          "image", "layers", "one-run"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "/two" in out.stdout
    assert "urwid" not in out.stderr


# --- the interactive view ------------------------------------------------------------------

class Tmux:
    def __init__(self, name: str):
        self.base = ["tmux", "-L", name]

    def __call__(self, *args):
        return subprocess.run(self.base + list(args), capture_output=True, text=True,
                              timeout=30)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "ui").stdout

    def wait_for(self, text: str) -> str:
        """The screen once it shows text (the UI redraws on its own schedule)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared:\n{self.screen()}")


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    pytest.importorskip("urwid")
    t = Tmux(f"kade-test-{os.getpid()}")
    yield t
    t("kill-server")


def test_arrow_keys_move_between_layers(images, tmux, tmp_path):
    done = tmp_path / "exit-code"
    cmd = shlex.join(["env", f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}",
                      sys.executable, "-c", "from kade.cli.main import entry; entry()",
                      "--root", images.root, "image", "layers", "three-runs"])
    tmux("new-session", "-d", "-s", "ui", "-x", "120", "-y", "30",
         f"{cmd}; echo $? > {shlex.quote(str(done))}; sleep 600")
    first = tmux.wait_for("Layer 1 of 4")
    assert "+ /bin/busybox" in first
    tmux("send-keys", "-t", "ui", "Down")
    second = tmux.wait_for("Layer 2 of 4")
    assert "/bin/sh -c echo one > /one" in second and "+ /one" in second
    assert "+ /bin/busybox" not in second
    tmux("send-keys", "-t", "ui", "Down", "Down")
    fourth = tmux.wait_for("Layer 4 of 4")
    assert "+ /three" in fourth
    tmux("send-keys", "-t", "ui", "Up")
    assert "+ /two" in tmux.wait_for("Layer 3 of 4")
    tmux("send-keys", "-t", "ui", "q")
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done.read_text().strip() == "0"
