"""Container records in docker's inspect shape, built with docker's rules.

The record is what `kade inspect` prints (minus State, which is kept apart
because the monitor rewrites it while the record stays put).
"""

from __future__ import annotations

import os

from kade.errors import InvalidArgument
from kade.util.ids import now_rfc3339

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.engine.options import CreateOptions

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def validate_name(name: str) -> str:
    bare = name[1:] if name.startswith("/") else name
    # docker's ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$, without importing re on every run
    if len(bare) < 2 or not (bare[0].isascii() and bare[0].isalnum()) or \
            not set(bare) <= _NAME_CHARS:
        raise InvalidArgument(f"invalid container name ({name}), only "
                              "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def parse_restart(text: str) -> dict:
    name, _, count = (text or "no").partition(":")
    if name not in _POLICIES:
        raise InvalidArgument(f"invalid restart policy: {text}")
    if count and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise InvalidArgument(f"invalid restart policy format: {text}") from None
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": retries}


def command_of(opts: CreateOptions, image_config: dict) -> list[str]:
    """Docker's ENTRYPOINT/CMD rules: --entrypoint drops the image's CMD."""
    if opts.entrypoint is not None:
        entrypoint = [a for a in opts.entrypoint if a != ""] if opts.entrypoint != [""] else []
        cmd = list(opts.command)
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = list(opts.command) or list(image_config.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise InvalidArgument("no command specified")
    return argv


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in list(image_env or []) + _expand_env(user_env):
        key, _, value = item.partition("=")
        env.pop(key, None)
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def _expand_env(items: list[str]) -> list[str]:
    out = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:  # `-e NAME` passes the caller's value through
            out.append(f"{item}={os.environ[item]}")
    return out


def new_record(cid: str, name: str, image_id: str, opts: CreateOptions,
               image_config: dict, root: str) -> dict:
    argv = command_of(opts, image_config)
    if opts.auto_remove and opts.restart not in ("", "no"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    restart = parse_restart(opts.restart)
    _check_start_options(opts)
    bundle = os.path.join(root, "containers", cid)
    config = {
        "Hostname": opts.hostname or cid[:12], "Domainname": "",
        "User": opts.user if opts.user is not None else image_config.get("User", ""),
        "AttachStdin": opts.interactive, "AttachStdout": True, "AttachStderr": True,
        "Tty": opts.tty, "OpenStdin": opts.interactive, "StdinOnce": opts.interactive,
        "Env": merge_env(image_config.get("Env") or [], opts.env),
        "Cmd": list(opts.command) or (None if opts.entrypoint is not None
                                      else image_config.get("Cmd")),
        "Image": opts.image, "Volumes": image_config.get("Volumes"),
        "WorkingDir": opts.workdir or image_config.get("WorkingDir", ""),
        "Entrypoint": (opts.entrypoint if opts.entrypoint is not None
                       else image_config.get("Entrypoint")),
        "OnBuild": None,
        "Labels": {**(image_config.get("Labels") or {}), **opts.labels},
        "StopSignal": opts.stop_signal or image_config.get("StopSignal") or "SIGTERM",
    }
    exposed = _exposed(opts, image_config)
    if exposed:
        config["ExposedPorts"] = exposed
    if opts.mac_address:
        config["MacAddress"] = opts.mac_address
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout
    health = opts.healthcheck or image_config.get("Healthcheck")
    if health:
        config["Healthcheck"] = health
    return {
        "Id": cid, "Created": now_rfc3339(), "Path": argv[0], "Args": argv[1:],
        "Image": image_id, "ResolvConfPath": f"{bundle}/resolv.conf",
        "HostnamePath": f"{bundle}/hostname", "HostsPath": f"{bundle}/hosts",
        "LogPath": f"{bundle}/{cid}-json.log", "Name": "/" + name, "RestartCount": 0,
        "Driver": "", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": host_config(opts, restart),
        "Mounts": [], "Config": config,
        "NetworkSettings": {"Networks": {}, "Ports": {}, "SandboxKey": "",
                            "IPAddress": "", "Gateway": "", "MacAddress": ""},
    }


def host_config(opts: CreateOptions, restart: dict) -> dict:
    return {
        "Binds": [f"{m['source']}:{m['target']}" + (":ro" if m["readonly"] else "")
                  for m in opts.mounts if m["type"] == "bind"] or None,
        "NetworkMode": opts.network, "RestartPolicy": restart,
        "AutoRemove": opts.auto_remove, "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None, "Dns": opts.dns, "ExtraHosts": opts.add_hosts or None,
        "Privileged": opts.privileged, "ReadonlyRootfs": opts.read_only,
        "SecurityOpt": opts.security_opt or None,
        "Tmpfs": {m["target"]: m["options"].get("raw", "") for m in opts.mounts
                  if m["type"] == "tmpfs"} or None,
        "Memory": opts.memory, "MemorySwap": opts.memory_swap, "NanoCpus": opts.nano_cpus,
        "CpuShares": opts.cpu_shares, "PidsLimit": opts.pids_limit or None,
        "Ulimits": [_ulimit(u) for u in opts.ulimits] or None, "Init": opts.init or None,
        "Runtime": _runtime(opts),
        "PortBindings": _port_bindings(opts.publish), "PublishAllPorts": opts.publish_all,
        "Links": list(opts.links) or None, "DnsSearch": opts.dns_search,
        "DnsOptions": opts.dns_options,
        "Devices": _devices(opts.devices),
        "DeviceCgroupRules": _device_cgroup_rules(opts.device_cgroup_rules),
        "Mounts": [{"Type": m["type"], "Source": m["source"], "Target": m["target"],
                    "ReadOnly": m["readonly"]} for m in opts.mounts if m["type"] != "bind"]
        or None,
    }


def _port_bindings(publish: list[str]) -> dict:
    if not publish:
        return {}
    from kade.network import ports
    return ports.to_port_bindings(ports.parse_publish(publish))


def _exposed(opts: CreateOptions, image_config: dict) -> dict:
    """Config.ExposedPorts: the image's, --expose's and every -p's container port."""
    keys = list(image_config.get("ExposedPorts") or {})
    if opts.expose or opts.publish:
        from kade.network import ports
        keys += ports.parse_expose(opts.expose)
        keys += ports.exposed_ports(ports.parse_publish(opts.publish))
    return {k: {} for k in keys}


def _devices(values: list[str]) -> list[dict]:
    if not values:
        return []
    from kade.engine import devices
    mappings = [devices.parse_mapping(v) for v in values]
    for m in mappings:         # refused now, not at start: a bad create leaves nothing
        devices.from_host(m)
    return mappings


def _device_cgroup_rules(values: list[str]) -> list[str] | None:
    if values:
        from kade.engine import devices
        for v in values:
            devices.parse_cgroup_rule(v)
    return list(values) or None


def _ulimit(text: str) -> dict:
    name, sep, values = text.partition("=")
    if not sep or not name:
        raise InvalidArgument(f'invalid ulimit argument: "{text}"')
    soft, _, hard = values.partition(":")
    try:
        s = int(soft)
        h = int(hard) if hard else s
    except ValueError:
        raise InvalidArgument(f'invalid ulimit argument: "{text}"') from None
    if s > h:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: "
                              f"{s} > {h}")
    return {"Name": name, "Soft": s, "Hard": h}


def initial_state() -> dict:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}


def _runtime(opts: CreateOptions) -> str:
    if not opts.runtime or opts.runtime == "kade":
        return "kade"
    from kade.engine import external
    return external.check(opts.runtime, opts.tty)


def extra_host(item: str) -> tuple[str, str]:
    """An --add-host "NAME:IP" as (name, address), or docker's error for it."""
    name, sep, addr = item.partition(":")
    if not sep or not name or not addr:
        raise InvalidArgument(f'invalid argument "{item}" for "--add-host" flag: '
                              f'bad format for add-host: "{item}"')
    if addr != "host-gateway" and not _is_ip(addr.strip("[]")):
        raise InvalidArgument(f'invalid argument "{item}" for "--add-host" flag: '
                              f'invalid IP address in add-host: "{addr}"')
    return name, addr


def check_env(items: list[str]) -> None:
    """docker's ValidateEnv: a name is needed, and no NUL can reach execve."""
    for item in items:
        if item.startswith("=") or "\0" in item:
            raise InvalidArgument(f"invalid environment variable: {item}")


def _check_start_options(opts: CreateOptions) -> None:
    """What would only fail when the container starts, refused now: a bad create
    must leave nothing behind."""
    from kade.oci import defaults
    defaults.resolve(opts.cap_add, opts.cap_drop, opts.privileged)
    _check_resources(opts)
    check_env(opts.env)
    if opts.workdir and not opts.workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{opts.workdir}' is invalid, it needs "
                              "to be an absolute path")
    if opts.stop_signal:
        from kade.engine.signals import parse_signal
        try:
            parse_signal(opts.stop_signal)
        except InvalidArgument:
            raise InvalidArgument(f"Invalid signal: {opts.stop_signal}") from None
    for item in opts.dns:
        if not _is_ip(item):
            raise InvalidArgument(f'invalid argument "{item}" for "--dns" flag: '
                                  f"{item} is not an ip address")
    for item in opts.add_hosts:
        extra_host(item)
    _check_network_options(opts)
    for opt in opts.security_opt:
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key not in ("seccomp", "no-new-privileges", "apparmor", "label"):
            raise InvalidArgument(f'invalid --security-opt: "{opt}"')
        if key == "seccomp" and value != "unconfined" and not os.path.isfile(value):
            raise InvalidArgument(f'opening seccomp profile ("{value}") failed: '
                                  "no such file or directory")


def _check_network_options(opts: CreateOptions) -> None:
    for value, version in ((opts.ip, 4), (opts.ip6, 6)):
        if value:
            import ipaddress
            try:
                if ipaddress.ip_address(value).version != version:
                    raise ValueError
            except ValueError:
                raise InvalidArgument(f"invalid IPv{version} address: {value}") from None
    if opts.mac_address:
        parts = opts.mac_address.split(":")
        if len(parts) != 6 or not all(len(p) == 2 and all(
                c in "0123456789abcdefABCDEF" for c in p) for p in parts):
            raise InvalidArgument(f"{opts.mac_address} is not a valid mac address")
    mode = opts.network or "default"
    if mode == "host" and (opts.links or opts.mac_address):
        raise InvalidArgument("conflicting options: host type networking can't be used with "
                              "links. This would result in undefined behavior" if opts.links
                              else "conflicting options: mac-address and the network mode")
    if mode.startswith("container:"):
        _check_container_mode(opts)
    for link in opts.links:
        name, _, alias = link.partition(":")
        if not name:
            raise InvalidArgument(f"invalid argument \"{link}\" for \"--link\" flag")


# docker 20.10's runconfig validateNetContainerMode, in its order
_CONTAINER_MODE_CONFLICTS = (
    ("hostname", "conflicting options: hostname and the network mode"),
    ("links", "conflicting options: container type network can't be used with links. "
              "This would result in undefined behavior"),
    ("dns", "conflicting options: dns and the network mode"),
    ("add_hosts", "conflicting options: custom host-to-IP mapping and the network mode"),
    ("mac_address", "conflicting options: mac-address and the network mode"),
    ("publish", "conflicting options: port publishing and the container type network mode"),
    ("expose", "conflicting options: port exposing and the container type network mode"),
)


def _check_container_mode(opts) -> None:
    """`--network container:X` shares X's namespace, hostname and /etc files: what
    would set them is refused."""
    for field, message in _CONTAINER_MODE_CONFLICTS:
        if getattr(opts, field, None) or (field == "publish" and opts.publish_all):
            raise InvalidArgument(message)


def _is_ip(text: str) -> bool:
    import ipaddress  # only when --dns or --add-host is given
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


MIN_MEMORY = 6 * 1024 * 1024  # docker's linuxMinMemory


def _check_resources(opts: CreateOptions) -> None:
    """docker's verifyPlatformContainerResources, in its words."""
    if opts.memory and opts.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if opts.memory > 0 and opts.memory_swap > 0 and opts.memory_swap < opts.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if not opts.memory and opts.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    cpus = os.cpu_count() or 1
    if opts.nano_cpus and not 10_000_000 <= opts.nano_cpus <= cpus * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {cpus}.00, as there are only "
                              f"{cpus} CPUs available")
