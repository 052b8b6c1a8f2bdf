"""Layer extraction: kade.archive.apply_layer vs tarfile.extractall vs tar -xzf.

Builds a ~50 MB gzipped layer (a few big files, thousands of small ones,
directories, symlinks, hardlinks) with tarfile, then extracts it with each tool
into a fresh directory on the same filesystem, best of --runs.

    python bench/archive_extract.py [--workdir DIR] [--runs N] [--zstd]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable

from kade.archive import apply_layer, compressor, open_decompressed


def _member(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
    tf.addfile(info, io.BytesIO(data))


def _special(tf: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, link, 1_700_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o777
    tf.addfile(info)


def build_layer(path: str, kind: str) -> tuple[int, int]:
    """Write the layer tar (compressed) to path; return (tar bytes, members)."""
    rng = random.Random(42)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_", k=rng.randint(3, 10)))
             for _ in range(2000)]
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in range(60):
            _special(tf, f"usr/lib/pkg{d:02d}", tarfile.DIRTYPE)
            count += 1
            for i in range(60):
                size = int(rng.paretovariate(1.2) * 800) % 64_000
                text = b" ".join(rng.choices(words, k=size // 6 + 1))[:size]
                _member(tf, f"usr/lib/pkg{d:02d}/file{i:03d}.py", text)
                count += 1
            _special(tf, f"usr/lib/pkg{d:02d}/link", tarfile.SYMTYPE, "file000.py")
            _special(tf, f"usr/lib/pkg{d:02d}/hard", tarfile.LNKTYPE,
                     f"usr/lib/pkg{d:02d}/file001.py")
            count += 2
        _special(tf, "usr/bin", tarfile.DIRTYPE)
        for i in range(4):  # big binaries: half random, half repetitive
            blob = rng.randbytes(4 << 20) + bytes(range(256)) * (16 << 10)
            _member(tf, f"usr/bin/big{i}", blob, 0o755)
            count += 1
    data = raw.getvalue()
    if kind == "gzip":  # what docker pushes: zlib's default level
        with open(path, "wb") as f:
            f.write(gzip.compress(data, 6, mtime=0))
    else:
        with open(path, "wb") as f, compressor(f, kind) as c:
            c.write(data)
    return len(data), count


def _fresh(workdir: str, name: str) -> str:
    d = os.path.join(workdir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.mkdir(d)
    return d


def run_kade(layer: str, dest: str) -> None:
    with open(layer, "rb") as f, open_decompressed(f) as s:
        apply_layer(s, dest)


def run_tarfile(layer: str, dest: str) -> None:
    if layer.endswith(".gz"):
        with tarfile.open(layer, "r:gz") as tf:
            tf.extractall(dest, filter="fully_trusted")
        return
    import zstandard  # tarfile has no zstd before Python 3.14

    with (open(layer, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as s,
          tarfile.open(fileobj=s, mode="r|") as tf):
        tf.extractall(dest, filter="fully_trusted")


def run_gnu_tar(layer: str, dest: str) -> None:
    flag = "-xzf" if layer.endswith(".gz") else "--zstd -xf"
    subprocess.run(f"tar {flag} {layer} -C {dest}", shell=True, check=True)


def best_of(runs: int, workdir: str, fn: Callable[[str, str], None], layer: str) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        dest = _fresh(workdir, "out")
        subprocess.run(["sync"], check=False)
        t = time.perf_counter()
        fn(layer, dest)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--zstd", action="store_true")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="kade-bench-")
    kind = "zstd" if args.zstd else "gzip"
    layer = os.path.join(workdir, "layer.tar." + ("zst" if args.zstd else "gz"))
    size, members = build_layer(layer, kind)
    print(f"layer: {size / 1e6:.1f} MB tar, {os.path.getsize(layer) / 1e6:.1f} MB {kind}, "
          f"{members} members")
    tools = [("kade apply_layer", run_kade), ("tarfile.extractall", run_tarfile)]
    tools.append(("tar -x" + ("zf" if kind == "gzip" else " --zstd"), run_gnu_tar))
    results = {name: best_of(args.runs, workdir, fn, layer) for name, fn in tools}
    base = results["kade apply_layer"]
    for name, secs in results.items():
        print(f"{name:20s} {secs:6.3f} s  ({secs / base:4.1f}x kade)")
    if not args.workdir:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
