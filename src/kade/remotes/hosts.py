"""Where a registry's requests go: mirrors, plain HTTP, TLS trust.

The configuration is the first of these files that exists:

    <kade root>/registries.json    or  <kade root>/registries.toml
    /etc/kade/registries.json      or  /etc/kade/registries.toml

    {"registries": {
        "docker.io":       {"mirrors": ["http://127.0.0.1:5001", "mirror.example"]},
        "registry.local":  {"insecure": true},
        "quay.io":         {"mirrors": ["https://quay-cache.example"], "insecure": false}},
     "certs_dir": "/etc/docker/certs.d"}

Mirrors serve pulls of any registry, tried in order before the registry
itself; pushes always go to the registry. A mirror without a scheme is HTTPS.
`insecure` means: accept any certificate, and fall back to plain HTTP when the
registry does not speak TLS; localhost, 127.0.0.0/8 and ::1 are insecure unless
they say `"insecure": false`, as in docker. Certificate authorities and client
certificates come from `certs_dir` (docker's /etc/docker/certs.d by default; see
kade.remotes.transport). Docker Hub's API lives at registry-1.docker.io.
"""

from __future__ import annotations

import ipaddress
import json
import os

from kade.errors import InvalidArgument
from kade.oci.reference import DEFAULT_DOMAIN
from kade.remotes.transport import CERTS_DIR

DOCKER_HUB_API = "registry-1.docker.io"
CONFIG_NAMES = ("registries.json", "registries.toml")
SYSTEM_DIR = "/etc/kade"


class Endpoint:
    """One base URL serving a registry's /v2/ API. `scheme` may flip from https to
    http once, for an insecure host that turns out not to speak TLS."""

    def __init__(self, scheme: str, host: str, *, mirror: bool = False, insecure: bool = False,
                 fixed_scheme: bool = False):
        self.scheme = scheme
        self.host = host
        self.mirror = mirror
        self.insecure = insecure
        self.fixed_scheme = fixed_scheme
        self.dead = False  # a mirror that could not be reached: skipped from then on

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def can_fall_back(self) -> bool:
        return self.insecure and not self.fixed_scheme and self.scheme == "https"

    def __repr__(self) -> str:
        return f"Endpoint({self.base!r}, mirror={self.mirror}, insecure={self.insecure})"


class Hosts:
    """Registry settings by domain (as references spell it, e.g. docker.io)."""

    def __init__(self, config: dict | None = None):
        registries = (config or {}).get("registries") or {}
        if not isinstance(registries, dict):
            raise InvalidArgument('registries config: "registries" must be an object')
        self._by_domain = {_canonical(k): v or {} for k, v in registries.items()}
        self.certs_dir = (config or {}).get("certs_dir") or CERTS_DIR

    @classmethod
    def load(cls, root: str | None, system_dir: str = SYSTEM_DIR) -> "Hosts":
        for directory in ([root] if root else []) + [system_dir]:
            for name in CONFIG_NAMES:
                path = os.path.join(directory, name)
                if os.path.exists(path):
                    return cls(_read(path))
        return cls()

    def settings(self, domain: str) -> dict:
        return self._by_domain.get(_canonical(domain)) or {}

    def insecure(self, host: str) -> bool:
        said = self.settings(host).get("insecure")
        return is_loopback(host) if said is None else bool(said)

    def endpoints(self, domain: str, *, push: bool = False) -> list[Endpoint]:
        """Where to send requests for a domain: mirrors (pulls only), then the registry."""
        out = [] if push else [self._mirror(m) for m in self.settings(domain).get("mirrors", [])]
        host = DOCKER_HUB_API if _canonical(domain) == DEFAULT_DOMAIN else domain
        out.append(Endpoint("https", host, insecure=self.insecure(domain)))
        return out

    def _mirror(self, url: str) -> Endpoint:
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "https", url
        if scheme not in ("http", "https"):
            raise InvalidArgument(f'registries config: mirror "{url}" must be http or https')
        host = rest.rstrip("/")
        if "/" in host:
            raise InvalidArgument(f'registries config: mirror "{url}" may not have a path')
        return Endpoint(scheme, host, mirror=True, insecure=self.insecure(host),
                        fixed_scheme=bool(sep))


def _canonical(domain: str) -> str:
    return DEFAULT_DOMAIN if domain in ("index.docker.io", DOCKER_HUB_API) else domain


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".toml"):
            import tomllib
            doc = tomllib.loads(data.decode())
        else:
            doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:  # tomllib's error is a ValueError
        raise InvalidArgument(f'invalid registries config "{path}": {e}') from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f'invalid registries config "{path}": not an object')
    return doc
