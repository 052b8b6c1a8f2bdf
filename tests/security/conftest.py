"""The security suite uses the CLI's `kade` fixture (tests/conftest.py) and the
runtime's `harness` (tests/integration/runtime/runtime_harness.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "runtime"))
from runtime_harness import harness  # noqa: E402,F401 - the fixture for this directory
