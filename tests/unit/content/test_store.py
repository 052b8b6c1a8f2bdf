import io
import os

import pytest

from kade.content import ContentStore
from kade.errors import FailedPrecondition, NotFound
from kade.oci import digest


def test_put_then_read_round_trips(tmp_path):
    store = ContentStore(str(tmp_path))
    d = store.put(b"hello")
    assert d == digest.of_bytes(b"hello")
    assert store.read(d) == b"hello"
    assert store.verify(d)


def test_mismatched_digest_is_refused_and_nothing_is_visible(tmp_path):
    store = ContentStore(str(tmp_path))
    wrong = digest.of_bytes(b"other")
    with pytest.raises(FailedPrecondition, match="digest mismatch"):
        store.ingest(io.BytesIO(b"hello"), expected=wrong)
    assert not store.exists(wrong)
    assert list(store.walk()) == []
    assert os.listdir(tmp_path / "ingest") == []


def test_size_mismatch_is_refused(tmp_path):
    store = ContentStore(str(tmp_path))
    with pytest.raises(FailedPrecondition, match="size mismatch"):
        store.ingest(io.BytesIO(b"hello"), expected=digest.of_bytes(b"hello"), size=3)
    assert list(store.walk()) == []


def test_interrupted_writer_leaves_only_an_ingest_file(tmp_path):
    store = ContentStore(str(tmp_path))
    w = store.writer()
    w.write(b"partial")
    # no commit: as if the process died here
    assert list(store.walk()) == []
    assert store.prune_ingests() == 1


def test_missing_blob_is_not_found(tmp_path):
    store = ContentStore(str(tmp_path))
    with pytest.raises(NotFound):
        store.read(digest.of_bytes(b"nope"))
