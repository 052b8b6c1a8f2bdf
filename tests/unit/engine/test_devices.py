"""--device and --device-cgroup-rule: docker's grammar, and what lands in the spec."""

import os
import stat

import pytest

from kade.engine import devices, spec
from kade.errors import InvalidArgument


@pytest.mark.parametrize(("text", "mapping"), [
    ("/dev/fuse", ("/dev/fuse", "/dev/fuse", "rwm")),
    ("/dev/fuse:r", ("/dev/fuse", "/dev/fuse", "r")),
    ("/dev/null:/dev/mynull", ("/dev/null", "/dev/mynull", "rwm")),
    ("/dev/null:/dev/mynull:rw", ("/dev/null", "/dev/mynull", "rw")),
    ("/dev/null:/dev//x/../mynull:mr", ("/dev/null", "/dev/mynull", "mr")),
])
def test_device_mappings(text, mapping):
    got = devices.parse_mapping(text)
    assert (got["PathOnHost"], got["PathInContainer"], got["CgroupPermissions"]) == mapping


@pytest.mark.parametrize(("text", "why"), [
    ("", "bad format for path: "),
    (":/dev/x", "bad format for path: :/dev/x"),
    ("/a:/b:rw:x", "bad format for path: /a:/b:rw:x"),
    ("/dev/null:/dev/x:rwx", "bad mode specified: rwx"),
    ("/dev/null:/dev/x:rr", "bad mode specified: rr"),
    ("/dev/null:/dev/x:", "bad mode specified: "),
    ("dev/null", "dev/null is not an absolute path"),
    ("/dev/null:x", "x is not an absolute path"),
])
def test_bad_device_mappings(text, why):
    with pytest.raises(InvalidArgument) as e:
        devices.parse_mapping(text)
    assert str(e.value) == f'invalid argument "{text}" for "--device" flag: {why}'


@pytest.mark.parametrize(("text", "rule"), [
    ("c 1:3 rwm", ("c", 1, 3, "rwm")),
    ("b *:* r", ("b", None, None, "r")),
    ("a 7:* mw", ("a", 7, None, "mw")),
])
def test_cgroup_rules(text, rule):
    got = devices.parse_cgroup_rule(text)
    assert got["allow"] is True
    assert (got["type"], got["major"], got["minor"], got["access"]) == rule


@pytest.mark.parametrize("text", ["c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c -1:3 r",
                                  "c 1:3  rwm", " c 1:3 rwm", "c 1:3 rwmr", "c ١:3 r"])
def test_bad_cgroup_rules(text):
    with pytest.raises(InvalidArgument) as e:
        devices.parse_cgroup_rule(text)
    assert str(e.value) == (f'invalid argument "{text}" for "--device-cgroup-rule" flag: '
                            f"invalid device cgroup format '{text}'")


def test_from_host_stats_the_node():
    st = os.stat("/dev/null")
    device, rule = devices.from_host(devices.parse_mapping("/dev/null:/dev/mynull:rw"))
    assert device == {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                      "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                      "gid": st.st_gid}
    assert rule == {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}


def test_from_host_follows_a_host_symlink(tmp_path):
    (tmp_path / "link").symlink_to("/dev/zero")
    device, _ = devices.from_host(devices.parse_mapping(f"{tmp_path}/link:/dev/z"))
    assert (device["path"], device["major"], device["minor"]) == ("/dev/z", 1, 5)


@pytest.mark.parametrize("what", ["file", "dir", "missing"])
def test_from_host_refuses_non_devices(tmp_path, what):
    path = tmp_path / "thing"
    if what == "file":
        path.write_text("x")
    elif what == "dir":
        path.mkdir()
    why = "No such file or directory" if what == "missing" else "not a device node"
    with pytest.raises(InvalidArgument) as e:
        devices.from_host(devices.parse_mapping(f"{path}:/dev/x"))
    assert str(e.value) == (f'error gathering device information while adding custom '
                            f'device "{path}": {why}')


def test_spec_appends_device_rules_after_the_defaults():
    host = {"Devices": [devices.parse_mapping("/dev/null:/dev/mynull:r")],
            "DeviceCgroupRules": ["c 10:237 rw"]}
    linux = {"resources": {"devices": [{"allow": False, "access": "rwm"}]}}
    spec._add_devices(linux, host)
    assert [d["path"] for d in linux["devices"]] == ["/dev/mynull"]
    assert linux["resources"]["devices"][1:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rw"}]
