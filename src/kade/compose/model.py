"""The loaded project: a canonical mapping (what `kade compose config` prints), with
typed views for the layers above.

Keys come out in the order docker compose v2 prints them: the Go struct order of
compose-go's types (`name` first, then services, networks, volumes, secrets,
configs; a service's keys nearly alphabetical), and map keys sorted.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypedDict


class ServicePort(TypedDict, total=False):
    mode: str
    host_ip: str
    target: int
    published: str  # a port or a range; "" or absent when the engine picks
    protocol: str


class ServiceVolume(TypedDict, total=False):
    type: str  # volume, bind, tmpfs
    source: str  # a volume's key in Project.volumes, or an absolute host path
    target: str
    read_only: bool
    bind: dict
    volume: dict
    tmpfs: dict


class Dependency(TypedDict, total=False):
    condition: str  # service_started, service_healthy, service_completed_successfully
    restart: bool
    required: bool


class Service(TypedDict, total=False):
    image: str
    build: dict  # context (absolute), dockerfile, args (a map), target, ...
    command: list[str] | None
    entrypoint: list[str] | None
    environment: dict[str, str | None]
    ports: list[ServicePort]
    volumes: list[ServiceVolume]
    depends_on: dict[str, Dependency]
    networks: dict[str, dict | None]
    labels: dict[str, str]
    profiles: list[str]


class Resource(TypedDict, total=False):
    name: str  # the engine-level name: `<project>_<key>` unless external or named
    driver: str
    driver_opts: dict
    external: bool
    labels: dict[str, str]


# -- key order ------------------------------------------------------------------------

_SERVICE = (
    "profiles annotations attach build develop blkio_config cap_add cap_drop cgroup_parent "
    "cgroup cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpus "
    "cpuset cpu_shares command configs container_name credential_spec depends_on deploy "
    "device_cgroup_rules devices dns dns_opt dns_search dockerfile domainname entrypoint "
    "provider environment env_file expose extends external_links extra_hosts group_add gpus "
    "hostname healthcheck image init ipc isolation labels label_file links logging "
    "log_driver log_opt mem_limit mem_reservation memswap_limit mem_swappiness mac_address "
    "models net network_mode networks oom_kill_disable oom_score_adj pid pids_limit "
    "platform ports privileged pull_policy read_only restart runtime scale secrets "
    "security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls "
    "tmpfs tty ulimits use_api_socket user userns_mode uts volume_driver volumes "
    "volumes_from working_dir pre_start post_start pre_stop").split()
_BUILD = (
    "context dockerfile dockerfile_inline entitlements args ssh labels cache_from cache_to "
    "no_cache additional_contexts network provenance sbom pull target shm_size extra_hosts "
    "isolation privileged secrets tags ulimits platforms").split()
_RESOURCE = "name driver driver_opts ipam external internal attachable labels " \
            "enable_ipv4 enable_ipv6".split()
_FILE_OBJ = "name file environment content external labels driver driver_opts " \
            "template_driver".split()
_FILE_REF = "source target uid gid mode".split()
_DEPLOY = ("mode replicas labels update_config rollback_config resources restart_policy "
           "placement endpoint_mode").split()
_ORDERS = {
    "": ["name", "services", "networks", "volumes", "secrets", "configs", "models"],
    "services.*": _SERVICE,
    "services.*.build": _BUILD,
    "services.*.ports.[]": "name mode host_ip target published protocol app_protocol".split(),
    "services.*.volumes.[]": "type source target read_only consistency bind volume tmpfs "
                             "image".split(),
    "services.*.volumes.[].bind": "selinux propagation create_host_path recursive".split(),
    "services.*.volumes.[].volume": "labels nocopy subpath".split(),
    "services.*.volumes.[].tmpfs": ["size", "mode"],
    "services.*.depends_on.*": ["condition", "restart", "required"],
    "services.*.networks.*": "aliases driver_opts gw_priority interface_name ipv4_address "
                             "ipv6_address link_local_ips mac_address priority".split(),
    "services.*.healthcheck": "test timeout interval retries start_period start_interval "
                              "disable".split(),
    "services.*.deploy": _DEPLOY,
    "services.*.deploy.resources": ["limits", "reservations"],
    "services.*.deploy.resources.*": "cpus memory pids devices generic_resources".split(),
    "services.*.deploy.restart_policy": "condition delay max_attempts window".split(),
    "services.*.logging": ["driver", "options"],
    "services.*.extends": ["file", "service"],
    "services.*.env_file.[]": ["path", "required", "format"],
    "services.*.secrets.[]": _FILE_REF,
    "services.*.configs.[]": _FILE_REF,
    "services.*.devices.[]": ["source", "target", "permissions"],
    "services.*.ulimits.*": ["soft", "hard"],
    "networks.*": _RESOURCE,
    "networks.*.ipam": ["driver", "config", "options"],
    "networks.*.ipam.config.[]": ["subnet", "gateway", "ip_range", "aux_addresses"],
    "volumes.*": _RESOURCE,
    "secrets.*": _FILE_OBJ,
    "configs.*": _FILE_OBJ,
}


def _order(path: tuple) -> list[str] | None:
    from kade.compose.interpolate import matches
    for pattern, keys in _ORDERS.items():
        if (not pattern and not path) or (pattern and matches(path, pattern)):
            return keys
    return None


def ordered(value, path: tuple = ()):
    """`value` with every mapping's keys in compose's printing order: a struct's
    fields in their order (extensions `x-*` after them), other maps sorted."""
    if isinstance(value, dict):
        keys = _order(path)
        if keys is None:
            names = sorted(value)
        else:
            rank = {k: i for i, k in enumerate(keys)}
            names = sorted(value, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: ordered(value[k], path + (k,)) for k in names}
    if isinstance(value, list):
        return [ordered(v, path + (i,)) for i, v in enumerate(value)]
    return value


# -- the project --------------------------------------------------------------------

class Project:
    """A loaded, validated, normalised compose project.

    `model` is the canonical mapping without its name; `services` holds the enabled
    services (by name, sorted), `disabled` those whose profiles are not enabled.
    """

    def __init__(self, name: str, working_dir: str, model: dict, config_files: list[str],
                 environment: dict[str, str], disabled: dict, warnings: list[str]):
        self.name = name
        self.working_dir = working_dir
        self.model = model
        self.config_files = config_files
        self.environment = environment
        self.disabled: dict[str, Service] = disabled
        self.warnings = warnings

    @property
    def services(self) -> dict[str, Service]:
        return self.model.get("services", {})

    def resources(self, kind: str) -> dict[str, Resource]:
        """`networks`, `volumes`, `secrets` or `configs`, by key."""
        return self.model.get(kind) or {}

    def profiles(self) -> list[str]:
        """Every profile any service names, enabled or not, sorted."""
        every = {**self.services, **self.disabled}.values()
        return sorted({p for s in every for p in s.get("profiles") or ()})

    def image(self, service: str) -> str:
        """The service's image, or the name compose gives the image it builds."""
        svc = self.services[service]
        return svc.get("image") or f"{self.name}-{service}"

    def to_dict(self) -> dict:
        return ordered({"name": self.name, **self.model})

    def to_yaml(self) -> str:
        from kade.compose.emit import dump_yaml
        return dump_yaml(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def config_hash(self, service: str) -> str:
        return config_hash(self.services[service])


def go_json(value: Any) -> str:
    """encoding/json's bytes for `value`: no spaces, <, > and & escaped as Go does."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def config_hash(service: Service | dict) -> str:
    """The `com.docker.compose.config-hash` label, as compose v2's ServiceHash makes it:
    sha256 of the service's JSON without build, pull_policy, scale, depends_on,
    profiles and deploy.replicas (what changes no container), extensions dropped,
    command and entrypoint present even when null (their JSON tags have no omitempty)."""
    svc = {k: v for k, v in service.items()
           if not k.startswith("x-") and k not in ("build", "pull_policy", "scale",
                                                   "depends_on", "profiles")}
    deploy = svc.get("deploy")
    if isinstance(deploy, dict):
        svc["deploy"] = {k: v for k, v in deploy.items() if k != "replicas"}
    svc.setdefault("command", None)
    svc.setdefault("entrypoint", None)
    body = go_json(ordered(svc, ("services", "_")))
    return hashlib.sha256(body.encode()).hexdigest()
