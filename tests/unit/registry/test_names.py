"""The spec's grammars: repository names (no traversal), tags and digests."""

import pytest

from kade.registry import errcode, names
from kade.registry.errcode import RegistryError

GOOD_NAMES = ["a", "busybox", "library/busybox", "a/b/c/d", "my-app", "my--app", "my.app",
              "my_app", "my__app", "0", "a0/b1", "x" * 255]
BAD_NAMES = ["", "A", "Upper/case", "../etc", "a/../b", "a/./b", "./a", "/a", "a/", "a//b",
             "_uploads", "a/_manifests", "-a", "a-", "a.", ".a", "a___b", "a..b", "a b",
             "a:b", "a/b:c", "a@b", "x" * 256, "a\nb", "\u00e9"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_names(name):
    assert names.validate_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names(name):
    with pytest.raises(RegistryError) as e:
        names.validate_name(name)
    assert e.value.code is errcode.NAME_INVALID
    assert e.value.status == 400


@pytest.mark.parametrize("tag", ["latest", "v1.0", "1", "_x", "A-b_c.d", "a" * 128])
def test_valid_tags(tag):
    assert names.is_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b", "a b"])
def test_invalid_tags(tag):
    assert not names.is_tag(tag)


def test_digests():
    good256 = "sha256:" + "a" * 64
    good512 = "sha512:" + "0" * 128
    assert names.validate_digest(good256) == good256
    assert names.validate_digest(good512) == good512
    for bad in ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:xyz", "sha256", "md5:abc",
                "sha512:" + "a" * 64, "", ":", "sha256:" + "g" * 64]:
        with pytest.raises(RegistryError) as e:
            names.validate_digest(bad)
        assert e.value.code is errcode.DIGEST_INVALID and e.value.status == 400


def test_unknown_algorithm_is_a_digest_but_unsupported():
    assert names.is_digest("blake3:" + "a" * 64)
    with pytest.raises(RegistryError, match="unsupported digest algorithm"):
        names.validate_digest("blake3:" + "a" * 64)


def test_algorithms():
    assert names.validate_algorithm("sha512") == "sha512"
    with pytest.raises(RegistryError):
        names.validate_algorithm("md5")
