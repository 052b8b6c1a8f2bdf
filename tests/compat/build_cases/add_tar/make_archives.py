"""Writes the archives this case ADDs (run once; the outputs are committed).

Fixed owners, modes and mtimes, a symlink and a hard link, so that extraction
semantics (owners kept, links kept, merge into existing directories) show."""

import bz2
import gzip
import io
import lzma
import os
import tarfile

MTIME = 1_700_000_000


def entry(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0,
          link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, MTIME
    info.linkname = link
    return info


def archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(entry("./d", tarfile.DIRTYPE, 0o750, 7, 8))
        for name, body, mode, uid in (("./d/x", b"x in d\n", 0o644, 7),
                                      ("./file", b"file\n", 0o600, 1000),
                                      ("./d/setuid", b"#!/bin/sh\n", 0o4755, 0)):
            info = entry(name, tarfile.REGTYPE, mode, uid, uid)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        tar.addfile(entry("./sl", tarfile.SYMTYPE, 0o777, link="d/x"))
        tar.addfile(entry("./hl", tarfile.LNKTYPE, 0o600, 1000, 1000, link="./file"))
        tar.addfile(entry("./merge-dir-less", tarfile.REGTYPE, 0o644))
    return buf.getvalue()


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    raw = archive()
    outputs = {"app.tar": raw, "app.tar.gz": gzip.compress(raw, mtime=MTIME),
               "app.tar.bz2": bz2.compress(raw), "app.tar.xz": lzma.compress(raw),
               "archive.bin": gzip.compress(raw, mtime=MTIME)}
    for name, data in outputs.items():
        with open(os.path.join(here, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
