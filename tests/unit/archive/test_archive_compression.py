from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from archive_helpers import file, make_tar

from kade.archive import apply_layer, compressor, detect, open_decompressed
from kade.errors import InvalidArgument

DATA = os.urandom(100_000) + b"abc" * 500_000


def test_detect() -> None:
    assert detect(gzip.compress(b"x")[:4]) == "gzip"
    assert detect(zstandard.ZstdCompressor().compress(b"x")[:4]) == "zstd"
    assert detect(b"etc/") == "none"
    assert detect(b"") == "none"


def _read_all(blob: bytes, **kw: object) -> bytes:
    with open_decompressed(io.BytesIO(blob), **kw) as s:  # type: ignore[arg-type]
        return s.read()


@pytest.mark.parametrize("threads", [True, False])
def test_gzip_streams(threads: bool) -> None:
    assert _read_all(gzip.compress(DATA), threads=threads) == DATA
    two_members = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])
    assert _read_all(two_members, threads=threads) == DATA


def test_zstd_streams_across_frames() -> None:
    c = zstandard.ZstdCompressor()
    assert _read_all(c.compress(DATA[:5000]) + c.compress(DATA[5000:])) == DATA


def test_uncompressed_passes_through() -> None:
    assert _read_all(DATA) == DATA
    assert _read_all(b"ab") == b"ab"


def test_closing_the_reader_leaves_the_source_open() -> None:
    src = io.BytesIO(gzip.compress(b"x"))
    with open_decompressed(src) as s:
        s.read()
    assert not src.closed


@pytest.mark.parametrize("blob", [
    gzip.compress(DATA)[:-2000],  # truncated
    gzip.compress(DATA)[:20] + b"\xff" * 100 + gzip.compress(DATA)[120:],  # corrupt
    zstandard.ZstdCompressor().compress(DATA)[:-100],
], ids=["gzip-truncated", "gzip-corrupt", "zstd-truncated"])
@pytest.mark.parametrize("threads", [True, False])
def test_broken_streams_raise_invalid_argument(blob: bytes, threads: bool) -> None:
    with pytest.raises(InvalidArgument, match="stream is corrupt"):
        _read_all(blob, threads=threads)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_compressor_round_trip(kind: str) -> None:
    out = io.BytesIO()
    with compressor(out, kind) as w:
        w.write(DATA)
    assert not out.closed
    assert detect(out.getvalue()[:4]) == kind
    assert _read_all(out.getvalue()) == DATA


def test_gzip_output_is_reproducible_and_standard() -> None:
    blobs = []
    for _ in range(2):
        out = io.BytesIO()
        with compressor(out, "gzip") as w:
            w.write(DATA)
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    assert gzip.decompress(blobs[0]) == DATA


def test_compressor_rejects_unknown_kinds_and_levels() -> None:
    with pytest.raises(InvalidArgument):
        compressor(io.BytesIO(), "bzip2")
    with pytest.raises(InvalidArgument):
        compressor(io.BytesIO(), "gzip", level=9)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_apply_compressed_layers(kind: str, root: Path) -> None:
    tar = make_tar([file("a/b", b"hello" * 1000)])
    blob = io.BytesIO()
    with compressor(blob, kind) as w:
        w.write(tar)
    with open_decompressed(io.BytesIO(blob.getvalue())) as s:
        result = apply_layer(s, str(root))
    assert (root / "a/b").read_bytes() == b"hello" * 1000
    assert result.tar_size == len(tar)


def test_importing_archive_does_not_import_compression_libraries() -> None:
    code = ("import sys, kade.archive; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('isal', 'zstandard', 'tarfile')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_zstd_with_a_leading_skippable_frame() -> None:
    skippable = (0x184D2A5A).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    blob = skippable + zstandard.ZstdCompressor().compress(DATA)
    assert detect(blob[:4]) == "zstd"
    assert _read_all(blob) == DATA
