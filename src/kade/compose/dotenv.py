"""`.env` files (and `env_file:`), as compose-go's dotenv parser reads them.

    # a comment               KEY=value # inline comment (unquoted values only)
    export KEY=value          KEY='literal $NOT expanded'
    KEY="line\\nbreak ${OTHER}"  (escapes and interpolation; may span lines)
    KEY                       (no `=`: taken from the environment when set there)

Values (unquoted or double-quoted) are interpolated from the keys above them,
then from `lookup` (the process environment).
"""

from __future__ import annotations

import re

from kade.compose.interpolate import Lookup, TemplateError, substitute
from kade.errors import InvalidArgument

_KEY = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-\[\]]*)\s*([=:]?)[ \t]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$", "'": "'"}


def read(path: str, lookup: Lookup) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InvalidArgument(f"couldn't find env file: {path}") from None
    except IsADirectoryError:
        raise InvalidArgument(f"env file {path} is a directory") from None
    return parse(text, path, lookup)


def parse(text: str, path: str, lookup: Lookup) -> dict[str, str]:
    env: dict[str, str] = {}

    def look(name: str):
        return env[name] if name in env else lookup(name)

    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    i, line = 0, 1
    while i < len(text):
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        raw = text[i:end]
        if not raw.strip() or raw.lstrip().startswith("#"):
            i, line = end + 1, line + 1
            continue
        m = _KEY.match(text, i)
        if not m or (m.end() <= end and not m.group(2) and text[m.end():end].strip()):
            raise InvalidArgument(f"failed to read {path}: line {line}: "
                                  f"unexpected character in variable name {raw.strip()!r}")
        key = m.group(1)
        if not m.group(2):  # a bare KEY
            value = lookup(key)
            if value is not None:
                env[key] = value
            i, line = end + 1, line + 1
            continue
        value, i = _value(text, m.end(), path, line, look)
        line += text.count("\n", m.start(), i)
        env[key] = value
    return env


def _value(text: str, i: int, path: str, line: int, look) -> tuple[str, int]:
    quote = text[i:i + 1]
    if quote in ("'", '"'):
        j = i + 1
        while True:
            j = text.find(quote, j)
            if j < 0:
                raise InvalidArgument(f"failed to read {path}: line {line}: "
                                      f"unterminated quoted value")
            if quote == "'" or not _escaped(text, j):
                break
            j += 1
        body = text[i + 1:j]
        nl = text.find("\n", j)
        nxt = len(text) if nl < 0 else nl + 1
        if quote == "'":
            return body, nxt
        body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
        return _expand(body, path, line, look), nxt
    nl = text.find("\n", i)
    end = len(text) if nl < 0 else nl
    value = text[i:end]
    hash_at = re.search(r"\s#", value)
    if hash_at:
        value = value[:hash_at.start()]
    return _expand(value.strip(), path, line, look), end + 1


def _escaped(text: str, j: int) -> bool:
    n = 0
    while j - n - 1 >= 0 and text[j - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _expand(value: str, path: str, line: int, look) -> str:
    try:
        return substitute(value, look)
    except TemplateError as e:
        raise InvalidArgument(f"failed to read {path}: line {line}: {e}") from None
