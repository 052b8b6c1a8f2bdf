"""`kade ps` and `kade images` start lean: the modules they load are most of their
time (docs/benchmarks.md, "ps -a and images"), so the heavy ones stay out."""

import io
import os
import subprocess
import sys
import tarfile

import pytest

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "src"))
# each costs a millisecond or more to import; re and json the most (enum, functools,
# collections and five compiled patterns)
HEAVY = ("re", "json", "enum", "typing", "dataclasses", "inspect", "contextlib", "threading",
         "tempfile", "shutil", "subprocess", "socket", "hashlib", "argparse", "importlib.util")


def _kade(root, *args, stdin=None):
    return subprocess.run([sys.executable, "-c", "from kade.cli.main import entry; entry()",
                           "--root", str(root), *args], input=stdin, capture_output=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=60)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lean")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    out = _kade(root, "import", "-", "lean:latest", stdin=buf.getvalue())
    assert out.returncode == 0, out.stderr
    return root


@pytest.mark.parametrize("args", [("ps", "-a"), ("images",), ("ps", "-a", "--format", "{{.ID}}"),
                                  ("images", "-q")])
def test_listing_imports_nothing_heavy(store, args):
    code = (f"import sys\nfrom kade.cli.main import main\n"
            f"code = main(['--root', {str(store)!r}, *{args!r}])\n"
            f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "0 []", out.stderr
    if args[0] == "images" and "-q" not in args:
        assert "lean" in out.stdout


def test_a_fast_exit_keeps_what_the_command_wrote(store):
    """entry() leaves with os._exit when nothing needs the interpreter's teardown: the
    tag written by one process is seen by the next."""
    assert _kade(store, "tag", "lean:latest", "lean:again").returncode == 0
    out = _kade(store, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert sorted(out.stdout.decode().split()) == ["lean:again", "lean:latest"]
    assert _kade(store, "rmi", "lean:again").returncode == 0


def test_teardown_is_kept_for_threads_and_atexit_work():
    code = ("import sys, atexit\nfrom kade.cli.main import _needs_teardown\n"
            "print(_needs_teardown())\n"
            "atexit.register(print, 'bye')\nprint(_needs_teardown())\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert out.stdout.split() == ["False", "True", "bye"], out.stderr
    code = "import threading\nfrom kade.cli.main import _needs_teardown\nprint(_needs_teardown())"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
