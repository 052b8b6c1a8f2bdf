"""Capability names, masks and docker's --cap-add/--cap-drop rules."""

from __future__ import annotations

import pytest

from kade.errors import InvalidArgument
from kade.runtime import caps

DOCKER_DEFAULT_MASK = 0x00000000A80425FB


def test_table_reaches_checkpoint_restore():
    assert caps.CAP_NUMBERS["CAP_CHOWN"] == 0
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert caps.ALL_CAPS == list(caps.CAPABILITIES) and len(caps.ALL_CAPS) == 41


def test_default_caps_mask():
    assert len(caps.DEFAULT_CAPS) == 14
    assert caps.mask(caps.DEFAULT_CAPS) == DOCKER_DEFAULT_MASK
    assert set(caps.names(DOCKER_DEFAULT_MASK)) == set(caps.DEFAULT_CAPS)


def test_resolve_defaults_and_tweaks():
    assert caps.resolve([], []) == caps.DEFAULT_CAPS
    got = caps.resolve(["net_admin", "Cap_Sys_Time"], ["chown", "CAP_KILL"])
    assert got == [c for c in caps.DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_KILL")] \
        + ["CAP_NET_ADMIN", "CAP_SYS_TIME"]
    assert caps.resolve(["CHOWN"], []) == caps.DEFAULT_CAPS  # no duplicates


def test_resolve_all():
    assert caps.resolve(["ALL"], ["SYS_ADMIN"]) == \
        [c for c in caps.ALL_CAPS if c != "CAP_SYS_ADMIN"]
    assert caps.resolve(["net_raw", "chown"], ["all"]) == ["CAP_NET_RAW", "CAP_CHOWN"]
    assert caps.resolve([], ["ALL"]) == []
    assert caps.resolve([], ["ALL"], privileged=True) == caps.ALL_CAPS


@pytest.mark.parametrize("add,drop", [(["foo"], []), ([], ["CAP_FOO"])])
def test_resolve_unknown(add, drop):
    with pytest.raises(InvalidArgument, match='^unknown capability: "CAP_FOO"$'):
        caps.resolve(add, drop)
