"""`kade build` starts lean: a no-op rebuild must beat docker's ~90 ms, and the
modules on its path are part of that (dataclasses alone costs ~12 ms)."""

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
BUILD_PATH = ("kade.cli.build", "kade.engine.build", "kade.build", "kade.build.context",
              "kade.build.stages", "kade.build.instructions", "kade.build.parser")
HEAVY = ("typing", "dataclasses", "inspect", "threading", "shutil", "socket", "tempfile")


def test_the_build_path_imports_nothing_heavy():
    # what site loaded before (a version manager's .pth files) is not the build's doing
    code = ("import sys\nbefore = set(sys.modules)\n"
            f"for m in {BUILD_PATH!r}: __import__(m)\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.abspath(SRC)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
