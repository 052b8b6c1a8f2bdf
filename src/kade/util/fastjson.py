"""JSON for the hot read path, without importing the `json` package.

`import json` costs some 5 to 9 ms of a 50 ms `kade ps`: json.decoder and
json.encoder import `re` (which imports enum, functools and collections) and
compile five patterns at import time. The work itself is done by CPython's C
accelerator `_json` either way; this module drives it directly, so that listing
containers or images never loads `re`.

loads() and dumps() give exactly what json.loads() and json.dumps(obj,
separators=(",", ":")) give for documents Kade writes (no surrounding whitespace is
needed, but it is accepted). Where `_json` is missing (another Python), they fall
back to the json package. Floats, NaN and Infinity, non-ASCII and surrogate-escaped
text round-trip as they do with json.

Untrusted documents (manifests, configs, the metadata of a `load` archive) are read
with loads() too: nesting deeper than the interpreter's recursion allows is refused
with a ValueError in Go's words (`invalid character '[' exceeded max depth`, what
docker says past encoding/json's 10000 levels), never a RecursionError.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


class _Context:
    """What _json.make_scanner reads from a json.JSONDecoder."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"),
                "-Infinity": float("-inf")}[name]


_WHITESPACE = " \t\n\r"
_scan = None


def loads(text: str | bytes):
    """The value of one JSON document, as json.loads gives it."""
    global _scan
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _scan is None:
        if _json is None:  # pragma: no cover
            import json
            return json.loads(text)
        _scan = _json.make_scanner(_Context)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at character {e.value}") from None
    except RecursionError:
        raise ValueError(f"invalid character {_too_deep(text)!r} exceeded max depth") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"invalid JSON: extra data at character {end}")
    return value


MAX_DEPTH = 10000  # Go's encoding/json


def _too_deep(text: str) -> str:
    """The bracket that opens one level too many (past MAX_DEPTH, else the deepest:
    the interpreter's recursion limit is lower than Go's)."""
    depth, deepest, opener = 0, 0, "["
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "[" or c == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return c
            if depth > deepest:
                deepest, opener = depth, c
        elif c == "]" or c == "}":
            depth -= 1
    return opener


def _unencodable(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def dumps(obj) -> str:
    """Compact JSON text of obj, as json.dumps(obj, separators=(",", ":"))."""
    if _json is None or not hasattr(_json, "make_encoder"):  # pragma: no cover
        import json
        return json.dumps(obj, separators=(",", ":"))
    # a fresh encoder per call, as json makes one: its markers (the check for
    # circular references) must not outlive a failed call
    encode = _json.make_encoder({}, _unencodable, _json.encode_basestring_ascii,
                                None, ":", ",", False, False, True)
    return "".join(encode(obj, 0))
