import pytest

from kade.errors import InvalidArgument
from kade.oci import digest


def test_chain_ids_follow_the_image_spec():
    a, b = digest.of_bytes(b"a"), digest.of_bytes(b"b")
    chain = digest.chain_ids([a, b])
    assert chain[0] == a
    assert chain[1] == digest.of_bytes(f"{a} {b}".encode())


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "a" * 32, "sha256" + "a" * 64,
                                 "sha256:" + "G" * 64])
def test_validate_refuses_bad_digests(bad):
    with pytest.raises(InvalidArgument):
        digest.validate(bad)


def test_sha512_is_accepted():
    d = digest.of_bytes(b"x", "sha512")
    assert digest.validate(d) == d
