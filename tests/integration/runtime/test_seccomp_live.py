"""Docker's default seccomp profile loaded for real in a child about to exec."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kade.oci.defaults import DEFAULT_CAPS, default_seccomp
from kade.runtime import seccomp

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (CAP_SYS_ADMIN) to load a filter")

# Runs inside the filtered child: each line is "<what> <errno name or ok>".
PROBE = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def result(rc):
    return "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()]
print("unshare", result(libc.unshare(0x00020000)))
print("mount", result(libc.mount(b"none", b"/nonexistent-kade", b"tmpfs", 0, None)))
print("keyctl", result(libc.syscall(250, 0, 0, 0, 0, 0)))
print("clone3", result(libc.syscall(435, 0, 0)))
print("pipe", "ok" if os.pipe() else "?")
print("getpid", "ok" if os.getpid() > 0 else "?")
"""


def probe(preexec=None) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", PROBE], preexec_fn=preexec,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="probe uses x86_64 syscall numbers")
def test_default_profile_blocks_privileged_syscalls(tmp_path):
    spec = default_seccomp(DEFAULT_CAPS, arch="x86_64")
    assert probe()["unshare"] == "ok"  # without the filter, root may

    filtered = probe(lambda: seccomp.install(spec, str(tmp_path)))
    assert filtered["unshare"] == "EPERM"
    assert filtered["mount"] == "EPERM"
    assert filtered["keyctl"] == "EPERM"
    assert filtered["clone3"] == "ENOSYS"  # so libc falls back to clone
    assert filtered["pipe"] == filtered["getpid"] == "ok"


def test_second_install_uses_the_cache(tmp_path):
    spec = default_seccomp(DEFAULT_CAPS, arch=os.uname().machine)
    cached = tmp_path / (seccomp.cache_key(spec) + ".bpf")
    probe(lambda: seccomp.install(spec, str(tmp_path)))
    assert cached.exists()
    first = cached.stat().st_mtime_ns
    probe(lambda: seccomp.install(spec, str(tmp_path)))
    assert cached.stat().st_mtime_ns == first  # read, not rewritten
