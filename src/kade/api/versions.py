"""API versions: what Kade speaks (1.24 to 1.50, as dockerd 28 with its minimum
lowered to docker 1.12's), the `/v1.xx` path prefix, and the headers dockerd puts
on every answer (`/_ping`'s are how clients negotiate: they take
min(theirs, API-Version)).
"""

from __future__ import annotations

import platform

from kade.errors import InvalidArgument

MIN_VERSION = (1, 24)
MAX_VERSION = (1, 50)


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse(value: str) -> tuple[int, int]:
    major, dot, minor = value.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise InvalidArgument(f"invalid API version {value!r}")
    return int(major), int(minor)


def split_path(path: str) -> tuple[tuple[int, int], str]:
    """(requested version, path without its prefix); bare paths get the newest.
    Docker's refusals for versions out of range, as 400s."""
    if not path.startswith("/v") or "/" not in path[2:]:
        return MAX_VERSION, path
    head, _, rest = path[2:].partition("/")
    try:
        version = parse(head)
    except InvalidArgument:
        return MAX_VERSION, path  # not a version: a path of its own (a 404 later)
    if version > MAX_VERSION:
        raise InvalidArgument(f"client version {head} is too new. Maximum supported API "
                              f"version is {text(MAX_VERSION)}")
    if version < MIN_VERSION:
        raise InvalidArgument(f"client version {head} is too old. Minimum supported API "
                              f"version is {text(MIN_VERSION)}, please upgrade your "
                              "client to a newer version")
    return version, "/" + rest


def server_header() -> str:
    from kade import __version__
    return f"Kade/{__version__} (linux)"


def common_headers() -> dict[str, str]:
    """What dockerd sends with every answer."""
    return {"Api-Version": text(MAX_VERSION), "Docker-Experimental": "false",
            "Ostype": "linux", "Server": server_header()}


def ping_headers() -> dict[str, str]:
    return {**common_headers(), "Builder-Version": "1",
            "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def version_body() -> dict:
    """`GET /version`, shaped as dockerd's."""
    from kade import __version__
    arch = GOARCH.get(platform.machine(), platform.machine())
    details = {"ApiVersion": text(MAX_VERSION), "MinAPIVersion": text(MIN_VERSION),
               "Arch": arch, "Os": "linux", "KernelVersion": platform.release(),
               "GitCommit": "", "GoVersion": f"python{platform.python_version()}",
               "BuildTime": "", "Experimental": "false"}
    return {"Platform": {"Name": "Kade"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, "ApiVersion": details["ApiVersion"],
            "MinAPIVersion": details["MinAPIVersion"], "GitCommit": "",
            "GoVersion": details["GoVersion"], "Os": "linux", "Arch": arch,
            "KernelVersion": details["KernelVersion"], "BuildTime": ""}
