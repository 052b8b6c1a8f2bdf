"""Sizes, durations and timestamps written the way docker writes and reads them.

Sizes and durations follow docker/go-units (``HumanSizeWithPrecision``, ``BytesSize``,
``RAMInBytes``, ``HumanDuration``); durations are Go's ``time.ParseDuration``;
timestamps are docker's ``--since``/``--until`` values (``timetypes.GetTimestamp``).

    >>> human_size(4_270_000), bytes_size(1.5 * 1024 * 1024), ram_in_bytes("512m")
    ('4.27MB', '1.5MiB', 536870912)
    >>> human_duration(3 * 60), parse_duration("1h30m")
    ('3 minutes', 5400.0)
"""

from __future__ import annotations

import math
import time


from kade.errors import InvalidArgument

TYPE_CHECKING = False  # not `from typing`: importing typing costs ~3 ms on `kade ps`
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "bytes_size",
    "from_human_size",
    "human_duration",
    "human_size",
    "parse_cpus",
    "parse_duration",
    "parse_timestamp",
    "ram_in_bytes",
    "since",
]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_PREFIXES = "kmgtp"


def _scale(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 3) -> str:
    """Decimal size, as docker's SIZE columns print it: 946B, 2.05kB, 4.27MB, 1.24GB.

    Go's ``%.*g`` and Python's ``g`` agree, down to docker's own quirk: 999999 is "1e+03kB".
    """
    value, unit = _scale(float(size), 1000.0, _DECIMAL_UNITS)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """Binary size, as ``docker stats`` prints memory: 1KiB, 1.5MiB, 3.42GiB."""
    value, unit = _scale(float(size), 1024.0, _BINARY_UNITS)
    return f"{value:.4g}{unit}"


def ram_in_bytes(size: str) -> int:
    """Parse "512m", "1g", "1.5GB", "32KiB" or "100" (bytes) with binary multipliers."""
    return _parse_size(size, 1024)


def from_human_size(size: str) -> int:
    """Parse "32kB", "1.5 MB" or "100" with decimal multipliers (go-units FromHumanSize)."""
    return _parse_size(size, 1000)


def _parse_size(text: str, base: int) -> int:
    """go-units parseSize: a number, an optional space, then [kmgtp], "i" and "b" suffixes."""
    end = len(text)
    while end and text[end - 1] not in "0123456789. ":
        end -= 1
    number, suffix = text[:end], text[end:].lower()
    number = number.removesuffix(" ")
    value = _go_parse_float(number)
    if value is None or value < 0 or len(suffix) > 3:
        raise InvalidArgument(f'invalid size: "{text}"')
    if suffix[:1] == "b":
        if len(suffix) > 1:
            raise InvalidArgument(f'invalid size: "{text}"')
    elif suffix:
        exp = _PREFIXES.find(suffix[0]) + 1
        if not exp or suffix[1:] not in ("", "b", "ib"):
            raise InvalidArgument(f'invalid size: "{text}"')
        value *= base**exp
    return int(value)


def _go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat for plain decimals ("1", ".5", "1e3"); None if it fails."""
    if not text or text.strip("0123456789.eE+-") or not any(c.isdigit() for c in text):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _is_decimal(text: str) -> bool:
    """Digits with at most one dot and at least one digit: what ParseFloat takes here."""
    whole, _, frac = text.partition(".")
    return (whole + frac).isdigit() and (whole + frac).isascii()


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 weeks"..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(timestamp: Any, now: float | None = None) -> str:
    """"3 minutes ago", as docker's CREATED column says it.

    ``timestamp`` is unix seconds, an aware ``datetime``, or an RFC 3339 string.
    """
    if now is None:
        now = time.time()
    return human_duration(now - _unix_seconds(timestamp)) + " ago"


def _unix_seconds(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_timestamp(value) if value else 0.0
    return float(value.timestamp())


# Go's time.ParseDuration units, in nanoseconds.
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("10s", "1h30m", "500ms", "2.5s", "-1m"), in seconds."""
    return _parse_duration_ns(text) / 1e9


def _parse_duration_ns(text: str) -> int:
    s = text
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise InvalidArgument(f'invalid duration "{text}"')
    total = 0
    while s:
        i = 0
        while i < len(s) and s[i] in "0123456789.":
            i += 1
        number, s = s[:i], s[i:]
        if not _is_decimal(number):
            raise InvalidArgument(f'invalid duration "{text}"')
        j = 0
        while j < len(s) and s[j] not in "0123456789.":
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise InvalidArgument(f'missing unit in duration "{text}"')
        if unit not in _DURATION_UNITS:
            raise InvalidArgument(f'unknown unit "{unit}" in duration "{text}"')
        whole, _, frac = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale + int(frac or "0") * scale // 10 ** len(frac)
    return -total if neg else total


def parse_timestamp(value: str, now: float | None = None) -> float:
    """A ``--since``/``--until`` value as unix seconds, as docker's GetTimestamp reads it.

    Accepts Go durations relative to ``now`` ("10m" is ten minutes ago), RFC 3339
    dates and times with or without a zone (no zone means local time), and unix
    seconds with an optional fraction ("1700000000.5").
    """
    if now is None:
        now = time.time()
    if value != "0":
        try:
            return float(math.floor(now - parse_duration(value)))
        except InvalidArgument:
            pass
    if "-" in value:
        return _parse_rfc3339ish(value, now)
    whole, dot, frac = value.partition(".")
    if not _is_int(whole) or (dot and not _is_int(frac)):
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    return float(value)


def _is_int(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit() and digits.isascii()


def _parse_rfc3339ish(value: str, now: float) -> float:
    """2006-01-02, 2006-01-02T15, 2006-01-02T15:04, 2006-01-02T15:04:05[.999999999], each
    with an optional Z or ±07:00 zone."""
    import re
    from datetime import UTC, datetime, timedelta, timezone

    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})"
        r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
        r"(Z|[+-]\d{2}:\d{2})?",
        value,
    )
    if m is None:
        raise InvalidArgument(f'invalid timestamp "{value}": '
                              "want RFC 3339, like 2006-01-02T15:04:05Z")
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    if zone is None:
        tz = datetime.fromtimestamp(now).astimezone().tzinfo
    elif zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                        int(sec or 0), tzinfo=tz)
    except ValueError as e:
        raise InvalidArgument(f'invalid timestamp "{value}": {e}') from None
    return when.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)


def parse_cpus(value: str) -> int:
    """``--cpus`` as nano-CPUs: "0.5" is 500000000, like docker's NanoCPUs flag."""
    from fractions import Fraction

    try:
        cpus = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(f'invalid --cpus "{value}": not a rational number') from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidArgument(f'invalid --cpus "{value}": value is too precise')
    return int(nano)
