"""The prune filters docker users pass: until=, label=, label!=."""

import time

import pytest

from kade.engine.prune import Filter, system_filter
from kade.errors import InvalidArgument


def test_no_filter_matches_everything():
    assert Filter().matches(time.time(), None)


def test_until_keeps_what_is_newer():
    f = Filter(["until=1h"])
    assert f.matches(time.time() - 7200, {})
    assert not f.matches(time.time(), {})


def test_labels_must_all_match_and_negated_ones_must_not():
    f = Filter(["label=a", "label=b=2", "label!=c"])
    assert f.matches(0, {"a": "1", "b": "2"})
    assert not f.matches(0, {"a": "1"})
    assert not f.matches(0, {"a": "1", "b": "2", "c": ""})


@pytest.mark.parametrize("raw,message", [
    (["bogus=1"], 'invalid filter "bogus"'),
    (["until=abc"], 'failed to parse value as time or duration: "abc"'),
    (["until=1h", "until=2h"], "more than one until filter specified"),
])
def test_bad_filters_are_named(raw, message):
    with pytest.raises(InvalidArgument, match=message):
        Filter(raw)


def test_volumes_have_no_until():
    with pytest.raises(InvalidArgument, match="not supported with --volumes"):
        system_filter(["until=1h"], volumes=True)
    assert system_filter(["until=1h"], volumes=False).until is not None
