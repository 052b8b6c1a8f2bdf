"""Blob downloads into the content store: verified, resumed, never half-visible."""

from __future__ import annotations

import os

import pytest

from kade.content import ContentStore
from kade.errors import FailedPrecondition, Unavailable
from kade.oci import digest as dg
from kade.oci import reference
from kade.oci.descriptor import Descriptor
from kade.remotes.client import Session
from kade.remotes.fetch import fetch_blob
from kade.remotes.hosts import Hosts
from kade.remotes.memory import MemoryRegistry

DATA = os.urandom(3 << 20) + b"tail"


@pytest.fixture
def reg() -> MemoryRegistry:
    return MemoryRegistry()


@pytest.fixture
def store(tmp_path) -> ContentStore:
    return ContentStore(str(tmp_path / "content"))


def repo(reg):
    return Session(Hosts(), None, reg, retry_delays=(0, 0)).repository(
        reference.parse("registry.test/app"))


def desc_of(data: bytes) -> Descriptor:
    return Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", dg.of_bytes(data),
                      len(data))


def ingests(store: ContentStore) -> list[str]:
    return sorted(os.listdir(os.path.join(store.root, "ingest")))


def test_fetch_verifies_and_commits(reg, store):
    d = reg.put_blob("app", DATA)
    seen = []
    assert fetch_blob(repo(reg), desc_of(DATA), store, progress=seen.append) == d
    assert store.read(d) == DATA and seen[-1] == len(DATA)
    assert ingests(store) == []
    fetch_blob(repo(reg), desc_of(DATA), store)  # present: nothing is asked
    assert len(reg.requests("GET", "/blobs/")) == 1


def test_broken_transfer_resumes_with_range(reg, store):
    d = reg.put_blob("app", DATA)
    reg.truncate(d, at=1 << 20, times=2)
    fetch_blob(repo(reg), desc_of(DATA), store)
    assert store.read(d) == DATA
    ranges = [h.get("Range") for _, _, h in reg.requests("GET", "/blobs/")]
    assert ranges == [None, f"bytes={1 << 20}-", f"bytes={1 << 20}-"]


def test_registry_ignoring_range_still_gives_the_right_blob(reg, store):
    d = reg.put_blob("app", DATA)
    reg.truncate(d, at=12345)
    reg.ignore_range = True
    fetch_blob(repo(reg), desc_of(DATA), store)
    assert store.read(d) == DATA


def test_content_not_matching_its_digest_leaves_nothing(reg, store):
    d = reg.put_blob("app", DATA)
    reg.blob_override[d] = DATA[:-4] + b"TAIL"
    with pytest.raises(FailedPrecondition, match="digest mismatch"):
        fetch_blob(repo(reg), desc_of(DATA), store)
    assert not store.exists(d) and ingests(store) == []


def test_blob_longer_than_its_descriptor_is_refused(reg, store):
    d = reg.put_blob("app", DATA)
    reg.blob_override[d] = DATA + b"extra"
    with pytest.raises(FailedPrecondition):
        fetch_blob(repo(reg), desc_of(DATA), store)
    assert not store.exists(d) and ingests(store) == []


def test_failed_transfer_keeps_a_partial_that_the_next_fetch_resumes(reg, store):
    d = reg.put_blob("app", DATA)
    reg.truncate(d, at=2 << 20, times=10)
    with pytest.raises(Unavailable, match="transfer failed"):
        fetch_blob(repo(reg), desc_of(DATA), store)
    assert not store.exists(d)
    assert ingests(store) == [f"resume-sha256-{dg.hex_of(d)}"]
    reg.truncate(d, at=0, times=0)
    fetch_blob(repo(reg), desc_of(DATA), store)
    assert store.read(d) == DATA and ingests(store) == []
    last = reg.requests("GET", "/blobs/")[-1]
    assert last[2]["Range"] == f"bytes={2 << 20}-"


def test_truncated_download_without_reset_is_an_error(reg, store):
    short = DATA[:100]
    d = dg.of_bytes(DATA)
    reg.blobs[d] = short
    reg.repo_blobs["app"].add(d)
    with pytest.raises(Unavailable, match="unexpected end of data: got 100 of"):
        fetch_blob(repo(reg), desc_of(DATA), store)
    assert not store.exists(d)


def test_a_wrong_partial_is_dropped_and_the_blob_fetched_again(reg, store):
    d = reg.put_blob("app", DATA)
    ingest = os.path.join(store.root, "ingest")
    with open(os.path.join(ingest, f"resume-sha256-{dg.hex_of(d)}"), "wb") as f:
        f.write(b"garbage" * 1000)
    fetch_blob(repo(reg), desc_of(DATA), store)
    assert store.read(d) == DATA and ingests(store) == []
    ranges = [h.get("Range") for _, _, h in reg.requests("GET", "/blobs/")]
    assert ranges == ["bytes=7000-", None]
