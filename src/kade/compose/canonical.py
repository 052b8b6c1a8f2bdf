"""Short syntax to long, as compose-go's transform and Normalize do it.

Every service comes out in one shape, so that the apply layer reads one form:
ports are `{mode, host_ip, target, published, protocol}` mappings, volumes are
`{type, source, target, read_only, bind|volume|tmpfs}`, depends_on is a mapping of
`{condition, restart, required}`, environment/labels/sysctls are mappings of
strings, networks a mapping, build a mapping with an absolute context, command and
entrypoint lists, durations Go's spelling (`1m30s`), byte sizes integers.
Errors name the file and the key path; the caller adds nothing.
"""

from __future__ import annotations

import os
import re
from typing import NoReturn

from kade.compose.merge import to_mapping
from kade.errors import InvalidArgument

Env = dict[str, str]


def fail(where: str, path: str, message: str) -> NoReturn:
    raise InvalidArgument(f"{where}: {path} {message}" if where else f"{path} {message}")


# -- scalars ----------------------------------------------------------------------

def go_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BYTES = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$", re.I)


def to_bytes(value, path: str, where: str) -> str:
    """go-units' RAMInBytes, printed as compose prints a UnitBytes: a decimal string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = go_str(value)
    if re.fullmatch(r"-?\d+", text):
        return text
    m = _BYTES.match(text)
    if not m:
        fail(where, path, f"invalid size: {text!r}")
    return str(int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]))


_DUR_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9,
              "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")


def parse_duration(value, path: str, where: str) -> int:
    """Nanoseconds of a Go duration (`1m30s`, `500ms`; `d` and `w` as str2duration)."""
    text = go_str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 10**9)
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    total, pos = 0, 0
    for m in _DUR.finditer(body):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _DUR_UNITS[m.group(2)])
        pos = m.end()
    if pos != len(body) or not body:
        if body == "0":
            return 0
        fail(where, path, f"invalid duration: {text!r}")
    return sign * total


def format_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if ns >= size:
                return sign + _frac(ns, size) + unit
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _frac(rest, 10**9) + "s"


def _frac(n: int, size: int) -> str:
    whole, part = divmod(n, size)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def duration(value, path: str, where: str) -> str:
    return format_duration(parse_duration(value, path, where))


# -- ports ------------------------------------------------------------------------

_PORT = re.compile(r"^(?:(?:(\[[^\]]*\]|[^:\[\]]*):)?([0-9]*(?:-[0-9]+)?):)?"
                   r"([0-9]+(?:-[0-9]+)?)(?:/([a-zA-Z]+))?$")


def parse_ports(spec: str, path: str, where: str) -> list[dict]:
    """docker's nat.ParsePortSpecs: `[ip:][published:]target[/proto]`, ranges included."""
    m = _PORT.match(spec)
    if not m:
        fail(where, path, f"invalid port specification: {spec!r}")
    ip, published, target, proto = m.group(1) or "", m.group(2) or "", m.group(3), m.group(4)
    ip = ip[1:-1] if ip.startswith("[") else ip
    targets = _range(target, spec, path, where)
    hosts = _range(published, spec, path, where) if published else []
    if hosts and len(hosts) != len(targets) and len(targets) != 1:
        fail(where, path, f"invalid ranges specified for container and host ports: {spec!r}")
    out = []
    for i, t in enumerate(targets):
        if not hosts:
            pub = ""
        elif len(targets) == 1 and len(hosts) > 1:
            pub = published
        else:
            pub = str(hosts[i])
        port = {"mode": "ingress", "host_ip": ip, "target": t, "published": pub,
                "protocol": (proto or "tcp").lower()}
        out.append({k: v for k, v in port.items() if v != ""})
    return out


def _range(text: str, spec: str, path: str, where: str) -> list[int]:
    lo, _, hi = text.partition("-")
    start, end = int(lo), int(hi or lo)
    if end < start or end > 65535:
        fail(where, path, f"invalid port specification: {spec!r}")
    return list(range(start, end + 1))


def _port_long(port: dict, path: str, where: str) -> dict:
    out = dict(port)
    try:
        out["target"] = int(port["target"])
    except (KeyError, TypeError, ValueError):
        fail(where, path + ".target", f"invalid port: {port.get('target')!r}")
    if "published" in out:
        out["published"] = go_str(out["published"])
    out.setdefault("protocol", "tcp")
    out.setdefault("mode", "ingress")
    return out


# -- volumes ----------------------------------------------------------------------

_BIND_OPTS = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}


def parse_volume(spec: str, path: str = "", where: str = "") -> dict:
    """compose-go's format.ParseVolume: `[source:]target[:options]`."""
    if not spec:
        fail(where, path, "invalid empty volume spec")
    parts = spec.split(":")
    if len(parts) > 3 or any(p == "" for p in parts):
        fail(where, path, f"invalid spec: {spec}: "
             + ("too many colons" if len(parts) > 3 else "empty section between colons"))
    vol: dict = {}
    if len(parts) == 1:
        vol = {"type": "volume", "target": spec}
        return vol
    vol["source"], vol["target"] = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    bind: dict = {}
    if "ro" in opts:
        vol["read_only"] = True
    for opt in opts:
        if opt in _BIND_OPTS:
            bind["propagation"] = opt
        elif opt in ("z", "Z"):
            bind["selinux"] = opt
    if vol["source"][:1] in (".", "/", "~"):
        vol["type"] = "bind"
        vol["bind"] = {**bind, "create_host_path": True}
    else:
        vol["type"] = "volume"
        vol["volume"] = {"nocopy": True} if "nocopy" in opts else {}
    return {k: vol[k] for k in ("type", "source", "target", "read_only", "bind", "volume")
            if k in vol}


def host_path(source: str, base: str) -> str:
    if source.startswith("~"):
        source = os.path.expanduser(source)
    return os.path.normpath(os.path.join(base, source))


def _volume_long(vol, path: str, where: str, base: str) -> dict:
    vol = parse_volume(vol, path, where) if isinstance(vol, str) else dict(vol)
    if vol.get("type") == "bind" and "source" in vol:
        vol["source"] = host_path(vol["source"], base)
        vol["bind"] = {"create_host_path": True, **(vol.get("bind") or {})}
    if vol.get("type") == "volume" and "source" in vol:
        vol.setdefault("volume", {})
    if "target" in vol:
        vol["target"] = os.path.normpath(vol["target"]).replace("//", "/")
    if isinstance(vol.get("tmpfs"), dict) and "size" in vol["tmpfs"]:
        vol["tmpfs"] = {**vol["tmpfs"],
                        "size": int(to_bytes(vol["tmpfs"]["size"], path, where))}
    return vol


# -- a service ----------------------------------------------------------------------

def key_values(value, lookup, keep_unset: bool) -> dict:
    """A list of `KEY=VALUE` (or a map) as a map of strings; a bare `KEY` (or a null
    value) takes the environment's value, or stays null when `keep_unset`."""
    out: dict = {}
    items = value.items() if isinstance(value, dict) else (
        (e.partition("=")[0], e.partition("=")[2] if "=" in e else None) for e in value)
    for k, v in items:
        if v is None:
            v = lookup(k)
            if v is None and not keep_unset:
                continue
        out[k] = None if v is None else go_str(v)
    return out


def _command(value, path: str, where: str):
    if isinstance(value, str):
        import shlex
        try:
            return shlex.split(value)
        except ValueError as e:
            fail(where, path, f"invalid command line {value!r}: {e}")
    return value


def _healthcheck(hc: dict, path: str, where: str) -> dict:
    hc = dict(hc)
    if isinstance(hc.get("test"), str):
        hc["test"] = ["CMD-SHELL", hc["test"]]
    for key in ("timeout", "interval", "start_period", "start_interval"):
        if key in hc:
            hc[key] = duration(hc[key], f"{path}.{key}", where)
    return hc


def _deploy(deploy: dict, path: str, where: str) -> dict:
    deploy = dict(deploy)
    res = deploy.get("resources")
    if isinstance(res, dict):
        res = dict(res)
        for kind in ("limits", "reservations"):
            if isinstance(res.get(kind), dict):
                r = dict(res[kind])
                if "memory" in r:
                    r["memory"] = to_bytes(r["memory"], f"{path}.resources.{kind}.memory", where)
                if "cpus" in r:
                    r["cpus"] = float(r["cpus"])
                res[kind] = r
        deploy["resources"] = res
    rp = deploy.get("restart_policy")
    if isinstance(rp, dict):
        deploy["restart_policy"] = {k: duration(v, f"{path}.restart_policy.{k}", where)
                                    if k in ("delay", "window") else v for k, v in rp.items()}
    return deploy


def _file_refs(entries: list) -> list:
    out = []
    for e in entries:
        e = {"source": e} if isinstance(e, str) else dict(e)
        if "mode" in e:  # a FileMode prints as Go's "0%o"
            mode = e["mode"]
            mode = int(mode, 8) if isinstance(mode, str) else int(mode)
            e["mode"] = f"0{mode:o}"
        out.append(e)
    return out


def _extra_hosts(value) -> list:
    if isinstance(value, dict):
        pairs = [(h, ip) for h, ips in value.items()
                 for ip in (ips if isinstance(ips, list) else [ips])]
    else:
        pairs = []
        for entry in value:
            sep = "=" if "=" in entry else ":"
            pairs.append(tuple(entry.split(sep, 1)))
    return sorted(f"{h}={ip}" for h, ip in pairs)


def _devices(entries: list) -> list:
    out = []
    for e in entries:
        if isinstance(e, dict):
            out.append(e)
            continue
        parts = e.split(":")
        dev = {"source": parts[0], "target": parts[1] if len(parts) > 1 else parts[0],
               "permissions": parts[2] if len(parts) > 2 else "rwm"}
        out.append(dev)
    return out


def _env_files(value, base: str) -> list:
    entries = [value] if isinstance(value, str) else value
    out = []
    for e in entries:
        e = {"path": e} if isinstance(e, str) else dict(e)
        e["path"] = host_path(e["path"], base)
        e.setdefault("required", True)
        out.append(e)
    return out


def _build(build, base: str, lookup) -> dict:
    build = {"context": build} if isinstance(build, str) else dict(build)
    context = go_str(build.get("context") or ".")
    if not re.match(r"^[a-z]+://|^git@|^github\.com/", context):
        context = host_path(context, base)
    build["context"] = context
    if "dockerfile" not in build and "dockerfile_inline" not in build:
        build["dockerfile"] = "Dockerfile"
    if "args" in build:
        build["args"] = key_values(build["args"], lookup, keep_unset=False)
    if "labels" in build:
        build["labels"] = key_values(build["labels"], lambda k: "", keep_unset=True)
    if "shm_size" in build:
        build["shm_size"] = to_bytes(build["shm_size"], "build.shm_size", "")
    if "extra_hosts" in build:
        build["extra_hosts"] = _extra_hosts(build["extra_hosts"])
    return build


_BYTE_KEYS = ("mem_limit", "mem_reservation", "memswap_limit", "shm_size")
_MAPS = ("labels", "annotations", "sysctls")


def service(name: str, svc: dict, base: str, lookup, where: str) -> dict:
    """One service in canonical form; `base` resolves its relative paths."""
    p = f"services.{name}"
    svc = dict(svc)
    if "build" in svc:
        svc["build"] = _build(svc["build"], base, lookup)
    for key in ("command", "entrypoint"):
        if key in svc:
            svc[key] = _command(svc[key], f"{p}.{key}", where)
    if "env_file" in svc:
        svc["env_file"] = _env_files(svc["env_file"], base)
    if "environment" in svc:
        svc["environment"] = key_values(svc["environment"], lookup, keep_unset=True)
    for key in _MAPS:
        if key in svc:
            svc[key] = key_values(svc[key], lambda k: "", keep_unset=True)
    if "ports" in svc:
        svc["ports"] = _ports(svc["ports"], p, where)
    if "expose" in svc:
        svc["expose"] = [go_str(e) for e in svc["expose"]]
    if "volumes" in svc:
        svc["volumes"] = [_volume_long(v, f"{p}.volumes.{i}", where, base)
                          for i, v in enumerate(svc["volumes"])]
    for key in ("tmpfs", "dns", "dns_search"):
        if isinstance(svc.get(key), str):
            svc[key] = [svc[key]]
    if "depends_on" in svc:
        svc["depends_on"] = _depends_on(svc["depends_on"])
    if "networks" in svc:
        svc["networks"] = to_mapping(svc["networks"], None)
    for key in ("secrets", "configs"):
        if key in svc:
            svc[key] = _file_refs(svc[key])
    _service_scalars(svc, p, where)
    return svc


def _service_scalars(svc: dict, p: str, where: str) -> None:
    if "healthcheck" in svc:
        svc["healthcheck"] = _healthcheck(svc["healthcheck"], f"{p}.healthcheck", where)
    if "deploy" in svc:
        svc["deploy"] = _deploy(svc["deploy"], f"{p}.deploy", where)
    if "stop_grace_period" in svc:
        svc["stop_grace_period"] = duration(svc["stop_grace_period"],
                                            f"{p}.stop_grace_period", where)
    for key in _BYTE_KEYS:
        if key in svc:
            svc[key] = to_bytes(svc[key], f"{p}.{key}", where)
    if "cpus" in svc:
        svc["cpus"] = float(svc["cpus"])
    if "extra_hosts" in svc:
        svc["extra_hosts"] = _extra_hosts(svc["extra_hosts"])
    if "devices" in svc:
        svc["devices"] = _devices(svc["devices"])
    if svc.get("pull_policy") == "if_not_present":
        svc["pull_policy"] = "missing"


def _ports(entries: list, p: str, where: str) -> list:
    out: list = []
    for i, e in enumerate(entries):
        path = f"{p}.ports.{i}"
        if isinstance(e, dict):
            out.append(_port_long(e, path, where))
        else:
            out += parse_ports(go_str(e), path, where)
    return out


def _depends_on(value) -> dict:
    deps = to_mapping(value, {"condition": "service_started", "required": True})
    out = {}
    for name, dep in deps.items():
        dep = dict(dep or {})
        dep.setdefault("condition", "service_started")
        dep.setdefault("required", True)
        out[name] = dep
    return out


# -- the project --------------------------------------------------------------------

def resource(kind: str, key: str, value, project: str, base: str) -> dict:
    """A top-level network/volume/secret/config with its name, as compose names it."""
    res = dict(value or {})
    ext = res.get("external")
    if isinstance(ext, dict):  # the deprecated `external: {name: x}`
        res["external"] = True
        res.setdefault("name", ext.get("name") or key)
    if kind in ("secrets", "configs") and "file" in res:
        res["file"] = host_path(res["file"], base)
    if "labels" in res:
        res["labels"] = key_values(res["labels"], lambda k: "", keep_unset=True)
    if res.get("name") is None:
        res["name"] = key if res.get("external") is True else f"{project}_{key}"
    return res


def default_network(model: dict) -> None:
    """Services without networks (and without network_mode) join `default`."""
    uses_default = False
    for svc in model.get("services", {}).values():
        if "network_mode" in svc or "provider" in svc:
            continue
        if not svc.get("networks"):
            svc["networks"] = {"default": None}
        uses_default = uses_default or "default" in svc["networks"]
    networks = model.setdefault("networks", {})
    if uses_default and "default" not in networks:
        networks["default"] = None
    if not networks:
        del model["networks"]
