"""The security suite's shared fixtures: the CLI's `kade` (tests/conftest.py), the
runtime's `harness` (tests/integration/runtime/runtime_harness.py) and `probe`, the
static attack program (attack_probe)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "runtime"))
from attack_probe import probe  # noqa: E402,F401 - a fixture for every module here
from runtime_harness import harness  # noqa: E402,F401 - a fixture for every module here
