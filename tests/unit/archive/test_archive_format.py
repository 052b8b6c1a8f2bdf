from __future__ import annotations

import io
import tarfile

import pytest

from kade.archive import _format as fmt


@pytest.mark.parametrize("field, value", [
    (b"0000644\x00", 0o644),
    (b"   644 \x00", 0o644),
    (b"\x00\x00\x00\x00\x00\x00\x00\x00", 0),
    (b"0000644\x00junk", 0o644),
    (b"\x80\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00", 1 << 16),
    (b"\xff" * 12, -1),
])
def test_parse_number(field: bytes, value: int) -> None:
    assert fmt.parse_number(field) == value


def test_parse_number_rejects_junk() -> None:
    with pytest.raises(fmt.FormatError):
        fmt.parse_number(b"12x4\x00")


def test_pax_records_round_trip() -> None:
    for size in range(0, 1200, 7):  # lengths around the digit boundaries
        rec = fmt.pax_record(b"path", b"p" * size)
        assert int(rec.split(b" ")[0]) == len(rec)
        assert fmt.parse_pax(rec) == {"path": b"p" * size}


@pytest.mark.parametrize("data", [b"5 a=b", b"99 path=x\n", b"x path=x\n", b"9 pathx\n"])
def test_parse_pax_rejects_bad_records(data: bytes) -> None:
    with pytest.raises(fmt.FormatError):
        fmt.parse_pax(data)


@pytest.mark.parametrize("text, ns", [
    (b"1600000000", 1_600_000_000 * 10**9),
    (b"1600000000.5", 1_600_000_000 * 10**9 + 500_000_000),
    (b"-1.25", -1_250_000_000),
])
def test_parse_pax_time(text: bytes, ns: int) -> None:
    assert fmt.parse_pax_time(text) == ns


def test_headers_we_write_are_read_back_by_tarfile() -> None:
    data = (fmt.header("n" * 150, b"0", 0o4755, 3_000_000, 7, 1_600_000_000, size=3,
                       xattrs={"user.a": b"\x00\xff"})
            + b"abc" + fmt.padding(3)
            + fmt.header("l", b"2", 0o777, 0, 0, 0, linkname="t" * 200)
            + fmt.END_OF_ARCHIVE)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        a, b = tf.getmembers()
        assert (a.name, a.mode, a.uid, a.gid, a.size) == ("n" * 150, 0o4755, 3_000_000, 7, 3)
        assert tf.extractfile(a).read() == b"abc"  # type: ignore[union-attr]
        assert b.linkname == "t" * 200
    # and by our own parser, xattr bytes intact
    e = fmt.parse_header(data[1024:1536])
    assert e.size == 3 and e.mode == 0o4755
