"""Notes per diff_id: compressed forms and the repositories that hold them."""

from kade.oci.descriptor import Descriptor
from kade.remotes.sources import BlobSources

DIFF = "sha256:" + "1" * 64
GZ = Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", "sha256:" + "2" * 64, 9)
ZS = Descriptor("application/vnd.oci.image.layer.v1.tar+zstd", "sha256:" + "3" * 64, 8)


def test_record_and_query(tmp_path):
    s = BlobSources(str(tmp_path))
    assert s.compressed(DIFF, {GZ.media_type}) is None
    s.record(DIFF, GZ)
    s.record(DIFF, ZS, "localhost:5000/a")
    s.record(DIFF, GZ, "localhost:5000/a")
    s.record(DIFF, GZ, "localhost:5000/b")
    s.record(DIFF, GZ, "localhost:5000/a")
    assert s.compressed(DIFF, {GZ.media_type}) == GZ
    assert s.compressed(DIFF, {ZS.media_type}) == ZS
    assert s.repositories(DIFF, GZ.digest) == ["localhost:5000/a", "localhost:5000/b"]
    assert BlobSources(str(tmp_path)).repositories(DIFF, ZS.digest) == ["localhost:5000/a"]


def test_a_damaged_note_is_ignored(tmp_path):
    s = BlobSources(str(tmp_path))
    s.record(DIFF, GZ)
    path = tmp_path / "distribution" / "by-diffid" / "sha256" / ("1" * 64)
    path.write_text("{not json")
    assert s.blobs(DIFF) == []
    s.record(DIFF, GZ, "x/y")
    assert s.repositories(DIFF, GZ.digest) == ["x/y"]
