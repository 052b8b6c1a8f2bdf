"""`${VAR}` interpolation, as compose-go's template package does it.

    $$              a literal $
    $VAR ${VAR}     VAR's value, or "" (with a warning) when unset
    ${VAR:-word}    word when VAR is unset or empty      ${VAR-word}  only when unset
    ${VAR:+word}    word when VAR is set and not empty   ${VAR+word}  when set
    ${VAR:?msg}     error when VAR is unset or empty     ${VAR?msg}   when unset

`word` and `msg` are templates themselves (`${A:-${B:-x}}`). A `$` followed by
anything else stays as written; `${` without a valid body is an error. After
substitution, a few keys that the schema wants as numbers or booleans are cast
(compose-go's interpolateTypeCastMapping), so `replicas: ${N}` validates.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kade.compose.yamlfile import Override
from kade.errors import InvalidArgument

Lookup = Callable[[str], "str | None"]
_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPS = (":?", "?", ":-", "-", ":+", "+")


class TemplateError(Exception):
    """A bad `${...}` (invalid=True) or a `${VAR:?}` whose VAR is missing."""

    def __init__(self, message: str, invalid: bool = False):
        super().__init__(message)
        self.invalid = invalid


def substitute(template: str, lookup: Lookup, warn: Callable[[str], None] | None = None) -> str:
    out: list[str] = []
    i = 0
    while True:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            return "".join(out)
        out.append(template[i:j])
        nxt = template[j + 1:j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _closing(template, j + 1)
            if end < 0:
                raise TemplateError(template, invalid=True)
            out.append(_braced(template[j + 2:end], template, lookup, warn))
            i = end + 1
        elif m := _NAME.match(template, j + 1):
            out.append(_value(m.group(), lookup, warn))
            i = m.end()
        else:
            out.append("$")
            i = j + 1


def _closing(s: str, start: int) -> int:
    """Index of the `}` closing the `{` at `start`, counting nested braces."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _value(name: str, lookup: Lookup, warn) -> str:
    value = lookup(name)
    if value is None:
        if warn:
            warn(f'The "{name}" variable is not set. Defaulting to a blank string.')
        return ""
    return value


def _braced(body: str, whole: str, lookup: Lookup, warn) -> str:
    m = _NAME.match(body)
    if not m:
        raise TemplateError(whole, invalid=True)
    name, rest = m.group(), body[m.end():]
    if not rest:
        return _value(name, lookup, warn)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise TemplateError(whole, invalid=True)
    arg = rest[len(op):]
    value = lookup(name)
    present = value is not None and (value != "" or ":" not in op)
    if op.endswith("?"):
        if present:
            return value  # type: ignore[return-value]
        reason = substitute(arg, lookup, warn)
        raise TemplateError(f"required variable {name} is missing a value"
                            + (f": {reason}" if reason else ""))
    if op.endswith("-"):
        return value if present else substitute(arg, lookup, warn)  # type: ignore[return-value]
    return substitute(arg, lookup, warn) if present else (value or "")


# -- the tree walk --------------------------------------------------------------

def _to_int(v: str) -> int:
    if not re.fullmatch(r"[-+]?[0-9]+", v):
        raise ValueError(f'strconv.Atoi: parsing "{v}": invalid syntax')
    return int(v)


def _to_float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None


def _to_bool(v: str):
    low = v.lower()
    if low in ("true", "y", "yes", "on"):
        return True
    if low in ("false", "n", "no", "off"):
        return False
    raise ValueError(f"invalid boolean: {v!r}")


_SVC = "services.*."
CASTS = {
    **{_SVC + k: _to_int for k in (
        "cpu_count", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
        "cpu_shares", "deploy.replicas", "deploy.update_config.parallelism",
        "deploy.rollback_config.parallelism", "deploy.restart_policy.max_attempts",
        "deploy.placement.max_replicas_per_node", "healthcheck.retries", "oom_score_adj",
        "pids_limit", "ports.[].target", "scale", "ulimits.*", "ulimits.*.hard",
        "ulimits.*.soft")},
    **{_SVC + k: _to_float for k in (
        "cpu_percent", "cpus", "deploy.update_config.max_failure_ratio",
        "deploy.rollback_config.max_failure_ratio")},
    **{_SVC + k: _to_bool for k in (
        "init", "depends_on.*.required", "depends_on.*.restart", "healthcheck.disable",
        "oom_kill_disable", "privileged", "read_only", "stdin_open", "tty",
        "volumes.[].read_only", "volumes.[].volume.nocopy")},
    **{f"{top}.*.external": _to_bool for top in ("networks", "volumes", "secrets", "configs")},
    **{f"networks.*.{k}": _to_bool for k in ("internal", "attachable", "enable_ipv4",
                                              "enable_ipv6")},
}


def matches(path: tuple, pattern: str) -> bool:
    """compose-go's tree.Path.Matches: `*` matches any one key, `[]` any list index."""
    parts = pattern.split(".")
    if len(parts) != len(path):
        return False
    return all(p == "*" or p == k or (p == "[]" and isinstance(k, int))
               for p, k in zip(parts, path))


def _caster(path: tuple):
    for pattern, cast in CASTS.items():
        if matches(path, pattern):
            return cast
    return None


def dotted(path: tuple) -> str:
    return ".".join(str(k) for k in path)


def interpolate(tree, lookup: Lookup, filename: str, warn=None, path: tuple = ()):
    """`tree` with every string substituted; errors name the file and the key path."""
    if isinstance(tree, dict):
        return {k: interpolate(v, lookup, filename, warn, path + (k,)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [interpolate(v, lookup, filename, warn, path + (i,)) for i, v in enumerate(tree)]
    if isinstance(tree, Override):
        return Override(interpolate(tree.value, lookup, filename, warn, path))
    if not isinstance(tree, str):
        return tree
    try:
        value = substitute(tree, lookup, warn)
    except TemplateError as e:
        if e.invalid:
            raise InvalidArgument(
                f"invalid interpolation format for {dotted(path)} in {filename}: "
                f"\"{e}\"; you may need to escape any $ with another $") from None
        raise InvalidArgument(
            f"error while interpolating {dotted(path)} in {filename}: {e}") from None
    cast = _caster(path)
    if cast is None:
        return value
    try:
        return cast(value)
    except ValueError as e:
        raise InvalidArgument(
            f"error while interpolating {dotted(path)} in {filename}: failed to cast to "
            f"expected type: {e}") from None
