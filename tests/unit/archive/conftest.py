from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_helpers import Member, listing, make_tar

from kade.archive import ApplyResult, apply_layer

@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A sentinel directory next to root; nothing may ever change in it."""
    o = tmp_path / "outside"
    o.mkdir()
    (o / "file").write_bytes(b"keep")
    return o


@pytest.fixture
def assert_outside_untouched(outside: Path, tmp_path: Path) -> Callable[[], None]:
    def check() -> None:
        assert listing(str(outside)) == ["file"]
        assert (outside / "file").read_bytes() == b"keep"
        assert sorted(os.listdir(tmp_path)) == ["outside", "root"]
    return check


@pytest.fixture
def apply(root: Path) -> Callable[..., ApplyResult]:
    def run(members: list[Member], **kw: object) -> ApplyResult:
        fmt = kw.pop("format", None)
        data = make_tar(members) if fmt is None else make_tar(members, fmt)  # type: ignore[arg-type]
        return apply_layer(io.BytesIO(data), str(root), **kw)  # type: ignore[arg-type]
    return run
