"""The `netkade` fixture (see netkade.py: Kade in a network namespace of its own)."""

import os
import shutil

import pytest
from netkade import NetKade


@pytest.fixture(scope="module")
def netkade(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, iproute2 and nsenter (network namespaces)")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("Debian's busybox-static is not installed")
    root = str(tmp_path_factory.mktemp("kade-net"))
    k = NetKade(root)
    try:
        k("image", "bootstrap", "busybox")
        yield k
    finally:
        k.cleanup()
        shutil.rmtree(root, ignore_errors=True)
