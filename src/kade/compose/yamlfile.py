"""Reading one compose file's YAML as compose-go (go-yaml v3) reads it.

PyYAML speaks YAML 1.1, where `80:80` is the sexagesimal integer 4880 and `yes`
is a boolean; go-yaml v3 reads both as strings, so the resolvers here are YAML
1.2's core schema. Anchors, aliases and `<<` merge keys are YAML's own. Two tags
are compose's: `!reset` (drop what earlier files set) and `!override` (replace
it instead of merging), carried as `Reset`/`Override` markers to the merge.
A key given twice in one mapping is an error, as in go-yaml.
"""

from __future__ import annotations

import re

import yaml

from kade.errors import InvalidArgument

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Reset:
    """`!reset`: the key is removed from what earlier files (or a base) set."""

    def __repr__(self) -> str:
        return "!reset"


RESET = Reset()


class Override:
    """`!override VALUE`: VALUE replaces what earlier files set, unmerged."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return f"!override {self.value!r}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Override) and other.value == self.value


class _Loader(_Base):  # type: ignore[misc, valid-type]
    yaml_implicit_resolvers: dict = {}


_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
     "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
]
for _tag, _pattern, _first in _RESOLVERS:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    if re.fullmatch(r"[-+]?0[0-7]+", text):  # go-yaml parses with base 0: 0644 is octal
        return int(text, 8)
    return int(text, 10)


def _float(loader, node):
    text = loader.construct_scalar(node).lower()
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text.endswith("nan") else float(text)


def _bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


def _mapping(loader, node):
    own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # puts what `<<` merges before the node's own keys
    merged = len(node.value) - own
    seen: dict = {}
    out: dict = {}
    for i, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if i >= merged and key in seen and seen[key] > 0:
            raise InvalidArgument(
                f"mapping key {_quote(key)} already defined at line {seen[key]}")
        seen[key] = key_node.start_mark.line + 1 if i >= merged else 0
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _reset(loader, node):
    return RESET


def _override(loader, node):
    if isinstance(node, yaml.MappingNode):
        return Override(_mapping(loader, node))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)
_Loader.add_constructor("!reset", _reset)
_Loader.add_constructor("!override", _override)


def _quote(key) -> str:
    return f'"{key}"' if isinstance(key, str) else str(key)


def parse(text: str, filename: str) -> list:
    """Every document of `text`, as plain Python values (with Reset/Override markers).
    A syntax error becomes one line naming the file, the line and the column."""
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidArgument(f"failed to parse {filename}: yaml: {where}"
                              f"{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InvalidArgument(f"failed to parse {filename}: yaml: {e}") from None
    except InvalidArgument as e:
        raise InvalidArgument(f"failed to parse {filename}: yaml: {e}") from None
    except RecursionError:
        raise InvalidArgument(f"failed to parse {filename}: yaml: nested too deeply") from None
