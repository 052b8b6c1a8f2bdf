"""YAML as go-yaml v3 writes compose's model (two-space indent, sequences indented
under their key, strings quoted only when YAML would read them as something else)."""

from __future__ import annotations

import json
import re

_PLAIN_UNSAFE = re.compile(
    r"^(?:$|[-?:,\[\]{}#&*!|>'\"%@`~ ]|.*(?:: |\s#|:$)|.*\s$)"
    r"|^(?:true|false|yes|no|on|off|y|n|null|~)$"
    r"|^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$"
    r"|^0[xXoObB][0-9a-fA-F_]+$|^[-+]?\.(?:inf|nan)$|^\d+:\d+(?::\d+)*$"
    r"|^\d{4}-\d\d?-\d\d?", re.I)
_SPECIAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0085\u2028\u2029\ufeff]")


def scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _SPECIAL.search(text) or "\n" in text or _PLAIN_UNSAFE.match(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _float(v: float) -> str:
    if v != v:
        return ".nan"
    if v in (float("inf"), float("-inf")):
        return "+.inf" if v > 0 else "-.inf"
    text = repr(v)
    return text[:-2] if text.endswith(".0") else text


def _lines(value, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            key = scalar(k)
            if _is_block(v):
                out.append(f"{pad}{key}:")
                _lines(v, indent + 2, out)
            else:
                out.append(f"{pad}{key}: {_inline(v)}")
    else:
        for v in value:
            if _is_block(v):
                sub: list[str] = []
                _lines(v, indent + 2, sub)
                first = sub[0][indent + 2:]
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_inline(v)}")


def _is_block(v) -> bool:
    return isinstance(v, (dict, list)) and len(v) > 0


def _inline(v) -> str:
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return scalar(v)


def dump_yaml(value: dict) -> str:
    out: list[str] = []
    _lines(value, 0, out)
    return "\n".join(out) + "\n"
