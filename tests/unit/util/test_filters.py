"""kade.util.filters: docker's --filter parsing, its messages and its matching rules."""

from __future__ import annotations

import pytest

from kade.errors import InvalidArgument
from kade.util.filters import (
    bool_filter,
    check_keys,
    familiar_name,
    match_label,
    match_labels,
    match_name,
    match_reference,
    parse_filters,
    path_match,
)


def test_parse_filters_groups_values_by_name() -> None:
    got = parse_filters(["label=app=web", "dangling=true", "label=tier", "status=exited"])
    assert got == {"label": ["app=web", "tier"], "dangling": ["true"], "status": ["exited"]}


def test_parse_filters_normalises_like_docker() -> None:
    got = parse_filters([" Label = x ", "label=x", "", "name="])
    assert got == {"label": ["x"], "name": [""]}


def test_parse_filters_requires_equals() -> None:
    with pytest.raises(InvalidArgument, match=r"^bad format of filter \(expected name=value\)$"):
        parse_filters(["dangling"])


def test_check_keys() -> None:
    check_keys({"label": ["a"], "status": ["running"]}, {"label", "status", "name"})
    with pytest.raises(InvalidArgument, match='^invalid filter "foo"$'):
        check_keys({"label": ["a"], "foo": ["b"]}, {"label"})


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["true"], True), (["1"], True), (["false"], False), (["0"], False), (["true", "1"], True)],
)
def test_bool_filter(values: list[str], expected: bool) -> None:
    assert bool_filter({"dangling": values}, "dangling", default=False) is expected


def test_bool_filter_default_and_errors() -> None:
    assert bool_filter({}, "dangling", default=True) is True
    with pytest.raises(InvalidArgument, match='invalid filter "dangling=maybe"'):
        bool_filter({"dangling": ["maybe"]}, "dangling", default=False)
    with pytest.raises(InvalidArgument, match='invalid filter "dangling=true,false"'):
        bool_filter({"dangling": ["true", "false"]}, "dangling", default=False)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("app", True),
        ("app=web", True),
        ("app=db", False),
        ("app=", False),
        ("empty=", True),
        ("empty", True),
        ("missing", False),
        ("com.example.tier=front=end", True),  # only the first "=" splits
    ],
)
def test_match_label(expr: str, expected: bool) -> None:
    labels = {"app": "web", "empty": "", "com.example.tier": "front=end"}
    assert match_label(labels, expr) is expected


def test_match_labels_needs_every_expression() -> None:
    labels = {"app": "web", "tier": "1"}
    assert match_labels(labels, ["app=web", "tier"])
    assert not match_labels(labels, ["app=web", "zone"])
    assert match_labels(labels, [])
    assert not match_labels({}, ["app"])
    assert not match_labels(None, ["app"])


def test_match_name_is_a_regexp_search() -> None:
    assert match_name("/web-1", ["web"])
    assert match_name("web-1", ["^web-[0-9]$"])
    assert not match_name("db", ["web", "^d$"])
    assert not match_name("web", ["("])  # an invalid expression matches nothing


@pytest.mark.parametrize(
    ("ref", "familiar"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "busybox"),
        ("docker.io/bitnami/redis:7", "bitnami/redis:7"),
        ("docker.io/library/foo/bar:1", "library/foo/bar:1"),
        ("quay.io/coreos/etcd:v3", "quay.io/coreos/etcd:v3"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox@sha256:abc", "busybox@sha256:abc"),
    ],
)
def test_familiar_name(ref: str, familiar: str) -> None:
    assert familiar_name(ref) == familiar


@pytest.mark.parametrize(
    ("ref", "pattern", "expected"),
    [
        ("busybox:latest", "busybox", True),  # a bare name matches every tag
        ("busybox:1.36", "busybox", True),
        ("docker.io/library/busybox:latest", "busybox:latest", True),
        ("busybox:latest", "busybox:1.36", False),
        ("busybox:latest", "busy*", True),
        ("busybox:latest", "*box", True),
        ("busybox:latest", "*:latest", True),
        ("busybox:1.36", "busybox:1.*", True),
        ("bitnami/redis:7", "*:7", False),  # "*" stops at "/"
        ("bitnami/redis:7", "*/*:7", True),
        ("bitnami/redis:7", "bitnami/*", True),
        ("localhost:5000/app:dev", "localhost:5000/app", True),
        ("localhost:5000/app:dev", "localhost:5000/*:dev", True),
        ("busybox:latest", "b?sybox", True),
        ("busybox:latest", "[a-c]usybox", True),
        ("busybox:latest", "[^b]usybox", False),
        ("busybox@sha256:abc", "busybox", True),
        ("nginx:latest", "busybox", False),
    ],
)
def test_match_reference(ref: str, pattern: str, expected: bool) -> None:
    assert match_reference(ref, pattern) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("abc", "abc", True),
        ("*", "abc", True),
        ("*c", "abc", True),
        ("a*", "a", True),
        ("a*/b", "abc/b", True),
        ("a*/b", "a/c/b", False),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
        ("a?b", "a/b", False),
        ("a[^a]b", "a/b", True),  # Go's classes do not exclude "/"
        ("[a-c]x", "bx", True),
        ("[z-a]x", "ax", False),  # a reversed range matches nothing, without error
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("[\\]a]", "]", True),
        ("[x\\-]", "-", True),
        ("", "", True),
        ("ab", "abc", False),
    ],
)
def test_path_match_like_go(pattern: str, name: str, expected: bool) -> None:
    assert path_match(pattern, name) is expected


@pytest.mark.parametrize("pattern", ["[", "[]", "[a-", "a\\", "[-a]", "[^]"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        path_match(pattern, "x")
    with pytest.raises(InvalidArgument, match="syntax error in pattern"):
        match_reference("busybox:latest", pattern)
