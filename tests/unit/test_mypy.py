"""mypy finds no error in the engine and its front doors ([tool.mypy] of pyproject.toml).
Its cache is the repository's .mypy_cache (ignored by git): a cold run takes ~10 s."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")
# the front doors that exist: compose and the Engine API join when their packages land
PACKAGES = [p for p in ("kade.engine", "kade.cli", "kade.compose", "kade.api")
            if os.path.isfile(os.path.join(SRC, *p.split("."), "__init__.py"))
            and any(f.endswith(".py") and f != "__init__.py"
                    for f in os.listdir(os.path.join(SRC, *p.split("."))))]


def test_engine_and_front_doors_type_check():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e .[test])")
    args = [arg for p in PACKAGES for arg in ("-p", p)]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           os.path.join(ROOT, "pyproject.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MYPYPATH": SRC, "PYTHONPATH": SRC})
    assert proc.returncode == 0, proc.stdout + proc.stderr
