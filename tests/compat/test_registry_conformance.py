"""The OCI distribution conformance suite (opencontainers/distribution-spec,
`conformance/`) against `kade registry serve`: v1.1.1, and the current main in
its stable (1.1) and dev (1.1+dev) configurations.

The suite is Go code that nothing here may download: an agent fetches its
repository and dependencies as git mirrors and builds it with
scripts/conformance/distribution.py (see docs/compat.md). Where no binary was
built, these tests skip and say how to build one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.compat
SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "conformance",
                      "distribution.py")
# every version runs at least this many tests when nothing is skipped wholesale
MIN_PASSED = {"v1.1.1": 70, "main": 600}


def _script():
    spec = importlib.util.spec_from_file_location("kade_conformance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version,mode", [("v1.1.1", "stable"), ("main", "stable"),
                                          ("main", "dev")])
def test_conformance_suite_passes(version, mode):
    script = _script()
    binary = script.binary_path(script.cache_dir(), version)
    if not os.path.exists(binary):
        pytest.skip(f"conformance suite {version} not built at {binary}: fetch "
                    "github.com/opencontainers/distribution-spec and its Go dependencies as "
                    f"mirrors, then run scripts/conformance/distribution.py build --mirrors DIR "
                    f"--version {version} (docs/compat.md)")
    out = subprocess.run([sys.executable, SCRIPT, "run", "--version", version, "--mode", mode],
                         capture_output=True, text=True, timeout=600)
    m = re.search(r"(\d+) passed, (\d+) failed", out.stdout)
    assert m is not None, out.stdout + out.stderr
    passed, failed = int(m.group(1)), int(m.group(2))
    assert failed == 0 and out.returncode == 0, out.stdout + out.stderr
    assert passed >= MIN_PASSED[version], out.stdout
