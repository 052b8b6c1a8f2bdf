"""The import-linter contracts of pyproject.toml hold: the layers of
docs/ARCHITECTURE.md, and no import cycle among the engine's modules."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_layers_contract_is_kept():
    # the venv's own first: its bin/ is not on PATH when pytest runs as .venv/bin/python
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or \
        shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install import-linter)")
    proc = subprocess.run([lint, "--config", os.path.join(ROOT, "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_start_does_not_import_heavy_modules():
    code = ("import sys; from kade.cli import main; "
            "heavy = [m for m in ('kade.images', 'kade.runtime', 'kade.archive', 'isal', "
            "'zstandard', 'kade.engine', 'sqlite3', 'json') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
