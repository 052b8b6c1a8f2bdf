"""Which files make a project, where its directory is and what it is called."""

from __future__ import annotations

import os
import re

from kade.errors import InvalidArgument

NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDES = ("compose.override.yaml", "compose.override.yml",
             "docker-compose.override.yaml", "docker-compose.override.yml")


def find(cwd: str) -> list[str]:
    """The first directory from `cwd` up holding a compose file: that file (compose.yaml
    preferred) and its override file when there is one."""
    d = os.path.abspath(cwd)
    while True:
        found = [n for n in NAMES if os.path.isfile(os.path.join(d, n))]
        if found:
            overrides = [n for n in OVERRIDES if os.path.isfile(os.path.join(d, n))]
            return [os.path.join(d, n) for n in found[:1] + overrides[:1]]
        parent = os.path.dirname(d)
        if parent == d:
            raise InvalidArgument("no configuration file provided: not found")
        d = parent


def normalize_name(name: str) -> str:
    """docker compose's project name from free text: lower case, [a-z0-9_-] only,
    starting with a letter or a digit."""
    return "".join(re.findall(r"[a-z0-9_-]", name.lower())).lstrip("_-")


def check_name(name: str) -> str:
    if normalize_name(name) != name or not name:
        raise InvalidArgument(
            f"invalid project name \"{name}\": must consist only of lowercase alphanumeric "
            "characters, hyphens, and underscores as well as start with a letter or number")
    return name
