"""Dockerfile-style `--change` instructions applied to an image config.

`kade import -c` and `kade commit -c` take CMD, ENTRYPOINT, ENV, EXPOSE,
LABEL, ONBUILD, USER, VOLUME, WORKDIR and STOPSIGNAL, as docker does.
"""

from __future__ import annotations

import json
import shlex

from kade.errors import InvalidArgument

ALLOWED = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME",
           "WORKDIR", "STOPSIGNAL"}


def _json_or_shell(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str, instr: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if len(words) == 2 and "=" not in words[0] and instr == "ENV":
        return [(words[0], words[1])]
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise InvalidArgument(f'{instr} names can not be blank or lack "=": "{w}"')
        k, _, v = w.partition("=")
        out.append((k, v))
    return out


def apply(config: dict, changes: list[str]) -> dict:
    """Returns `config` (the image's "config" section) with each change applied."""
    for change in changes:
        instr, _, rest = change.strip().partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr not in ALLOWED:
            raise InvalidArgument(f"{instr} is not a valid change command")
        _apply_one(config, instr, rest)
    return config


def _apply_one(config: dict, instr: str, rest: str) -> None:
    if instr in ("CMD", "ENTRYPOINT"):
        config["Cmd" if instr == "CMD" else "Entrypoint"] = _json_or_shell(rest)
    elif instr == "ENV":
        env = [e for e in config.get("Env") or []]
        for k, v in _pairs(rest, instr):
            env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
        config["Env"] = env
    elif instr == "LABEL":
        config.setdefault("Labels", {}).update(dict(_pairs(rest, instr)))
    elif instr == "EXPOSE":
        for port in rest.split():
            config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
    elif instr == "VOLUME":
        paths = json.loads(rest) if rest.startswith("[") else rest.split()
        for p in paths:
            config.setdefault("Volumes", {})[p] = {}
    elif instr == "ONBUILD":
        config.setdefault("OnBuild", []).append(rest)
    else:
        key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instr]
        config[key] = rest
