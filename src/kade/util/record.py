"""A lean stand-in for @dataclass on hot paths: `dataclasses` imports inspect and
ast (~12 ms), which `kade build` would pay on every no-op rebuild.

    @record
    class Point:
        x: int
        y: int = 0
        tags: list = field(default_factory=list)

gives __init__ (positional or keyword, in annotation order), __repr__ and __eq__.
No frozen enforcement, no ordering, no __hash__ beyond identity: use dataclasses
where those matter.
"""

from __future__ import annotations

_MISSING = object()


class _field:  # spelled field, like dataclasses.field (see the end)
    def __init__(self, *, default=_MISSING, default_factory=_MISSING, init: bool = True,
                 repr: bool = True, compare: bool = True) -> None:  # noqa: A002
        self.default = default
        self.default_factory = default_factory
        self.init, self.repr, self.compare = init, repr, compare


def _record(cls=None, **_ignored):
    """@record or @record(frozen=True) (accepted for dataclass parity, not enforced)."""
    if cls is None:
        return _record
    names = [n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_")]
    defaults = {}
    for n in names:
        if n in cls.__dict__:
            value = cls.__dict__[n]
            defaults[n] = value if isinstance(value, _field) else _field(default=value)
    shown = [n for n in names if n not in defaults or defaults[n].repr]
    compared = [n for n in names if n not in defaults or defaults[n].compare]
    names = [n for n in names if n not in defaults or defaults[n].init]
    needed = len(names)

    def __init__(self, *args, **kw):
        if len(args) > needed:
            raise TypeError(f"{cls.__name__}() takes {needed} arguments, got {len(args)}")
        for i, n in enumerate(names):
            if i < len(args):
                value = args[i]
            elif n in kw:
                value = kw.pop(n)
            else:
                d = defaults.get(n)
                if d is None:
                    raise TypeError(f"{cls.__name__}() missing argument {n!r}")
                value = d.default if d.default is not _MISSING else d.default_factory()
            object.__setattr__(self, n, value)
        if kw:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kw)}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{cls.__name__}({inner})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    for n in defaults:
        if isinstance(cls.__dict__.get(n), _field):
            delattr(cls, n)
    cls.__init__, cls.__repr__, cls.__eq__ = __init__, __repr__, __eq__
    cls.__hash__ = object.__hash__ if "__hash__" not in cls.__dict__ else cls.__hash__
    cls.__record_fields__ = tuple(names)
    return cls


# type checkers see dataclasses' (whose __init__, fields and defaults this mirrors),
# so they check the calls; at run time, the lean one
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass as record
    from dataclasses import field
else:
    record, field = _record, _field
