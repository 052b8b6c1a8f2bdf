"""Spec properties Kade cannot apply are refused before fork, never dropped (no root)."""

from __future__ import annotations

import pytest

from kade import errors
from kade.runtime import caps, labels, process


def _spec(tmp_path, process_extra=None, linux_extra=None):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return {"root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", **(process_extra or {})},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],
                      **(linux_extra or {})}}


@pytest.mark.parametrize("which", ["bounding", "effective", "permitted", "inheritable",
                                   "ambient"])
def test_an_unknown_capability_name_is_an_error(tmp_path, which):
    spec = _spec(tmp_path, {"capabilities": {which: ["CAP_KILL", "CAP_TEST"]}})
    with pytest.raises(errors.InvalidArgument,
                       match=f'^unknown capability "CAP_TEST" in process.capabilities.{which}$'):
        process.init_config(spec, str(tmp_path))


def test_runc_spec_capabilities_are_accepted(tmp_path):
    """`runc spec`'s sets: ambient without inheritable is valid; the kernel's refusal to
    raise those is handled at apply time, as runc does."""
    three = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    spec = _spec(tmp_path, {"capabilities": {s: three for s in (
        "bounding", "effective", "permitted", "ambient")}})
    cfg = process.init_config(spec, str(tmp_path))
    assert cfg.process.capabilities["ambient"] == three


def test_check_names_knows_every_capability():
    caps.check_names({"bounding": list(caps.CAPABILITIES)})
    with pytest.raises(errors.InvalidArgument, match='"cap_kill"'):
        caps.check_names({"effective": ["cap_kill"]})   # the spec's names are exact


@pytest.mark.parametrize(("process_extra", "linux_extra", "where"), [
    ({"apparmorProfile": "acme_secure_profile"}, {}, "process.apparmorProfile"),
    ({"selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0"}, {}, "process.selinuxLabel"),
    ({}, {"mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"},
     "linux.mountLabel"),
])
def test_security_labels_are_refused_on_this_host(tmp_path, monkeypatch, process_extra,
                                                  linux_extra, where):
    monkeypatch.setattr(labels, "APPARMOR_ENABLED", str(tmp_path / "no-apparmor"))
    monkeypatch.setattr(labels, "SELINUX_FS", str(tmp_path / "no-selinux"))
    spec = _spec(tmp_path, process_extra, linux_extra)
    with pytest.raises(errors.FailedPrecondition,
                       match=f'^{where} ".*" cannot be applied: .* is not enabled on this host$'):
        process.init_config(spec, str(tmp_path))


def test_labels_on_a_host_with_the_lsm_are_not_supported_yet():
    with pytest.raises(errors.NotImplementedYet, match="AppArmor labels are not supported"):
        labels.check({"apparmorProfile": "p"}, apparmor=True)
    with pytest.raises(errors.NotImplementedYet, match="SELinux labels are not supported"):
        labels.check({}, {"mountLabel": "l"}, selinux=True)


def test_empty_labels_are_no_request():
    labels.check({"apparmorProfile": "", "selinuxLabel": ""}, {"mountLabel": ""},
                 apparmor=False, selinux=False)


def test_host_detection(tmp_path, monkeypatch):
    enabled = tmp_path / "enabled"
    monkeypatch.setattr(labels, "APPARMOR_ENABLED", str(enabled))
    monkeypatch.setattr(labels, "SELINUX_FS", str(tmp_path))
    assert not labels.host_has_apparmor() and not labels.host_has_selinux()
    enabled.write_text("Y\n")
    (tmp_path / "enforce").write_text("0")
    assert labels.host_has_apparmor() and labels.host_has_selinux()
    enabled.write_text("N\n")
    assert not labels.host_has_apparmor()
