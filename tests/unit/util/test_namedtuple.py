"""kade.util.namedtuple.NamedTuple behaves as typing.NamedTuple does, without typing."""

import os
import subprocess
import sys
import typing

import pytest

from kade.util.namedtuple import NamedTuple


class Mount(NamedTuple):
    """A mount."""
    destination: str
    flags: int = 0
    data: str = ""

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & 4096)

    def describe(self) -> str:
        return f"{self.destination} {self.flags}"


class Typed(typing.NamedTuple):
    destination: str
    flags: int = 0
    data: str = ""


def test_fields_defaults_and_body_like_typing():
    m = Mount("/proc")
    assert m == ("/proc", 0, "") == Typed("/proc")
    assert Mount._fields == Typed._fields and Mount._field_defaults == Typed._field_defaults
    assert m._replace(flags=4096).is_bind and not m.is_bind
    assert m.describe() == "/proc 0" and Mount.__doc__ == "A mount."
    assert m._asdict() == {"destination": "/proc", "flags": 0, "data": ""}
    assert repr(m) == "Mount(destination='/proc', flags=0, data='')"
    assert Mount.__module__ == __name__ and Mount.__qualname__ == "Mount"
    with pytest.raises(AttributeError):
        m.flags = 1


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError):
        class Bad(NamedTuple):
            a: int = 0
            b: int


def test_the_runtime_imports_no_typing():
    src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    # what site imported before (a version manager's .pth files may load typing) is
    # not the runtime's doing
    code = ("import sys; before = set(sys.modules); import kade.runtime; "
            "print('typing' in set(sys.modules) - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.abspath(src)})
    assert out.stdout.strip() == "False", out.stderr
