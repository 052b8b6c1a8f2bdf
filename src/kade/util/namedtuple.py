"""typing.NamedTuple's class syntax without importing typing.

The runtime's value types are NamedTuples, and the container supervisor imports
the runtime: typing (with typing.io and typing.re) would cost it ~0.4 MB and
~3 ms to import. Modules write

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from kade.util.namedtuple import NamedTuple

    class Write(NamedTuple):
        file: str
        optional: bool = False

so type checkers see typing's, and at run time the class is made the way typing
makes it: a collections.namedtuple of the annotated fields, with their defaults,
plus the methods, properties and docstring of the class body.
"""

from __future__ import annotations

from collections import namedtuple

# what typing.NamedTuple refuses in the class body, and what it does not copy over
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                         "_field_defaults", "_make", "_replace", "_asdict", "_source"})
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__", "__qualname__"})


class _NamedTupleMeta(type):
    def __new__(mcls, name: str, bases: tuple, ns: dict):
        if not bases:  # NamedTuple itself
            return super().__new__(mcls, name, bases, ns)
        fields = list(ns.get("__annotations__", {}))
        defaults = [ns[f] for f in fields if f in ns]
        if any(f not in ns for f in fields[len(fields) - len(defaults):]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        cls = namedtuple(name, fields, defaults=defaults, module=ns.get("__module__"))
        cls.__qualname__ = ns.get("__qualname__", name)
        for key, value in ns.items():
            if key in _PROHIBITED:
                raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in fields:
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    """Subclass it, as typing.NamedTuple; see the module docstring."""
