"""What a user asks for when creating a container: `kade run` flags and
`POST /containers/create` bodies both become a CreateOptions."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CreateOptions:
    image: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: dict = field(default_factory=dict)
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    init: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    restart: str = "no"
    # mount spec dicts from kade.volumes.parse_volume / parse_mount / parse_tmpfs
    mounts: list[dict] = field(default_factory=list)
    network: str = "default"
    ulimits: list[str] = field(default_factory=list)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    add_hosts: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int = 0
    healthcheck: dict | None = None
    pull: str = "missing"
    runtime: str | None = None
