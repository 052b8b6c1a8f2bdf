"""Validation against the Compose Specification's JSON schema (compose-spec.json).

Why not a JSON-schema library: measured on this machine, `import jsonschema` costs
~83 ms and fastjsonschema compiles this schema in ~200 ms per process (or 30 ms to
import its 245 kB of generated code), against a CLI that should answer `compose ps`
in 60 ms. The schema uses only thirteen keywords (type, properties,
patternProperties, additionalProperties, items, required, enum, pattern, minimum,
maximum, uniqueItems, oneOf, $ref), which this module checks in well under a
millisecond; tests/unit/compose/test_schema.py holds it to `jsonschema` on every
golden case. Messages are docker compose's (`services.web Additional property foo
is not allowed`), for the most specific failure as compose-go picks it: the
deepest key path, an unknown key counting one deeper.
"""

from __future__ import annotations

import json
import os
import re

_SCHEMA: dict | None = None
_PATTERNS: dict[str, re.Pattern] = {}


def schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        here = os.path.dirname(__file__)
        with open(os.path.join(here, "compose-spec.json"), encoding="utf-8") as f:
            _SCHEMA = json.load(f)
    return _SCHEMA


class Failure:
    __slots__ = ("path", "message", "weight")

    def __init__(self, path: tuple, message: str, extra: int = 0):
        self.path, self.message, self.weight = path, message, len(path) + extra

    def __str__(self) -> str:
        where = ".".join(str(k) for k in self.path) or "(root)"
        return f"{where} {self.message}"


def shown(value) -> str:
    """The bad value, as JSON, cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."


def validate(doc) -> str | None:
    """The one-line error for `doc`, or None when it is valid."""
    failure = _check(doc, schema(), ())
    return None if failure is None else str(failure)


def _resolve(sch: dict) -> dict:
    while "$ref" in sch:
        name = sch["$ref"].rpartition("/")[2]
        sch = schema()["definitions"][name]
    return sch


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
_HUMAN = {"object": "mapping", "array": "list"}


def _human(types: list[str]) -> str:
    names = sorted(_HUMAN.get(t, t) for t in types)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _check(value, sch: dict, path: tuple) -> Failure | None:
    sch = _resolve(sch)
    if "oneOf" in sch:
        failure = _one_of(value, sch["oneOf"], path)
        if failure:
            return failure
    want = sch.get("type")
    if want is not None:
        types = want if isinstance(want, list) else [want]
        if not any(_TYPES[t](value) for t in types):
            return Failure(path, f"must be a {_human(types)}, not {shown(value)}")
    if "enum" in sch and value not in sch["enum"]:
        allowed = ", ".join(json.dumps(v) for v in sch["enum"])
        return Failure(path, f"must be one of the following: {allowed}, not {shown(value)}")
    if isinstance(value, dict):
        return _check_object(value, sch, path)
    if isinstance(value, list):
        return _check_array(value, sch, path)
    if isinstance(value, str) and "pattern" in sch:
        if not _pattern(sch["pattern"]).search(value):
            return Failure(path, f"Does not match pattern '{sch['pattern']}': {shown(value)}")
    if _TYPES["number"](value):
        if "minimum" in sch and value < sch["minimum"]:
            return Failure(path, f"must be greater than or equal to {sch['minimum']}")
        if "maximum" in sch and value > sch["maximum"]:
            return Failure(path, f"must be less than or equal to {sch['maximum']}")
    return None


def _pattern(p: str) -> re.Pattern:
    if p not in _PATTERNS:
        _PATTERNS[p] = re.compile(p)
    return _PATTERNS[p]


def _one_of(value, branches: list, path: tuple) -> Failure | None:
    failures = []
    for branch in branches:
        failure = _check(value, branch, path)
        if failure is None:
            return None  # compose's branches exclude each other by type
        failures.append(failure)
    best = max(failures, key=lambda f: f.weight)
    if best.weight == len(path) and best.message.startswith("must be a "):
        # every branch failed on the value's own type: name them all
        types = []
        for b in branches:
            t = _resolve(b).get("type")
            types += t if isinstance(t, list) else [t] if t else []
        return Failure(path, f"must be a {_human(list(dict.fromkeys(types)))}, "
                             f"not {shown(value)}")
    return best


def _check_object(value: dict, sch: dict, path: tuple) -> Failure | None:
    props = sch.get("properties", {})
    patterns = sch.get("patternProperties", {})
    additional = sch.get("additionalProperties", True)
    for name in sch.get("required", ()):
        if name not in value:
            return Failure(path, f"{name} is required")
    for key, item in value.items():
        matched = False
        if key in props:
            matched = True
            failure = _check(item, props[key], path + (key,))
            if failure:
                return failure
        for pattern, sub in patterns.items():
            if isinstance(key, str) and _pattern(pattern).search(key):
                matched = True
                failure = _check(item, sub, path + (key,))
                if failure:
                    return failure
        if matched:
            continue
        if additional is False:
            return Failure(path, f"Additional property {key} is not allowed", extra=1)
        if isinstance(additional, dict):
            failure = _check(item, additional, path + (key,))
            if failure:
                return failure
    return None


def _check_array(value: list, sch: dict, path: tuple) -> Failure | None:
    items = sch.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            failure = _check(item, items, path + (i,))
            if failure:
                return failure
    if sch.get("uniqueItems"):
        seen: list = []
        for i, item in enumerate(value):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                return Failure(path, f"array items[{seen.index(key)},{i}] must be unique")
            seen.append(key)
    return None
