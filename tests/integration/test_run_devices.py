"""`--device` and `--device-cgroup-rule`, checked as a user would: can the container
open the node, and is everything else still denied."""

import json
import os

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/devices"),
                                reason="the device cgroup is enforced only on cgroup v1 here")


def sh(kade, *flags, script: str, check=True):
    return kade("run", "--rm", *flags, "busybox", "sh", "-c", script, check=check)


def test_device_maps_a_host_node_with_its_permissions(kade):
    out = sh(kade, "--device", "/dev/null:/dev/mynull:rwm", script=(
        "stat -c '%t:%T %F' /dev/mynull; echo data > /dev/mynull && echo wrote; "
        "head -c 1 /dev/mynull | wc -c")).stdout.split("\n")
    assert out[:3] == ["1:3 character special file", "wrote", "0"]


def _needs_loop_control():
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("the host has no /dev/loop-control (10:237), a non-default device")


OPENS = ("(exec 3</dev/lc) 2>/dev/null && echo read-ok || echo read-denied; "
         "(exec 3>/dev/lc) 2>/dev/null && echo write-ok || echo write-denied")


def test_device_permissions_are_what_the_cgroup_allows(kade):
    _needs_loop_control()
    assert sh(kade, "--device", "/dev/loop-control:/dev/lc:r",
              script=OPENS).stdout.split() == ["read-ok", "write-denied"]
    assert sh(kade, "--device", "/dev/loop-control:/dev/lc",
              script=OPENS).stdout.split() == ["read-ok", "write-ok"]


def test_device_cgroup_rule_opens_a_node_the_container_made(kade):
    """The container may mknod anything (as under docker) but opens only what a rule
    allows: 10:237 is denied by default, allowed by --device-cgroup-rule."""
    _needs_loop_control()
    script = "mknod /dev/lc c 10 237 && " + OPENS
    assert sh(kade, script=script).stdout.split() == ["read-denied", "write-denied"]
    assert sh(kade, "--device-cgroup-rule", "c 10:237 r",
              script=script).stdout.split() == ["read-ok", "write-denied"]


def test_device_cgroup_rule_c_1_3(kade):
    out = sh(kade, "--device-cgroup-rule", "c 1:3 rwm",
             script="mknod /tmp/n c 1 3 && echo x > /tmp/n && echo ok").stdout
    assert out == "ok\n"


def test_inspect_shows_docker_fields(kade):
    cid = kade("create", "--device", "/dev/null:/dev/mynull", "--device-cgroup-rule",
               "c 1:3 rwm", "busybox", "true").stdout.strip()
    try:
        host = json.loads(kade("inspect", cid).stdout)[0]["HostConfig"]
        assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                    "CgroupPermissions": "rwm"}]
        assert host["DeviceCgroupRules"] == ["c 1:3 rwm"]
    finally:
        kade("rm", cid)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--device", "/etc/passwd", 'error gathering device information while adding custom '
                                'device "/etc/passwd": not a device node'),
    ("--device", "/dev/nope-nope", 'adding custom device "/dev/nope-nope": No such file'),
    ("--device", "/dev/null:/dev/n:rwx",
     'invalid argument "/dev/null:/dev/n:rwx" for "--device" flag: bad mode specified: rwx'),
    ("--device", "/dev/null:dev/n", "dev/n is not an absolute path"),
    ("--device-cgroup-rule", "c 1:3 rwx",
     "invalid device cgroup format 'c 1:3 rwx'"),
    ("--device-cgroup-rule", "x *:* rwm", "invalid device cgroup format 'x *:* rwm'"),
])
def test_bad_values_are_one_line_and_leave_nothing(kade, flag, value, message):
    before = kade("ps", "-aq").stdout
    r = kade("run", "--rm", flag, value, "busybox", "true", check=False)
    assert r.returncode == 125
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert kade("ps", "-aq").stdout == before
