"""The content store (see the package docstring for the layout)."""

from __future__ import annotations

import os

from kade.errors import FailedPrecondition, NotFound
from kade.oci import digest as dg

TYPE_CHECKING = False  # not `from typing`: importing typing costs ~3 ms on `kade ps`
if TYPE_CHECKING:
    from typing import BinaryIO, Iterator


class Writer:
    """Streams bytes into ingest/, then `commit` verifies and publishes them."""

    def __init__(self, store: "ContentStore", algorithm: str = "sha256"):
        self._store = store
        self._hash = dg.hasher(algorithm)
        self._algorithm = algorithm
        self.path = os.path.join(store.root, "ingest", os.urandom(8).hex())
        self._f = open(self.path, "wb")
        self.size = 0

    def write(self, data) -> int:
        self._hash.update(data)
        n = self._f.write(data)
        self.size += n
        return n

    @property
    def digest(self) -> str:
        return f"{self._algorithm}:{self._hash.hexdigest()}"

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        got = self.digest
        if expected is not None and expected != got:
            self.abort()
            raise FailedPrecondition(f'content digest mismatch: expected "{expected}", got "{got}"')
        if size is not None and size != self.size:
            self.abort()
            raise FailedPrecondition(f'content size mismatch for "{got}": '
                                     f"expected {size}, got {self.size}")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        final = self._store.path(got)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(self.path, 0o444)
        os.rename(self.path, final)
        return got

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None or not self._f.closed:
            self.abort()


class ContentStore:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        os.makedirs(os.path.join(root, "ingest"), exist_ok=True)

    def path(self, digest: str) -> str:
        algo, _, hexpart = dg.validate(digest).partition(":")
        return os.path.join(self.root, "blobs", algo, hexpart)

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f'content "{digest}" not found') from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f'content "{digest}" not found') from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, algorithm: str = "sha256") -> Writer:
        return Writer(self, algorithm)

    def put(self, data: bytes, expected: str | None = None) -> str:
        d = expected or dg.of_bytes(data)
        if self.exists(d):
            return d
        with self.writer(d.partition(":")[0] if expected else "sha256") as w:
            w.write(data)
            return w.commit(expected)

    def ingest(self, stream: BinaryIO, expected: str | None = None,
               size: int | None = None) -> str:
        if expected and self.exists(expected):
            return expected
        with self.writer(expected.partition(":")[0] if expected else "sha256") as w:
            while chunk := stream.read(1 << 20):
                w.write(chunk)
            return w.commit(expected, size)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def walk(self) -> Iterator[str]:
        base = os.path.join(self.root, "blobs")
        for algo in os.listdir(base):
            for name in os.listdir(os.path.join(base, algo)):
                yield f"{algo}:{name}"

    def verify(self, digest: str) -> bool:
        h = dg.hasher(digest.partition(":")[0])
        with self.open(digest) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return f"{digest.partition(':')[0]}:{h.hexdigest()}" == digest

    def prune_ingests(self) -> int:
        base = os.path.join(self.root, "ingest")
        names = os.listdir(base)
        for name in names:
            os.unlink(os.path.join(base, name))
        return len(names)

