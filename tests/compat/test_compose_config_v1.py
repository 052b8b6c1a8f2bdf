"""`kade compose config` against Debian's docker-compose 1.29 `config`, where v1 and v2
agree: each service's image, ports (target, published, protocol) and environment,
and the depends_on names."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.compat

V1 = shutil.which("docker-compose")

PROJECTS = {
    "ports_env": """\
services:
  web:
    image: nginx:${TAG:-latest}
    ports: ["8080:80", "9000:9000/udp", "127.0.0.1:5432:5432"]
    environment: [FOO=bar, NUM=1, EMPTY=]
    depends_on: [db]
  db:
    image: postgres
    environment: {A: "x", B: 2}
""",
    "override_and_dotenv": """\
services:
  app:
    image: "${IMAGE}:${VERSION:-1}"
    ports: ["${PORT}:80"]
    environment:
      MODE: ${MODE:-dev}
""",
}
EXTRA = {"override_and_dotenv": {
    ".env": "IMAGE=redis\nPORT=6380\n",
    "docker-compose.override.yml": "services:\n  app:\n    environment:\n      MODE: prod\n"
                                   "      EXTRA: '1'\n",
}}


def _port(p) -> tuple:
    """(target, published, protocol) of a long port, or of the short form v1 keeps
    for a port bound to an address (`127.0.0.1:5432:5432`)."""
    if isinstance(p, str):
        spec, _, proto = p.partition("/")
        parts = spec.split(":")
        return int(parts[-1]), parts[-2] if len(parts) > 1 else "", proto or "tcp"
    return int(p["target"]), str(p.get("published", "")), p.get("protocol", "tcp")


def _summary(doc: dict) -> dict:
    out = {}
    for name, svc in doc["services"].items():
        ports = sorted(_port(p) for p in svc.get("ports") or [])
        env = {k: ("" if v is None else str(v)) for k, v in (svc.get("environment") or {}).items()}
        out[name] = {"image": svc.get("image"), "ports": ports, "environment": env,
                     "depends_on": sorted(svc.get("depends_on") or [])}
    return out


@pytest.mark.skipif(V1 is None, reason="Debian's docker-compose (1.29) is not installed")
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_config_agrees_with_docker_compose_v1(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "docker-compose.yml").write_text(PROJECTS[name])
    for fname, text in EXTRA.get(name, {}).items():
        (d / fname).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    v1 = subprocess.run([V1, "config"], cwd=d, env=env, capture_output=True, text=True,
                        timeout=120)
    assert v1.returncode == 0, v1.stderr
    kade = subprocess.run([sys.executable, "-c", "from kade.cli.main import entry; entry()",
                           "compose", "config"], cwd=d, env=env, capture_output=True,
                          text=True)
    assert kade.returncode == 0, kade.stderr
    assert _summary(yaml.safe_load(kade.stdout)) == _summary(yaml.safe_load(v1.stdout))
