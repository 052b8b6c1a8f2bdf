"""Merging compose files (`-f a -f b`, and a service over the one it extends), with
the Compose Specification's rules as compose-go's override package applies them:

- mappings merge key by key; a scalar of the later file wins;
- sequences are appended, then de-duplicated by what identifies an entry (ports by
  `ip:published:target/proto`, volumes and devices by target, secrets and configs by
  their mount path, environment/labels/... by key, expose/dns/cap_add/... by value);
- a few keys follow their own rule: `command`, `entrypoint` and `healthcheck.test`
  are replaced; environment, labels, sysctls, build args, ... may be lists or maps in
  either file (a map becomes a sorted `KEY=VALUE` list first); depends_on and
  networks may be lists or maps; `build` may be a string (its context);
  `logging` merges only when the driver is the same; `extra_hosts` appends new hosts;
- a later file's `!reset` removes the key, `!override` replaces it unmerged.
"""

from __future__ import annotations

from kade.compose.interpolate import matches
from kade.compose.yamlfile import RESET, Override, Reset
from kade.errors import InvalidArgument


def merge(base, other, path: tuple = ()):
    """`other` merged onto `base` (neither is changed)."""
    if isinstance(other, Reset):
        return RESET
    if isinstance(other, Override):
        return strip(other.value)
    if base is None or isinstance(base, Reset):
        return strip(other)
    if other is None:
        return base
    special = _special(path)
    if special is not None:
        return special(base, other, path)
    if isinstance(base, dict):
        if not isinstance(other, dict):
            raise InvalidArgument(f"cannot override {_dotted(path)}")
        return merge_mappings(base, other, path)
    if isinstance(base, list):
        if not isinstance(other, list):
            raise InvalidArgument(f"cannot override {_dotted(path)}")
        return base + strip(other)
    return strip(other)


def merge_mappings(base: dict, other: dict, path: tuple) -> dict:
    out = dict(base)
    for key, value in other.items():
        merged = merge(out.get(key), value, path + (key,)) if key in out else strip(value)
        if merged is RESET:
            out.pop(key, None)
        else:
            out[key] = merged
    return out


def strip(value):
    """`value` without markers: a `!reset` key goes, an `!override` is its value."""
    if isinstance(value, Override):
        return strip(value.value)
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip(v) for v in value if not isinstance(v, Reset)]
    return value


def _dotted(path: tuple) -> str:
    return ".".join(str(k) for k in path)


# -- the special rules ----------------------------------------------------------

def to_sequence(value) -> list:
    """A list, or a map made a `KEY=VALUE` list sorted as compose-go sorts it."""
    if isinstance(value, dict):
        seq = []
        for k, v in value.items():
            if v is None:
                seq.append(k)
            elif isinstance(v, list):
                seq += [f"{k}={_go_str(x)}" for x in v]
            else:
                seq.append(f"{k}={_go_str(v)}")
        return sorted(seq)
    if isinstance(value, list):
        return list(value)
    return [value]


def _go_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_mapping(value, default: dict | None) -> dict:
    if isinstance(value, dict):
        return dict(value)
    return {k: (dict(default) if default else None) for k in value or ()}


def _sequence(base, other, path):
    left = to_sequence(base)
    if isinstance(other, dict):  # `KEY: !reset` drops KEY from what came before
        gone = {k for k, v in other.items() if isinstance(v, Reset)}
        left = [e for e in left if _key_value(e) not in gone]
    return left + to_sequence(strip(other))


def _override(base, other, path):
    return strip(other)


def _build(base, other, path):
    def as_map(v):
        return {"context": v} if isinstance(v, str) else v
    return merge_mappings(as_map(base), as_map(other), path)


_DEP = {"condition": "service_started", "required": True}


def _depends_on(base, other, path):
    return merge_mappings(to_mapping(base, _DEP), to_mapping(other, _DEP), path)


def _networks(base, other, path):
    return merge_mappings(to_mapping(base, None), to_mapping(other, None), path)


def _extra_hosts(base, other, path):
    left = to_sequence(base)
    return left + [h for h in to_sequence(strip(other)) if h not in left]


def _logging(base, other, path):
    if not isinstance(base, dict) or not isinstance(other, dict):
        return strip(other)
    if "driver" in base and "driver" in other and base["driver"] != other["driver"]:
        return strip(other)
    return merge_mappings(base, other, path)


def _ulimit(base, other, path):
    if isinstance(base, dict) and isinstance(other, dict):
        return merge_mappings(base, other, path)
    return strip(other)


SPECIALS = {
    "services.*.build": _build,
    "services.*.command": _override,
    "services.*.entrypoint": _override,
    "services.*.healthcheck.test": _override,
    "services.*.depends_on": _depends_on,
    "services.*.networks": _networks,
    "services.*.models": _networks,
    "services.*.extra_hosts": _extra_hosts,
    "services.*.build.extra_hosts": _extra_hosts,
    "services.*.logging": _logging,
    "services.*.ulimits.*": _ulimit,
    **{p: _sequence for p in (
        "networks.*.labels", "volumes.*.labels", "services.*.annotations",
        "services.*.build.args", "services.*.build.additional_contexts",
        "services.*.build.labels", "services.*.deploy.labels", "services.*.dns",
        "services.*.dns_opt", "services.*.dns_search", "services.*.env_file",
        "services.*.label_file", "services.*.environment", "services.*.labels",
        "services.*.volumes.[].volume.labels", "services.*.sysctls", "services.*.tmpfs")},
}


def _special(path: tuple):
    if not path:
        return None
    for pattern, fn in SPECIALS.items():
        if matches(path, pattern):
            return fn
    return None


# -- unicity: a later entry replaces an earlier one with the same identity ------

def _key_value(entry) -> str:
    return entry.partition("=")[0] if isinstance(entry, str) else repr(entry)


def _volume_target(entry) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target"))
    from kade.compose.canonical import parse_volume
    return parse_volume(str(entry)).get("target", "")


def _device_target(entry) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target"))
    parts = str(entry).split(":")
    return parts[0] if len(parts) == 1 else parts[1]


def _mount(default: str):
    def key(entry) -> str:
        if isinstance(entry, dict):
            return str(entry.get("target") or f"{default}/{entry.get('source')}")
        return f"{default}/{entry}"
    return key


def _port(entry) -> str:
    if isinstance(entry, dict):
        return (f"{entry.get('host_ip', '0.0.0.0')}:{entry.get('published', '')}:"
                f"{entry.get('target')}/{entry.get('protocol', 'tcp')}")
    return str(entry)


def _env_file(entry) -> str:
    return str(entry.get("path")) if isinstance(entry, dict) else str(entry)


UNIQUE = {
    **{p: _key_value for p in (
        "networks.*.labels", "networks.*.ipam.options", "services.*.annotations",
        "services.*.build.args", "services.*.build.additional_contexts",
        "services.*.build.platforms", "services.*.build.tags", "services.*.build.labels",
        "services.*.cap_add", "services.*.cap_drop", "services.*.deploy.labels",
        "services.*.dns", "services.*.dns_opt", "services.*.dns_search",
        "services.*.environment", "services.*.labels", "services.*.links",
        "services.*.networks.*.aliases", "services.*.networks.*.link_local_ips",
        "services.*.profiles", "services.*.sysctls", "services.*.tmpfs")},
    "services.*.expose": str,
    "services.*.ports": _port,
    "services.*.volumes": _volume_target,
    "services.*.devices": _device_target,
    "services.*.secrets": _mount("/run/secrets"),
    "services.*.configs": _mount(""),
    "services.*.env_file": _env_file,
}


def enforce_unicity(value, path: tuple = ()):
    if isinstance(value, dict):
        return {k: enforce_unicity(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        for pattern, key in UNIQUE.items():
            if matches(path, pattern):
                return _unique(value, key)
    return value


def _unique(entries: list, key) -> list:
    out: list = []
    index: dict[str, int] = {}
    for entry in entries:
        k = key(entry)
        if k in index:
            out[index[k]] = entry
        else:
            index[k] = len(out)
            out.append(entry)
    return out
