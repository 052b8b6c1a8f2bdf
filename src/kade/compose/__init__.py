"""Compose: multi-container applications from compose files (issue 12).

Loading, the part this package holds so far, turns files into a `Project`:

    find files         -f FILE... (`-` is stdin), else COMPOSE_FILE, else compose.yaml,
         |             compose.yml, docker-compose.yaml, docker-compose.yml in the
         |             working directory or its parents, with compose.override.yaml /
         |             docker-compose.override.yml beside it (files.py)
    .env, name         --env-file or <project dir>/.env under the process environment;
         |             the name from -p, COMPOSE_PROJECT_NAME, `name:`, the directory
    read YAML          YAML 1.2 scalars, anchors and `<<` merge keys, `!reset`,
         |             `!override` (yamlfile.py)
    interpolate        ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a},
         |             ${VAR+a}, $$, nested; then casts (interpolate.py, dotenv.py)
    include            other projects loaded alone and added (include.py)
    extends            a service over another, in this file or another (loader.py)
    merge              onto the files before, with the spec's merge rules (merge.py)
    validate           against compose-spec.json, per file (schema.py)
    canonical          short syntax to long, relative paths absolute (canonical.py)
         |             ... repeated for each file, then once for the project:
    profiles           --profile, COMPOSE_PROFILES, services named on the command line
    normalise          the default network, resource names `<project>_<key>`
    check              references, depends_on, cycles (checks.py)
    env_file           read into environment
         v
    Project            (model.py): `to_dict()` is what `docker compose config` prints;
                       `config_hash(service)` is com.docker.compose.config-hash

Loading imports nothing from the engine: it reads files and the environment only,
and creates nothing. Every bad input is one kade.errors.InvalidArgument line that
names the file, the key path and the bad value.
"""

from __future__ import annotations

from kade.compose.loader import Options, load
from kade.compose.model import Project, Service, config_hash

__all__ = ["Options", "Project", "Service", "config_hash", "load"]
