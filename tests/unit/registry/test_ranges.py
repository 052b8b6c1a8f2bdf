"""Range (blob GET) and Content-Range (upload chunk) parsing."""

import pytest

from kade.registry.ranges import Unsatisfiable, parse_chunk_range, parse_range


@pytest.mark.parametrize("header,size,expected", [
    (None, 10, None),
    ("", 10, None),
    ("bytes=0-4", 10, (0, 4)),
    ("bytes=5-", 10, (5, 9)),
    ("bytes=5-100", 10, (5, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-30", 10, (0, 9)),
    ("bytes=9-9", 10, (9, 9)),
    ("BYTES=1-2", 10, (1, 2)),
    ("bytes=0-1,3-4", 10, None),   # several ranges: the whole blob
    ("items=0-1", 10, None),
    ("bytes=a-b", 10, None),
    ("bytes=-", 10, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header,size", [("bytes=10-", 10), ("bytes=10-20", 10),
                                         ("bytes=-0", 10), ("bytes=0-", 0),
                                         ("bytes=4-2", 10), ("bytes=500-0", 2048)])
def test_unsatisfiable(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize("header,expected", [
    ("0-99", (0, 99)), ("100-199", (100, 199)), ("bytes=0-9", (0, 9)),
    ("bytes 0-9/100", (0, 9)), ("bytes 0-9/*", (0, 9)), (" 5-5 ", (5, 5)),
    ("9-0", None), ("0-", None), ("-5", None), ("a-b", None), ("", None),
])
def test_parse_chunk_range(header, expected):
    assert parse_chunk_range(header) == expected
