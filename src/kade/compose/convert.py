"""A service of a loaded Project -> the engine's create options, with docker
compose's names and `com.docker.compose.*` labels.

Every key a service may hold is either mapped here, accepted with no effect on a
container (`ACCEPTED`), or refused by name: Kade never drops a key silently.
"""

from __future__ import annotations

import os

from kade.errors import InvalidArgument

COMPOSE_VERSION = "2.24.6"  # the docker compose whose behaviour Kade follows

P = "com.docker.compose."
PROJECT, SERVICE, NUMBER, HASH, ONEOFF = (P + "project", P + "service",
                                          P + "container-number", P + "config-hash",
                                          P + "oneoff")
DEPENDS, IMAGE, WORKDIR, FILES, VERSION = (P + "depends_on", P + "image",
                                           P + "project.working_dir",
                                           P + "project.config_files", P + "version")
NETWORK, VOLUME = P + "network", P + "volume"

MAPPED = set(
    "image command entrypoint environment ports expose volumes tmpfs networks network_mode "
    "healthcheck restart deploy container_name hostname user working_dir labels init "
    "read_only cap_add cap_drop privileged security_opt ulimits stop_signal "
    "stop_grace_period extra_hosts dns dns_search dns_opt tty stdin_open mem_limit cpus "
    "pids_limit secrets configs memswap_limit cpu_shares devices mac_address".split())
# keys that shape the project, not one container's options
ACCEPTED = set("build pull_policy depends_on profiles scale logging env_file develop "
               "extends".split())
DEPLOY_KEYS = {"replicas", "resources", "restart_policy"}


def container_name(project, service: str, number: int) -> str:
    svc = project.services[service]
    if svc.get("container_name"):
        return svc["container_name"]
    return f"{project.name}-{service}-{number}"


def check_service(name: str, svc: dict) -> None:
    """Refuse, by name, what Kade cannot honour, before anything is created."""
    for key in svc:
        if key.startswith("x-") or key in MAPPED or key in ACCEPTED:
            continue
        raise InvalidArgument(f'service "{name}": "{key}" is not supported by kade compose')
    for key in svc.get("deploy") or {}:
        if key not in DEPLOY_KEYS:
            raise InvalidArgument(f'service "{name}": "deploy.{key}" is not supported by '
                                  "kade compose")
    driver = (svc.get("logging") or {}).get("driver")
    if driver not in (None, "json-file", "local"):
        raise InvalidArgument(f'service "{name}": logging driver "{driver}" is not '
                              "supported by kade compose (json-file only)")
    if (svc.get("deploy") or {}).get("resources", {}).get("reservations"):
        raise InvalidArgument(f'service "{name}": "deploy.resources.reservations" is not '
                              "supported by kade compose")


def labels(project, service: str, number: int, image_id: str, oneoff: bool = False) -> dict:
    svc = project.services[service]
    deps = ",".join(f"{d}:{c.get('condition', 'service_started')}:"
                    f"{str(bool(c.get('restart', False))).lower()}"
                    for d, c in (svc.get("depends_on") or {}).items())
    return {**(svc.get("labels") or {}),
            PROJECT: project.name, SERVICE: service, NUMBER: str(number),
            HASH: project.config_hash(service), ONEOFF: "True" if oneoff else "False",
            DEPENDS: deps, IMAGE: image_id, WORKDIR: project.working_dir,
            FILES: ",".join(project.config_files), VERSION: COMPOSE_VERSION}


def resource_labels(project, kind: str, key: str, own: dict | None) -> dict:
    return {**(own or {}), PROJECT: project.name,
            (NETWORK if kind == "networks" else VOLUME): key, VERSION: COMPOSE_VERSION}


def create_options(project, service: str, number: int, image_id: str, *,
                   oneoff: bool = False, peers=None) -> tuple[dict, list[dict]]:
    """(CreateOptions keyword arguments, further networks to join before start).
    `peers(service)` names a running container of another service (network_mode)."""
    svc = project.services[service]
    name = container_name(project, service, number)
    opts: dict = {
        "image": svc.get("image") or project.image(service),
        "command": svc.get("command") or [],
        "name": name,
        "env": _env(project, svc),
        "labels": labels(project, service, number, image_id, oneoff),
        "pull": "never" if svc.get("build") and not svc.get("image") else "missing",
    }
    if svc.get("entrypoint") is not None:
        opts["entrypoint"] = svc["entrypoint"] or [""]
    _plain(opts, svc)
    _resources(opts, svc)
    _restart(opts, svc)
    opts["healthcheck"] = healthcheck(svc.get("healthcheck"))
    opts["mounts"] = _mounts(project, service, svc)
    opts["publish"] = [_publish(p) for p in svc.get("ports") or ()]
    opts["expose"] = [str(e) for e in svc.get("expose") or ()]
    return opts, _networks(project, service, svc, opts, peers)


def _env(project, svc: dict) -> list[str]:
    out = []
    for key, value in (svc.get("environment") or {}).items():
        if value is None:
            if key in project.environment:
                out.append(f"{key}={project.environment[key]}")
            continue
        out.append(f"{key}={value}")
    return out


_SAME = {"hostname": "hostname", "user": "user", "working_dir": "workdir", "init": "init",
         "read_only": "read_only", "cap_add": "cap_add", "cap_drop": "cap_drop",
         "privileged": "privileged", "security_opt": "security_opt", "tty": "tty",
         "stdin_open": "interactive", "stop_signal": "stop_signal",
         "dns_search": "dns_search", "dns_opt": "dns_options", "mac_address": "mac_address",
         "cpu_shares": "cpu_shares"}


def _plain(opts: dict, svc: dict) -> None:
    for key, field in _SAME.items():
        if svc.get(key) is not None:
            opts[field] = svc[key]
    if svc.get("dns"):
        opts["dns"] = [svc["dns"]] if isinstance(svc["dns"], str) else list(svc["dns"])
    if svc.get("extra_hosts"):
        opts["add_hosts"] = [h.replace("=", ":", 1) for h in svc["extra_hosts"]]
    if svc.get("stop_grace_period"):
        opts["stop_timeout"] = int(_seconds(svc["stop_grace_period"]))
    if svc.get("ulimits"):
        opts["ulimits"] = [_ulimit(k, v) for k, v in svc["ulimits"].items()]
    if svc.get("devices"):
        opts["devices"] = [d if isinstance(d, str) else
                           ":".join(filter(None, (d["source"], d.get("target"),
                                                  d.get("permissions"))))
                           for d in svc["devices"]]


def _ulimit(name: str, value) -> str:
    if isinstance(value, dict):
        return f"{name}={value['soft']}:{value['hard']}"
    return f"{name}={value}"


def _resources(opts: dict, svc: dict) -> None:
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = svc.get("mem_limit") or limits.get("memory")
    if memory:
        opts["memory"] = int(memory)
    if svc.get("memswap_limit"):
        opts["memory_swap"] = int(svc["memswap_limit"])
    cpus = svc.get("cpus") or limits.get("cpus")
    if cpus:
        opts["nano_cpus"] = int(float(cpus) * 1e9)
    pids = svc.get("pids_limit") or limits.get("pids")
    if pids:
        opts["pids_limit"] = int(pids)


_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


def _restart(opts: dict, svc: dict) -> None:
    policy = (svc.get("deploy") or {}).get("restart_policy")
    if svc.get("restart"):
        opts["restart"] = svc["restart"]
    elif policy:
        restart = _CONDITIONS.get(policy.get("condition", "any"), "always")
        if restart == "on-failure" and policy.get("max_attempts"):
            restart += f":{policy['max_attempts']}"
        opts["restart"] = restart


def _seconds(text) -> float:
    from kade.util.units import parse_duration
    return parse_duration(str(text))


def healthcheck(hc: dict | None) -> dict | None:
    """compose's healthcheck -> docker's HealthConfig (durations in nanoseconds)."""
    if not hc:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out: dict = {}
    if hc.get("test"):
        test = hc["test"]
        out["Test"] = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    for key, field in (("interval", "Interval"), ("timeout", "Timeout"),
                       ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
        if hc.get(key):
            out[field] = int(_seconds(hc[key]) * 1e9)
    if hc.get("retries") is not None:
        out["Retries"] = int(hc["retries"])
    return out


def _publish(port: dict) -> str:
    target = f"{port['target']}/{port.get('protocol') or 'tcp'}"
    published = port.get("published") or ""
    host_ip = port.get("host_ip") or ""
    if host_ip:
        return f"{host_ip}:{published}:{target}"
    return f"{published}:{target}" if published else target


def _mount(kind: str, target: str, source: str = "", readonly: bool = False,
           options: dict | None = None) -> dict:
    return {"type": kind, "target": target, "source": source, "readonly": readonly,
            "options": options or {}}


def _mounts(project, service: str, svc: dict) -> list[dict]:
    out = []
    for v in svc.get("volumes") or ():
        out.append(_volume(project, v))
    from kade.volumes import parse_tmpfs
    tmpfs = svc.get("tmpfs") or []
    for t in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        out.append(parse_tmpfs(t))
    for kind, base in (("secrets", "/run/secrets/"), ("configs", "/")):
        for ref in svc.get(kind) or ():
            out.append(_file_ref(project, service, kind, base, ref))
    return out


def _volume(project, v: dict) -> dict:
    kind, target = v["type"], v["target"]
    readonly = bool(v.get("read_only"))
    if kind == "volume":
        key = v.get("source") or ""
        name = project.resources("volumes")[key]["name"] if key else ""
        nocopy = (v.get("volume") or {}).get("nocopy")
        return _mount("volume", target, name, readonly, {"nocopy": True} if nocopy else {})
    if kind == "bind":
        return _mount("bind", target, v["source"], readonly)
    if kind == "tmpfs":
        t = v.get("tmpfs") or {}
        opts = {k: str(t[k]) for k in ("size", "mode") if k in t}
        return _mount("tmpfs", target, "", readonly, opts)
    raise InvalidArgument(f'volume type "{kind}" at "{target}" is not supported by '
                          "kade compose")


def _file_ref(project, service: str, kind: str, base: str, ref: dict) -> dict:
    key = ref["source"]
    obj = project.resources(kind).get(key) or {}
    if not obj.get("file"):
        raise InvalidArgument(f'service "{service}": {kind[:-1]} "{key}": only file-based '
                              f"{kind} are supported by kade compose")
    target = ref.get("target") or key
    if not target.startswith("/"):
        target = base + target
    if not os.path.exists(obj["file"]):
        raise InvalidArgument(f'{kind[:-1]} "{key}": file "{obj["file"]}" not found')
    return _mount("bind", target, obj["file"], True)


def network_names(project, svc: dict) -> list[str]:
    nets = svc.get("networks") or {}
    return sorted(nets, key=lambda n: (-int((nets[n] or {}).get("priority") or 0), n))


def _networks(project, service: str, svc: dict, opts: dict, peers) -> list[dict]:
    mode = svc.get("network_mode")
    if mode:
        if mode.startswith("service:"):
            mode = "container:" + peers(mode.split(":", 1)[1])
        opts["network"] = mode
        return []
    joins = []
    for key in network_names(project, svc):
        cfg = svc["networks"][key] or {}
        aliases = [service] + list(cfg.get("aliases") or ())
        joins.append({"name": project.resources("networks")[key]["name"],
                      "aliases": aliases, "ip": cfg.get("ipv4_address")})
    if not joins:
        return []
    first = joins.pop(0)
    opts["network"] = first["name"]
    opts["network_aliases"] = first["aliases"]
    opts["ip"] = first["ip"]
    return joins
