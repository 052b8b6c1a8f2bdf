"""Capabilities and user switching applied for real in a child about to exec."""

from __future__ import annotations

import os
import subprocess

import pytest

from kade.oci.defaults import DEFAULT_CAPS, capabilities_spec
from kade.runtime import caps

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change capabilities")

MASK = "00000000a80425fb"
NONE = "0000000000000000"


def status_after(preexec) -> dict[str, str]:
    out = subprocess.run(["cat", "/proc/self/status"], preexec_fn=preexec,
                         capture_output=True, text=True, check=True).stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def test_docker_defaults_as_root():
    st = status_after(lambda: caps.apply(capabilities_spec(DEFAULT_CAPS)))
    assert (st["CapEff"], st["CapPrm"], st["CapBnd"]) == (MASK, MASK, MASK)
    assert (st["CapInh"], st["CapAmb"]) == (NONE, NONE)


def test_non_root_user_keeps_only_the_bounding_set():
    def preexec():
        caps.set_user(65534, 65534, [65534, 100])
        caps.apply(capabilities_spec(DEFAULT_CAPS))

    st = status_after(preexec)
    assert st["Uid"].split() == ["65534"] * 4 and st["Gid"].split() == ["65534"] * 4
    assert st["Groups"].split() == ["100", "65534"]
    assert (st["CapEff"], st["CapBnd"]) == (NONE, MASK)  # as docker: exec drops them


def test_ambient_caps_survive_exec_as_non_root():
    spec = {**capabilities_spec(DEFAULT_CAPS), "inheritable": DEFAULT_CAPS,
            "ambient": ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]}

    def preexec():
        caps.set_user(1000, 1000)
        caps.apply(spec)

    st = status_after(preexec)
    assert st["CapAmb"] == st["CapEff"] == f"{caps.mask(spec['ambient']):016x}"
    assert st["CapBnd"] == MASK


def test_unknown_names_are_reported_not_fatal():
    spec = capabilities_spec(DEFAULT_CAPS + ["CAP_MADE_UP"])

    def preexec():
        assert caps.apply(spec) == ["CAP_MADE_UP"]  # a failure here fails the run below

    assert status_after(preexec)["CapEff"] == MASK


def test_ambient_without_inheritable_is_skipped_as_runc_does():
    """`runc spec`'s default: ambient caps that are not inheritable. The kernel refuses
    to raise them; the rest is applied and the refused ones are reported."""
    three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = {s: three for s in ("bounding", "effective", "permitted", "ambient")}

    def preexec():
        assert caps.apply(spec) == sorted(three)

    st = status_after(preexec)
    assert st["CapEff"] == st["CapBnd"] == f"{caps.mask(three):016x}"
    assert st["CapAmb"] == NONE
