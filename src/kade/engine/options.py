"""What a user asks for when creating a container: `kade run` flags and
`POST /containers/create` bodies both become a CreateOptions.

A plain class over a table of defaults, not a dataclass: this module is on the
path of every `kade run`, and dataclasses imports `inspect` (~12 ms)."""

from __future__ import annotations

# field -> default; mount dicts come from kade.volumes.parse_volume/parse_mount/parse_tmpfs
DEFAULTS: dict = {
    "name": None,
    "entrypoint": None,
    "env": [],
    "workdir": None,
    "user": None,
    "hostname": None,
    "labels": {},
    "tty": False,
    "interactive": False,
    "auto_remove": False,
    "init": False,
    "read_only": False,
    "privileged": False,
    "cap_add": [],
    "cap_drop": [],
    "security_opt": [],
    "restart": "no",
    "mounts": [],
    "network": "default",
    "ulimits": [],
    "stop_signal": None,
    "stop_timeout": None,
    "add_hosts": [],
    "dns": [],
    "dns_search": [],
    "dns_options": [],
    "network_aliases": [],
    "ip": None,
    "ip6": None,
    "mac_address": None,
    "links": [],
    "publish": [],               # -p values, as typed
    "publish_all": False,
    "expose": [],                # --expose values, as typed
    "memory": 0,
    "memory_swap": 0,
    "nano_cpus": 0,
    "cpu_shares": 0,
    "pids_limit": 0,
    "devices": [],               # --device values, as typed
    "device_cgroup_rules": [],   # --device-cgroup-rule values, as typed
    "healthcheck": None,
    "pull": "missing",
    "runtime": None,
    "owner": None,  # [pid, start] of a build whose step this is (not a docker option)
}


class CreateOptions:
    # the fields of DEFAULTS, for type checkers: __init__ sets them from the table
    # (tests/unit/engine/test_options.py holds the two lists equal)
    image: str
    command: list[str]
    name: str | None
    entrypoint: list[str] | None
    env: list[str]
    workdir: str | None
    user: str | None
    hostname: str | None
    labels: dict[str, str]
    tty: bool
    interactive: bool
    auto_remove: bool
    init: bool
    read_only: bool
    privileged: bool
    cap_add: list[str]
    cap_drop: list[str]
    security_opt: list[str]
    restart: str
    mounts: list[dict]
    network: str
    ulimits: list[str]
    stop_signal: str | None
    stop_timeout: int | None
    add_hosts: list[str]
    dns: list[str]
    dns_search: list[str]
    dns_options: list[str]
    network_aliases: list[str]
    ip: str | None
    ip6: str | None
    mac_address: str | None
    links: list[str]
    publish: list[str]
    publish_all: bool
    expose: list[str]
    memory: int
    memory_swap: int
    nano_cpus: int
    cpu_shares: int
    pids_limit: int
    devices: list[str]
    device_cgroup_rules: list[str]
    healthcheck: dict | None
    pull: str
    runtime: str | None
    owner: list | None

    def __init__(self, image: str, command: list[str] | None = None, **kw):
        unknown = kw.keys() - DEFAULTS.keys()
        if unknown:
            raise TypeError(f"unknown create options: {sorted(unknown)}")
        self.image = image
        for name, default in DEFAULTS.items():
            value = kw[name] if name in kw else (
                type(default)(default) if isinstance(default, (list, dict)) else default)
            setattr(self, name, value)
        self.command = list(command or [])

    def __repr__(self) -> str:
        return f"CreateOptions({self.__dict__!r})"
