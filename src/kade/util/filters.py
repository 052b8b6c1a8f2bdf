"""``--filter key=value`` parsing and matching, with docker's rules and messages.

    >>> f = parse_filters(["label=app=web", "dangling=true", "label=tier"])
    >>> f
    {'label': ['app=web', 'tier'], 'dangling': ['true']}
    >>> check_keys(f, {"label", "dangling", "reference"})
    >>> match_labels({"app": "web", "tier": "1"}, f["label"])
    True
    >>> match_reference("docker.io/library/busybox:latest", "busy*")
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping


from kade.errors import InvalidArgument

TYPE_CHECKING = False  # not `from typing`: importing typing costs ~3 ms on `kade ps`
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = [
    "bool_filter",
    "check_keys",
    "familiar_name",
    "match_label",
    "match_labels",
    "match_name",
    "match_reference",
    "parse_filters",
    "path_match",
]


def parse_filters(values: Iterable[str]) -> dict[str, list[str]]:
    """Collect ``--filter`` flags into {name: [values]}: names lower-cased, both sides
    stripped, repeated values kept once, empty flags ignored (docker's ParseFlag)."""
    filters: dict[str, list[str]] = {}
    for arg in values:
        if not arg:
            continue
        if "=" not in arg:
            raise InvalidArgument("bad format of filter (expected name=value)")
        name, value = arg.split("=", 1)
        seen = filters.setdefault(name.strip().lower(), [])
        value = value.strip()
        if value not in seen:
            seen.append(value)
    return filters


def check_keys(filters: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Reject filter names the command does not know, naming the first one."""
    allowed = set(allowed)
    for name in filters:
        if name not in allowed:
            raise InvalidArgument(f'invalid filter "{name}"')


def bool_filter(filters: Mapping[str, list[str]], key: str, default: bool) -> bool:
    """A true/false filter such as ``dangling``: "true"/"1" or "false"/"0", not both."""
    if key not in filters:
        return default
    values = set(filters[key])
    is_true = bool(values & {"true", "1"})
    is_false = bool(values & {"false", "0"})
    if is_true == is_false:
        raise InvalidArgument(f'invalid filter "{key}={",".join(filters[key])}"')
    return is_true


def match_label(labels: Mapping[str, str] | None, expr: str) -> bool:
    """``key`` matches when the label is set; ``key=value`` when it has that value."""
    key, has_value, want = expr.partition("=")
    if not labels or key not in labels:
        return False
    return not has_value or labels[key] == want


def match_labels(labels: Mapping[str, str] | None, exprs: Iterable[str]) -> bool:
    """Every expression must match, as repeated ``--filter label=...`` flags do."""
    return all(match_label(labels, e) for e in exprs)


def match_name(name: str, patterns: Iterable[str]) -> bool:
    """docker's ``name`` filter: any pattern found as a regular expression in ``name``.

    An invalid expression matches nothing, as in docker.
    """
    import re

    for pattern in patterns:
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def familiar_name(ref: str) -> str:
    """The short form docker prints: docker.io/library/busybox:latest -> busybox:latest."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            remainder = ref[len("library/") :]
            if ref.startswith("library/") and "/" not in remainder.split("@")[0]:
                ref = remainder
            break
    return ref


def _strip_tag_and_digest(ref: str) -> str:
    name = ref.split("@", 1)[0]
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name = name[:colon]
    return name


def match_reference(ref: str, pattern: str) -> bool:
    """docker's ``reference`` filter: ``pattern`` (path.Match syntax) against the
    familiar reference ("busybox:latest"), then against the bare name ("busybox"),
    so "busybox" matches every tag and "*:latest" every latest image at top level."""
    familiar = familiar_name(ref)
    return path_match(pattern, familiar) or path_match(pattern, _strip_tag_and_digest(familiar))


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` stop at "/", ``[^a-z]`` classes, ``\\`` escapes.

    A malformed pattern raises InvalidArgument whether or not it would match.
    """
    return _compile_path_pattern(pattern)(name) is not None


@functools.lru_cache(maxsize=128)
def _compile_path_pattern(pattern: str) -> Callable[[str], object]:
    import re

    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                _bad_pattern(pattern)
            out.append(re.escape(pattern[i]))
        elif c == "[":
            cls, i = _char_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL).fullmatch


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate a class starting after "[" to a regex; return it and the index after "]"."""
    import re

    negate = pattern.startswith("^", i)
    i += negate
    ranges: list[str] = []
    count = 0
    while True:
        if i < len(pattern) and pattern[i] == "]" and count:
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern.startswith("-", i):
            hi, i = _class_char(pattern, i + 1)
        count += 1
        if lo <= hi:  # Go accepts a reversed range; it just matches nothing
            ranges.append(re.escape(lo) + ("-" + re.escape(hi) if hi != lo else ""))
    if not ranges:
        return ("." if negate else "(?!)"), i + 1
    return ("[^" if negate else "[") + "".join(ranges) + "]", i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        _bad_pattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            _bad_pattern(pattern)
    return pattern[i], i + 1


def _bad_pattern(pattern: str) -> NoReturn:
    raise InvalidArgument(f'invalid pattern "{pattern}": syntax error in pattern')
