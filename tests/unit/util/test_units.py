"""kade.util.units against docker/go-units' own expectations and docker's outputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kade.errors import InvalidArgument
from kade.util.units import (
    bytes_size,
    from_human_size,
    human_duration,
    human_size,
    parse_cpus,
    parse_duration,
    parse_timestamp,
    ram_in_bytes,
    since,
)

KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5
KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (946, "946B"),
        (999, "999B"),
        (1000, "1kB"),
        (1024, "1.02kB"),
        (2048, "2.05kB"),
        (4_270_000, "4.27MB"),  # `docker images` SIZE of busybox
        (4_261_550, "4.26MB"),
        (1_240_000_000, "1.24GB"),
        (72_800_000, "72.8MB"),
        (187_000_000, "187MB"),
        (999_999, "1e+03kB"),  # docker's own rounding quirk, kept
        (3.42 * GB, "3.42GB"),
        (2.22 * PB, "2.22PB"),
    ],
)
def test_human_size(size: float, expected: str) -> None:
    assert human_size(size) == expected


def test_human_size_precision_4_is_go_units_human_size() -> None:
    assert human_size(1024, 4) == "1.024kB"
    assert human_size(1_048_576, 4) == "1.049MB"
    assert human_size(5.372 * TB, 4) == "5.372TB"
    assert human_size(10_000_000_000_000 * PB, 4) == "1e+04YB"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (1024 * 1024, "1MiB"),
        (1.5 * MiB, "1.5MiB"),
        (2 * MiB, "2MiB"),
        (3.42 * GiB, "3.42GiB"),
        (5.372 * TiB, "5.372TiB"),
        (2.22 * PiB, "2.22PiB"),
        (KiB**5 * PiB, "1.049e+06YiB"),
    ],
)
def test_bytes_size(size: float, expected: str) -> None:
    assert bytes_size(size) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32", 32),
        ("32b", 32),
        ("32B", 32),
        ("32k", 32 * KiB),
        ("32K", 32 * KiB),
        ("32kb", 32 * KiB),
        ("32Kb", 32 * KiB),
        ("32Kib", 32 * KiB),
        ("32KIB", 32 * KiB),
        ("32Mb", 32 * MiB),
        ("32Gb", 32 * GiB),
        ("32Tb", 32 * TiB),
        ("32Pb", 32 * PiB),
        ("32PB", 32 * PiB),
        ("32P", 32 * PiB),
        ("32.3", 32),
        ("32.3 mb", int(32.3 * MiB)),
        ("0.3MB", int(0.3 * MiB)),
        ("512m", 512 * MiB),
        ("1g", GiB),
        ("1.5GB", int(1.5 * GiB)),
        ("100", 100),
        ("1e3", 1000),  # the number is Go's ParseFloat, exponent and all
        ("1.5e1k", 15 * KiB),
        (".5k", 512),
    ],
)
def test_ram_in_bytes(text: str, expected: int) -> None:
    assert ram_in_bytes(text) == expected


@pytest.mark.parametrize(
    "text", ["", "hello", "-32", " 32 ", "32m b", "32bm", "12q", "1.2.3m", "32kbb", "m", "1_0", "1e"]
)
def test_ram_in_bytes_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match=f'^invalid size: "{text}"$'):
        ram_in_bytes(text)


def test_from_human_size_is_decimal() -> None:
    assert from_human_size("32kB") == 32 * KB
    assert from_human_size("32.5 kB") == 32_500
    assert from_human_size("0.3 K") == 300
    assert from_human_size("32Mb") == 32 * MB
    assert from_human_size("32.5 B") == 32


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.45, "Less than a second"),
        (0, "Less than a second"),
        (-5, "Less than a second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (3 * MINUTE, "3 minutes"),
        (35 * MINUTE + 40, "35 minutes"),
        (59 * MINUTE, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MINUTE, "About an hour"),
        (HOUR + 31 * MINUTE, "2 hours"),
        (3 * HOUR + 29 * MINUTE, "3 hours"),
        (3 * HOUR + 31 * MINUTE, "4 hours"),
        (24 * HOUR, "24 hours"),
        (DAY + 12 * HOUR, "36 hours"),
        (2 * DAY, "2 days"),
        (7 * DAY, "7 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (2 * WEEK, "2 weeks"),
        (3 * WEEK, "3 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (4 * MONTH, "4 months"),
        (5 * MONTH + 2 * WEEK, "5 months"),
        (13 * MONTH, "13 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_since() -> None:
    assert since(1000.0, now=1000.0 + 3 * MINUTE) == "3 minutes ago"
    created = datetime(2024, 1, 1, tzinfo=UTC)
    assert since(created, now=created.timestamp() + 2 * HOUR) == "2 hours ago"
    assert since("2024-01-01T00:00:00Z", now=created.timestamp() + 3 * WEEK) == "3 weeks ago"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2.5s", 2.5),
        ("1.5h", 5400.0),
        ("-1m", -60.0),
        ("+5s", 5.0),
        ("0", 0.0),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("1µs", 1e-6),
        ("1\u03bcs", 1e-6),
        (".5s", 0.5),
        ("1.s", 1.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'invalid duration ""'),
        ("10", 'missing unit in duration "10"'),
        ("10q", 'unknown unit "q" in duration "10q"'),
        ("s", 'invalid duration "s"'),
        (".s", 'invalid duration ".s"'),
        ("1..2s", 'invalid duration "1..2s"'),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_duration(text)


NOW = 1_700_000_000.7


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", 1_699_999_400.0),  # now - 10m, whole seconds like docker
        ("1h30m", 1_699_994_600.0),
        ("2013-01-02T13:23:37Z", 1_357_133_017.0),
        ("2013-01-02T13:23:37.5Z", 1_357_133_017.5),
        ("2013-01-02T13:23:37+01:00", 1_357_129_417.0),
        ("2013-01-02T13:23:37.000000001-01:00", 1_357_136_617.000000001),
        ("2013-01-02T13Z", 1_357_131_600.0),
        ("2013-01-02T13:23Z", 1_357_133_000.0),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("0", 0.0),
    ],
)
def test_parse_timestamp(value: str, expected: float) -> None:
    assert parse_timestamp(value, NOW) == pytest.approx(expected)


def test_parse_timestamp_without_zone_is_local_time() -> None:
    local = datetime(2013, 1, 2, 13, 23, 37).astimezone()
    assert parse_timestamp("2013-01-02T13:23:37", NOW) == local.timestamp()
    day = datetime(2013, 1, 2).astimezone()
    assert parse_timestamp("2013-01-02", NOW) == day.timestamp()


@pytest.mark.parametrize("value", ["yesterday", "12ab", "1.2.3"])
def test_parse_timestamp_rejects_garbage(value: str) -> None:
    with pytest.raises(InvalidArgument, match=f'failed to parse value as time or duration: "{value}"'):
        parse_timestamp(value, NOW)


@pytest.mark.parametrize("value", ["2013-13-02", "2013-01-02T25:00:00Z", "2013-1-2"])
def test_parse_timestamp_rejects_bad_dates(value: str) -> None:
    with pytest.raises(InvalidArgument, match=f'invalid timestamp "{value}"'):
        parse_timestamp(value, NOW)


@pytest.mark.parametrize(
    ("value", "nano"),
    [("0.5", 500_000_000), ("1.5", 1_500_000_000), ("2", 2_000_000_000),
     ("0.000000001", 1), ("1/4", 250_000_000)],
)
def test_parse_cpus(value: str, nano: int) -> None:
    assert parse_cpus(value) == nano


def test_parse_cpus_rejects() -> None:
    with pytest.raises(InvalidArgument, match="not a rational number"):
        parse_cpus("lots")
    with pytest.raises(InvalidArgument, match="value is too precise"):
        parse_cpus("0.0000000001")
