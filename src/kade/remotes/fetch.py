"""Downloading a blob into the content store: verified, resumable.

The bytes stream into a content-store writer (ingest/), which commits only
when the digest and size match, so a blob is never visible half-written or
wrong. A transfer that breaks is resumed with a Range request from where it
stopped, a few times. When it still fails (or is interrupted), what arrived
is kept as

    content/ingest/resume-<algorithm>-<hex>

and the next fetch of that digest replays it into its writer and asks only
for the rest. These files are ordinary stray ingests: `prune_ingests` may
remove them at any time, which only costs a full download.
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable

from kade.content import ContentStore, Writer
from kade.errors import FailedPrecondition, Unavailable
from kade.oci.descriptor import Descriptor
from kade.remotes.client import Repository
from kade.remotes.transport import TransportError

RESUMES = 3  # Range requests after a broken transfer, per fetch
CHUNK = 1 << 20


class Truncated(Unavailable):
    pass


def fetch_blob(repo: Repository, desc: Descriptor, content: ContentStore, *,
               progress: Callable[[int], None] | None = None,
               on_ingest: Callable[[str], None] | None = None) -> str:
    """Make sure content has desc's blob; returns its digest. on_ingest is told
    the ingest file the bytes go to (it may be read while it grows, to unpack
    while downloading); progress, the bytes written so far. When the blob is
    already present nothing is fetched and neither is called."""
    if content.exists(desc.digest):
        return desc.digest
    try:
        return _fetch(repo, desc, content, progress, on_ingest, resume=True)
    except _StalePartial:  # what a broken earlier transfer kept was wrong: start over
        return _fetch(repo, desc, content, progress, on_ingest, resume=False)


class _StalePartial(Exception):
    pass


def _fetch(repo, desc, content, progress, on_ingest, resume: bool) -> str:
    writer = content.writer(desc.digest.partition(":")[0])
    try:
        if on_ingest:
            on_ingest(writer.path)
        path = resume_path(content, desc.digest)
        replayed = _replay_partial(writer, path, desc.size) if resume else 0
        _download(repo, desc, writer, progress)
        try:
            return writer.commit(desc.digest, desc.size)
        except FailedPrecondition:
            if replayed:
                raise _StalePartial() from None
            raise
    except (_StalePartial, FailedPrecondition):
        raise  # a wrong blob never gets kept: commit has deleted it
    except BaseException:
        _keep_partial(writer, resume_path(content, desc.digest), desc.size)
        raise
    finally:
        writer.abort()  # a no-op after commit


def _download(repo: Repository, desc: Descriptor, writer: Writer,
              progress: Callable[[int], None] | None) -> None:
    resumes = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while writer.size < desc.size:
        offset = writer.size
        try:
            with repo.open_blob(desc.digest, offset) as resp:
                if offset and resp.status != 206:
                    _skip(resp, offset, view)  # the registry ignored Range: skip what we have
                _copy(resp, view, desc.size, writer, progress)
            if writer.size < desc.size:
                raise Truncated(f"blob {desc.digest}: unexpected end of data: got "
                                f"{writer.size} of {desc.size} bytes")
        except (Truncated, TransportError, OSError, http.client.HTTPException) as e:
            resumes += 1
            if resumes > RESUMES:
                raise _unavailable(desc, writer, e) from None
    if progress:
        progress(writer.size)


def _copy(resp, view: memoryview, size: int, writer: Writer,
          progress: Callable[[int], None] | None) -> None:
    while writer.size < size:
        n = resp.readinto(view[:min(len(view), size - writer.size)])
        if not n:
            return
        writer.write(view[:n])
        if progress:
            progress(writer.size)
    if resp.read(1):
        raise FailedPrecondition(f"blob is larger than the {size} bytes its descriptor says")


def _skip(resp, n: int, view: memoryview) -> None:
    while n:
        got = resp.readinto(view[:min(n, len(view))])
        if not got:
            raise Truncated("unexpected end of data")
        n -= got


def _unavailable(desc: Descriptor, writer: Writer, e: Exception) -> Unavailable:
    if isinstance(e, Unavailable):
        return e
    reason = str(e) or type(e).__name__
    return Unavailable(f"blob {desc.digest}: transfer failed after {writer.size} of "
                       f"{desc.size} bytes: {reason}")


def resume_path(content: ContentStore, digest: str) -> str:
    """Where a broken transfer of digest keeps what it got."""
    algo, _, hexpart = digest.partition(":")
    return os.path.join(content.root, "ingest", f"resume-{algo}-{hexpart}")


def _replay_partial(writer: Writer, path: str, size: int) -> int:
    """Claim a kept partial download (rename: one claimant wins) and replay it;
    returns how many bytes it gave."""
    claimed = f"{path}.{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return 0
    try:
        with open(claimed, "rb") as f:
            while len(chunk := f.read(CHUNK)) and writer.size < size:
                writer.write(chunk[:size - writer.size])
    finally:
        os.unlink(claimed)
    return writer.size


def _keep_partial(writer: Writer, path: str, size: int) -> None:
    """Move the writer's ingest file aside for a later resume; the writer's open
    handle still points at it, so abort() flushes into it and deletes nothing."""
    if 0 < writer.size < size and os.path.exists(writer.path):
        try:
            os.rename(writer.path, path)
        except OSError:
            pass
