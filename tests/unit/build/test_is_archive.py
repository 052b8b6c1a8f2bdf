"""context.is_archive: what ADD extracts and what `kade build -` takes for a tar."""

import gzip
import io
import tarfile

import pytest

from kade.build.context import is_archive


def _tar(gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("data, expected", [
    (_tar(), True),
    (_tar(gz=True), True),
    (b"FROM busybox\nRUN true\n", False),  # a Dockerfile on stdin
    (b"plain\n", False),
    (b"", False),
    (gzip.compress(b"not a tar at all\n" * 100), False),
    (b"\x1f\x8b\x08garbage", False),  # a gzip header and nothing valid after it
])
def test_is_archive(data, expected):
    assert is_archive(io.BytesIO(data)) is expected
