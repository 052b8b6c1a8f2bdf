import pytest

from kade.errors import InvalidArgument
from kade.oci import reference


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
    ("localhost/app:v1", "localhost/app:v1", "localhost/app:v1"),
    ("quay.io/a/b/c:t", "quay.io/a/b/c:t", "quay.io/a/b/c:t"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
])
def test_normalises_like_docker(text, full, familiar):
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_digest_reference_has_no_default_tag():
    d = "sha256:" + "a" * 64
    ref = reference.parse(f"busybox@{d}")
    assert ref.tag is None and ref.digest == d
    assert str(ref) == f"docker.io/library/busybox@{d}"


@pytest.mark.parametrize("bad", ["", "Busybox", "a:b:c", "busybox:", "-x", "a//b", "a@sha256:zz"])
def test_malformed_references_are_refused(bad):
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        reference.parse(bad)


def test_uppercase_gets_dockers_lowercase_message():
    with pytest.raises(InvalidArgument, match=r"repository name \(Busybox\) must be lowercase"):
        reference.parse("Busybox")


@pytest.mark.parametrize("text", ["busybox", "localhost:5000/a/b:v1", "example.com:443/x",
                                  "quay.io/a/b:c@sha256:" + "b" * 64, "localhost/foo",
                                  "Registry.Example/x:1", "library/x@sha256:" + "a" * 64])
def test_parse_stored_splits_a_normalised_name_as_parse_does(text):
    ref = reference.parse(text)
    assert reference.parse_stored(str(ref)) == ref
    assert reference.parse_stored(str(ref)).familiar_name() == ref.familiar_name()
