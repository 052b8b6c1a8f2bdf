"""--mount, -v and --tmpfs values parse as docker's CLI parses them."""

import pytest

from kade.errors import InvalidArgument
from kade.volumes import parse_mount


def test_mount_keys_and_their_aliases():
    a = parse_mount("type=volume,src=data,dst=/d,ro")
    b = parse_mount("type=volume,source=data,target=/d,readonly=true")
    assert a == b == {"type": "volume", "target": "/d", "source": "data", "readonly": True,
                      "options": {}}


def test_keys_docker_accepts_without_effect_here_are_accepted():
    parse_mount("type=volume,src=data,dst=/d,volume-label=a=b,volume-driver=local,"
                "consistency=cached")


@pytest.mark.parametrize("text,key,item", [
    ("type=volume,src=v,dst=/d,foo=bar", "foo", "foo=bar"),
    ("type=bind,source=/tmp,target=/d,readonyl", "readonyl", "readonyl"),
])
def test_an_unknown_key_is_named(text, key, item):
    with pytest.raises(InvalidArgument) as e:
        parse_mount(text)
    assert str(e.value) == (f'invalid argument "{text}" for "--mount" flag: '
                            f"unexpected key '{key}' in '{item}'")
