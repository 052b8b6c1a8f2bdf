"""The host platform in OCI terms."""

import os

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    m = os.uname().machine
    return _ARCH.get(m, m)


def host() -> dict:
    return {"os": "linux", "architecture": host_arch()}
