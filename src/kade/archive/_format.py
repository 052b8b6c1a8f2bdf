"""The tar format: header blocks, numbers, pax records, entry types.

A tar is a sequence of 512-byte blocks. Each member is one header block
followed by its data padded to a whole block; two zero blocks end the archive.
Names longer than the header holds come from a preceding pax header ('x') or
GNU long-name/long-link member ('L'/'K'), which apply to the next header only.
"""

from __future__ import annotations

import struct
from zlib import adler32

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
END_OF_ARCHIVE = bytes(2 * BLOCK)

# Type flags, as the byte values found at offset 156.
REG = 0x30  # '0'
AREG = 0x00  # old V7 regular file
LNK = 0x31  # '1' hardlink
SYM = 0x32  # '2'
CHR = 0x33  # '3'
BLK = 0x34  # '4'
DIR = 0x35  # '5'
FIFO = 0x36  # '6'
CONT = 0x37  # '7' contiguous file, a regular file everywhere that matters
PAX = 0x78  # 'x'
GLOBAL_PAX = 0x67  # 'g'
GNU_LONGNAME = 0x4C  # 'L'
GNU_LONGLINK = 0x4B  # 'K'
GNU_SPARSE = 0x53  # 'S'

# Types whose header is never followed by data, whatever the size field says.
HEADER_ONLY = frozenset({LNK, SYM, CHR, BLK, DIR, FIFO})
META_TYPES = frozenset({PAX, GLOBAL_PAX, GNU_LONGNAME, GNU_LONGLINK})

_POSIX_MAGIC = b"ustar\x00"
_CHKSUM_SPACES = 8 * 0x20
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_FIELDS = struct.Struct("100s8s8s8s12s12s8sB100s6s2s32s32s8s8s155s12x")
_PAX_NAME = b"././@PaxHeader"
XATTR_PREFIX = "SCHILY.xattr."
MAX_META_SIZE = 16 << 20


class FormatError(Exception):
    """The bytes are not a tar this reader accepts."""


class Entry:
    """One member of a tar, after its pax/GNU headers were folded in."""

    __slots__ = (
        "atime_ns",
        "devmajor",
        "devminor",
        "gid",
        "kind",
        "linkname",
        "mode",
        "mtime_ns",
        "name",
        "size",
        "uid",
        "xattrs",
    )

    def __init__(self, name: str, kind: int, mode: int, uid: int, gid: int, size: int,
                 mtime_ns: int, linkname: str, devmajor: int, devminor: int) -> None:
        self.name = name
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime_ns = mtime_ns
        self.atime_ns = mtime_ns
        self.linkname = linkname
        self.devmajor = devmajor
        self.devminor = devminor
        self.xattrs: dict[str, bytes] | None = None

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, kind={chr(self.kind)!r}, size={self.size})"


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def encode(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def parse_number(field: bytes) -> int:
    """Octal, or GNU base-256 when the top bit of the first byte is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:  # negative base-256
            return value - (1 << (8 * (len(field) - 1)))
        return value | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
    digits = field.partition(b"\x00")[0].strip()
    if not digits:
        return 0
    try:
        return int(digits, 8)
    except ValueError:
        raise FormatError(f"bad number field {bytes(field)!r}") from None


def _num(field: bytes) -> int:
    try:  # the common shape: zero-padded octal digits and one NUL
        return int(field[:-1], 8)
    except ValueError:  # spaces, empty fields, base-256, junk after the NUL
        return parse_number(field)


def parse_header(h: bytes) -> Entry:
    """Parse one non-zero header block into an Entry (pax/GNU not yet applied).

    The checksum is compared modulo 65521 first: the low half of adler32 is
    1 + the byte sum modulo 65521, a sum at C speed. A mismatch there gets the
    exact check."""
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, magic, _version, _uname,
     _gname, major, minor, prefix) = _FIELDS.unpack(h)
    if (_checksum(chksum) - _CHKSUM_SPACES + sum(chksum)) % 65521 != (adler32(h) - 1) & 0xFFFF:
        _check_sums(h)
    name = name.partition(b"\x00")[0]
    if magic == _POSIX_MAGIC and prefix[0]:
        name = prefix.partition(b"\x00")[0] + b"/" + name
    e = Entry(decode(name), kind, _num(mode), _num(uid), _num(gid), _num(size),
              _num(mtime) * 1_000_000_000, decode(linkname.partition(b"\x00")[0]), 0, 0)
    if kind == CHR or kind == BLK:
        e.devmajor, e.devminor = _num(major), _num(minor)
    if e.size < 0 or e.uid < 0 or e.gid < 0:
        raise FormatError("negative size or id")
    return e


def _checksum(field: bytes) -> int:
    if field[6] in (0, 0x20):  # the usual "%06o\0 "
        try:
            return int(field[:6], 8)
        except ValueError:
            pass
    return parse_number(field)


def _check_sums(h: bytes) -> None:
    """The exact check, unsigned then signed (some old tars summed signed chars)."""
    stored = parse_number(h[148:156])
    if stored == sum(h) - sum(h[148:156]) + _CHKSUM_SPACES:
        return
    signed = sum(b - 256 if b > 127 else b for b in h)
    signed -= sum(b - 256 if b > 127 else b for b in h[148:156])
    if stored != signed + _CHKSUM_SPACES:
        raise FormatError("bad header checksum")


def parse_pax(data: bytes) -> dict[str, bytes]:
    """Parse pax records: '<len> <key>=<value>\\n', len counting the whole record."""
    records: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end and data[pos] != 0:
        space = data.find(b" ", pos, pos + 20)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FormatError("bad pax record length") from None
        stop = pos + length
        if space < 0 or length <= 0 or stop > end or data[stop - 1] != 0x0A:
            raise FormatError("bad pax record")
        key, eq, value = data[space + 1:stop - 1].partition(b"=")
        if not eq:
            raise FormatError("pax record without '='")
        records[decode(key)] = value
        pos = stop
    return records


def apply_pax(e: Entry, pax: dict[str, bytes]) -> None:
    for key, value in pax.items():
        if key == "path":
            e.name = decode(value)
        elif key == "linkpath":
            e.linkname = decode(value)
        elif key in ("size", "uid", "gid"):
            setattr(e, key, _pax_int(key, value))
        elif key == "mtime":
            e.mtime_ns = e.atime_ns = parse_pax_time(value)
        elif key.startswith(XATTR_PREFIX):
            if e.xattrs is None:
                e.xattrs = {}
            e.xattrs[key[len(XATTR_PREFIX):]] = value
        elif key.startswith("GNU.sparse."):
            raise FormatError("sparse files are not supported")
    if "atime" in pax:
        e.atime_ns = max(parse_pax_time(pax["atime"]), e.mtime_ns)


def _pax_int(key: str, value: bytes) -> int:
    try:
        n = int(value)
    except ValueError:
        raise FormatError(f"bad pax {key} {value!r}") from None
    if n < 0:
        raise FormatError(f"negative pax {key}")
    return n


def parse_pax_time(value: bytes) -> int:
    """Decimal seconds with an optional fraction, exactly, in nanoseconds."""
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    sec, _, frac = text.lstrip("+-").partition(".")
    try:
        ns = int(sec or "0") * 1_000_000_000 + int((frac + "000000000")[:9])
    except ValueError:
        raise FormatError(f"bad pax time {value!r}") from None
    return sign * ns


# Writing.

def pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    n = len(body) + len(str(n))  # the length counts its own digits
    return b"%d" % n + body


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, kind: bytes,
           linkname: bytes, devmajor: int, devminor: int) -> bytes:
    h = _USTAR.pack(
        name, b"%07o\x00" % mode, b"%07o\x00" % uid, b"%07o\x00" % gid,
        b"%011o\x00" % size, b"%011o\x00" % mtime, b"        ", kind, linkname,
        _POSIX_MAGIC, b"00", b"", b"", b"%07o\x00" % devmajor, b"%07o\x00" % devminor, b"",
    )
    return h[:148] + b"%06o\x00 " % sum(h) + h[156:]


def padding(size: int) -> bytes:
    return ZERO_BLOCK[: -size % BLOCK]


def header(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int, *,
           size: int = 0, linkname: str = "", devmajor: int = 0, devminor: int = 0,
           xattrs: dict[str, bytes] | None = None) -> bytes:
    """The header block(s) of one member: a pax header first when the ustar fields
    cannot hold a value (long or non-ASCII names, big ids or sizes, xattrs)."""
    bname, blink = encode(name), encode(linkname)
    records = []
    if len(bname) > 100 or not bname.isascii():
        records.append(pax_record(b"path", bname))
    if len(blink) > 100 or not blink.isascii():
        records.append(pax_record(b"linkpath", blink))
    for key, value, limit in ((b"uid", uid, 0o7777777), (b"gid", gid, 0o7777777),
                              (b"size", size, 0o77777777777), (b"mtime", mtime, 0o77777777777)):
        if not 0 <= value <= limit:
            records.append(pax_record(key, b"%d" % value))
    if xattrs:
        for xkey in sorted(xattrs):
            records.append(pax_record(encode(XATTR_PREFIX + xkey), xattrs[xkey]))
    h = _ustar(bname[:100], mode & 0o7777, min(uid, 0o7777777), min(gid, 0o7777777),
               size if size <= 0o77777777777 else 0, min(max(mtime, 0), 0o77777777777),
               kind, blink[:100], devmajor, devminor)
    if not records:
        return h
    data = b"".join(records)
    pax = _ustar(_PAX_NAME, 0o644, 0, 0, len(data), 0, b"x", b"", 0, 0)
    return pax + data + padding(len(data)) + h
