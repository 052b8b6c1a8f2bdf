"""A container's network as docker shows it (inspect's NetworkSettings, the PORTS and
NETWORKS columns of `ps`), from its record and state. Imports nothing: `ps` is lean."""

from __future__ import annotations

RUNNING = ("running", "paused", "restarting")
_TOP = ("IPAddress", "IPPrefixLen", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
        "IPv6Gateway", "MacAddress", "EndpointID")


def network_settings(record: dict, state: dict) -> dict:
    base = dict(record.get("NetworkSettings") or {})
    live = state.get("Status") in RUNNING and state.get("Net") or {}
    eps = live.get("Endpoints") or {}
    nets = {}
    for name, settings in (base.get("Networks") or {}).items():
        merged = dict(settings)
        for key, value in (eps.get(name) or {}).items():
            if key in merged:
                merged[key] = value
        nets[name] = merged
    out = {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
           "LinkLocalIPv6PrefixLen": 0, "Ports": _ports(record, live) if live else {},
           "SandboxKey": f"/proc/{state.get('Pid')}/ns/net" if live else "",
           "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None}
    bridge = nets.get("bridge") or {}
    for key in _TOP:
        out[key] = bridge.get(key, 0 if key.endswith("Len") else "")
    out["Networks"] = nets
    return out


def _ports(record: dict, live: dict) -> dict:
    ports = {k: None for k in record["Config"].get("ExposedPorts") or {}}
    ports.update(live.get("Ports") or {})
    return ports


def _key(private: str) -> tuple[int, str]:
    number, _, proto = private.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


def ports_column(record: dict, state: dict) -> str:
    """docker's PORTS: `0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp`."""
    live = state.get("Status") in RUNNING and state.get("Net") or {}
    if not live:
        return ""
    parts = []
    ports = _ports(record, live)
    for private in sorted(ports, key=_key):
        bindings = ports[private]
        if not bindings:
            parts.append(private)
            continue
        parts += [f"{b['HostIp']}:{b['HostPort']}->{private}" for b in bindings]
    return ", ".join(parts)


def networks_column(record: dict) -> str:
    nets = (record.get("NetworkSettings") or {}).get("Networks") or {}
    if nets:
        return ",".join(nets)
    mode = record["HostConfig"].get("NetworkMode") or ""
    return "bridge" if mode == "default" else ("" if mode.startswith("container:") else mode)
