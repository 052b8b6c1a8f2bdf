"""`POST /containers/create`'s body -> the engine's CreateOptions.

The API spelling of `kade run`'s flags (kade.cli.run.options_from): syntax only,
every policy is the engine's. Structured values (PortBindings, Mounts, Devices,
Ulimits, RestartPolicy) are written in the flags' text form and parsed by the
same parsers the CLI uses, so both front doors accept and refuse the same.
"""

from __future__ import annotations

from typing import Any

from kade.errors import InvalidArgument

# HostConfig fields Kade cannot honour are refused, not silently dropped
_UNSUPPORTED_NONZERO = ("CpusetCpus", "CpusetMems", "BlkioWeight", "CpuPeriod", "CpuQuota",
                        "CpuRealtimePeriod", "CpuRealtimeRuntime", "KernelMemory",
                        "MemoryReservation", "OomScoreAdj", "IpcMode", "PidMode", "UTSMode",
                        "UsernsMode", "Cgroup", "CgroupParent", "VolumesFrom", "Sysctls",
                        "StorageOpt", "GroupAdd", "ShmSize")


def options(body: Any, name: str | None):
    from kade.engine.options import CreateOptions
    if not isinstance(body, dict):
        raise InvalidArgument("config cannot be empty in order to create a container")
    host = _dict(body.get("HostConfig"), "HostConfig")
    net = _dict(body.get("NetworkingConfig"), "NetworkingConfig")
    image = body.get("Image")
    if not image or not isinstance(image, str):
        raise InvalidArgument("no image specified" if not image else "Image must be a string")
    _refuse_unsupported(host)
    network, aliases, ip, ip6 = _network(host, net)
    return CreateOptions(
        image=image, command=_strings(body.get("Cmd"), "Cmd", True), name=name or None,
        entrypoint=_strings(body.get("Entrypoint"), "Entrypoint", True) if
        body.get("Entrypoint") is not None else None,
        env=_strings(body.get("Env"), "Env"), workdir=body.get("WorkingDir") or None,
        user=body.get("User") or None, hostname=body.get("Hostname") or None,
        labels=_dict(body.get("Labels"), "Labels"), tty=bool(body.get("Tty")),
        interactive=bool(body.get("OpenStdin")), auto_remove=bool(host.get("AutoRemove")),
        init=bool(host.get("Init")), read_only=bool(host.get("ReadonlyRootfs")),
        privileged=bool(host.get("Privileged")),
        cap_add=_strings(host.get("CapAdd"), "CapAdd"),
        cap_drop=_strings(host.get("CapDrop"), "CapDrop"),
        security_opt=_strings(host.get("SecurityOpt"), "SecurityOpt"),
        restart=_restart(host.get("RestartPolicy")), mounts=_mounts(host),
        network=network, ulimits=_ulimits(host.get("Ulimits")),
        stop_signal=body.get("StopSignal") or None, stop_timeout=body.get("StopTimeout"),
        add_hosts=_strings(host.get("ExtraHosts"), "ExtraHosts"),
        dns=_strings(host.get("Dns"), "Dns"), dns_search=_strings(host.get("DnsSearch"),
                                                                   "DnsSearch"),
        dns_options=_strings(host.get("DnsOptions"), "DnsOptions"),
        network_aliases=aliases, ip=ip, ip6=ip6, mac_address=body.get("MacAddress") or None,
        links=_strings(host.get("Links"), "Links"), publish=_publish(host.get("PortBindings")),
        publish_all=bool(host.get("PublishAllPorts")),
        expose=sorted(_dict(body.get("ExposedPorts"), "ExposedPorts")),
        memory=_int(host.get("Memory")), memory_swap=_int(host.get("MemorySwap")),
        nano_cpus=_int(host.get("NanoCpus")), cpu_shares=_int(host.get("CpuShares")),
        pids_limit=_int(host.get("PidsLimit")), devices=_devices(host.get("Devices")),
        device_cgroup_rules=_strings(host.get("DeviceCgroupRules"), "DeviceCgroupRules"),
        healthcheck=body.get("Healthcheck") or None, pull="never",
        runtime=_runtime(host.get("Runtime")))


def _refuse_unsupported(host: dict) -> None:
    for key in _UNSUPPORTED_NONZERO:
        value = host.get(key)
        if value and value not in ("private", "shareable"):
            raise InvalidArgument(f"HostConfig.{key} is not supported by Kade (got {value!r})")


def _runtime(value: Any) -> str | None:
    return None if value in (None, "", "runc", "kade") else str(value)


def _dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object")
    return value


def _strings(value: Any, what: str, strslice: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) and strslice:
        return [value]  # docker accepts a string for Cmd and Entrypoint (strslice)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{what} must be a list of strings")
    return list(value)


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"json: cannot unmarshal {type(value).__name__} into an integer "
                              f"field (got {value!r})")
    return value


def _restart(policy: Any) -> str:
    policy = _dict(policy, "RestartPolicy")
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    return f"{name}:{count}" if name == "on-failure" and count else name


def _mounts(host: dict) -> list[dict]:
    from kade.volumes import parse_mount, parse_tmpfs, parse_volume
    out = [parse_volume(b) for b in _strings(host.get("Binds"), "Binds")]
    for m in host.get("Mounts") or []:
        out.append(parse_mount(_mount_text(_dict(m, "Mounts[]"))))
    for path, opts in _dict(host.get("Tmpfs"), "Tmpfs").items():
        out.append(parse_tmpfs(f"{path}:{opts}" if opts else path))
    return out


def _mount_text(m: dict) -> str:
    """A Mounts[] object in --mount's syntax."""
    parts = [f"type={m.get('Type') or 'volume'}"]
    if m.get("Source"):
        parts.append(f"source={m['Source']}")
    parts.append(f"target={m.get('Target') or ''}")
    if m.get("ReadOnly"):
        parts.append("readonly")
    bind = m.get("BindOptions") or {}
    if bind.get("Propagation"):
        parts.append(f"bind-propagation={bind['Propagation']}")
    vol = m.get("VolumeOptions") or {}
    if vol.get("NoCopy"):
        parts.append("volume-nocopy")
    for k, v in (vol.get("Labels") or {}).items():
        parts.append(f"volume-label={k}={v}")
    tmpfs = m.get("TmpfsOptions") or {}
    if tmpfs.get("SizeBytes"):
        parts.append(f"tmpfs-size={tmpfs['SizeBytes']}")
    if tmpfs.get("Mode"):
        parts.append(f"tmpfs-mode={tmpfs['Mode']:o}")
    return ",".join(parts)


def _publish(bindings: Any) -> list[str]:
    """PortBindings {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]} -> -p texts."""
    out = []
    for port, hosts in _dict(bindings, "PortBindings").items():
        for h in hosts or [{}]:
            h = _dict(h, "PortBindings[]")
            ip, hp = h.get("HostIp") or "", h.get("HostPort") or ""
            if ":" in ip:
                ip = f"[{ip}]"
            out.append(f"{ip}:{hp}:{port}" if ip else f"{hp}:{port}" if hp else port)
    return out


def _devices(devices: Any) -> list[str]:
    out = []
    for d in devices or []:
        d = _dict(d, "Devices[]")
        text = d.get("PathOnHost", "")
        if d.get("PathInContainer"):
            text += ":" + d["PathInContainer"]
        if d.get("CgroupPermissions"):
            text += ":" + d["CgroupPermissions"]
        out.append(text)
    return out


def _ulimits(ulimits: Any) -> list[str]:
    out = []
    for u in ulimits or []:
        u = _dict(u, "Ulimits[]")
        out.append(f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}")
    return out


def _network(host: dict, net: dict) -> tuple[str, list[str], str | None, str | None]:
    mode = host.get("NetworkMode") or "default"
    endpoints = _dict(net.get("EndpointsConfig"), "EndpointsConfig")
    ep = _dict(endpoints.get(mode) or (next(iter(endpoints.values())) if endpoints else {}),
               "EndpointsConfig[]")
    ipam = _dict(ep.get("IPAMConfig"), "IPAMConfig")
    return (mode, _strings(ep.get("Aliases"), "Aliases"),
            ipam.get("IPv4Address") or None, ipam.get("IPv6Address") or None)
