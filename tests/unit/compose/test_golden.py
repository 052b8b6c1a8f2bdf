"""Golden files for the compose loader: testdata/<case>/compose.yaml (with an
override, .env and other files beside it as a case needs) and the expected
`kade compose config` output (expected.yaml) or one error line (expected_error.txt).
Paths under the case directory are written `$DIR`. KADE_UPDATE_GOLDEN=1 rewrites
the expectations from the loader's output (review the diff before committing)."""

from __future__ import annotations

import os
import pathlib

import pytest

from kade.compose import Options, load
from kade.errors import InvalidArgument

DATA = pathlib.Path(__file__).parent / "testdata"
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())
ENVIRON = {"HOME": "/home/user"}  # the process environment every case sees


def _run(case: pathlib.Path) -> tuple[str, bool]:
    try:
        project = load(Options(cwd=str(case), environ=dict(ENVIRON)))
    except InvalidArgument as e:
        return str(e).replace(str(case), "$DIR") + "\n", True
    return project.to_yaml().replace(str(case), "$DIR"), False


@pytest.mark.parametrize("name", CASES)
def test_golden(name):
    case = DATA / name
    out, failed = _run(case)
    target = case / ("expected_error.txt" if failed else "expected.yaml")
    if os.environ.get("KADE_UPDATE_GOLDEN"):
        for stale in ("expected_error.txt", "expected.yaml"):
            (case / stale).unlink(missing_ok=True)
        target.write_text(out)
    assert target.exists(), f"{name}: got {'an error' if failed else 'a project'}:\n{out}"
    assert out == target.read_text()
    if failed:
        assert out.count("\n") == 1, "an error is one line"


def test_negative_cases_exist():
    """Every bad input the issue names has a case that must fail."""
    bad = {n for n in CASES if n.startswith("bad_")}
    for needed in ("bad_unknown_key", "bad_wrong_type", "bad_cycle",
                   "bad_missing_dependency", "bad_required_var"):
        assert needed in bad
    for name in bad:
        assert (DATA / name / "expected_error.txt").exists(), name
