"""`kade compose config` through the real CLI: flags, output and errors."""

import json
import os
import subprocess
import sys

import pytest

COMPOSE = """\
services:
  web:
    image: nginx:${TAG:-1}
    ports: ["8080:80"]
    depends_on: [db]
    volumes: [data:/data]
  db:
    image: postgres
  tool:
    build: ./tool
    profiles: [tools]
volumes:
  data:
"""


def kade(cwd, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-c", "from kade.cli.main import entry; entry()",
                           *args], cwd=cwd, env=environ, capture_output=True, text=True)


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "demo"
    d.mkdir()
    (d / "compose.yaml").write_text(COMPOSE)
    return d


def test_config_prints_canonical_yaml(project):
    r = kade(project, "compose", "config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("name: demo\nservices:\n  db:\n")
    assert "        published: \"8080\"\n" in r.stdout
    assert "tool" not in r.stdout


@pytest.mark.parametrize("flags,expected", [
    (["--services"], "db\nweb\n"),
    (["--volumes"], "data\n"),
    (["--profiles"], "tools\n"),
    (["--images"], "postgres\nnginx:1\n"),
    (["-q"], ""),
])
def test_listing_flags(project, flags, expected):
    r = kade(project, "compose", "config", *flags)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr


def test_profile_and_project_name_flags(project):
    r = kade(project, "compose", "-p", "other", "--profile", "tools", "config", "--images")
    assert r.stdout == "postgres\nother-tool\nnginx:1\n", r.stderr
    r = kade(project, "compose", "config", "--services", env={"COMPOSE_PROFILES": "tools"})
    assert r.stdout == "db\ntool\nweb\n"


def test_hash_and_json(project):
    r = kade(project, "compose", "config", "--hash", "*")
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["db", "web"]
    assert all(len(line.split()[1]) == 64 for line in lines)
    r = kade(project, "compose", "config", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["name"] == "demo" and doc["services"]["web"]["ports"][0]["target"] == 80


def test_files_env_file_and_no_interpolate(project):
    (project / "extra.yaml").write_text("services: {web: {image: 'x:${TAG}'}}")
    (project / "my.env").write_text("TAG=7\n")
    r = kade(project, "compose", "-f", "compose.yaml", "-f", "extra.yaml", "--env-file",
             "my.env", "config", "--images")
    assert r.stdout == "postgres\nx:7\n", r.stderr
    r = kade(project, "compose", "config", "--no-interpolate", "--images")
    assert r.stdout == "postgres\nnginx:${TAG:-1}\n"


def test_selected_services_bring_their_dependencies(project):
    r = kade(project, "compose", "config", "--services", "web")
    assert r.stdout == "db\nweb\n"


@pytest.mark.parametrize("args,message", [
    (["compose", "config", "--format", "xml"], 'invalid argument "xml" for "--format"'),
    (["compose", "watch"], "kade compose: 'watch' is not implemented yet"),
    (["compose", "config", "--resolve-image-digests"], "is not supported"),
    (["compose", "-p", "Bad Name", "config"], 'invalid project name "Bad Name"'),
])
def test_refusals(project, args, message):
    r = kade(project, *args)
    assert r.returncode != 0 and message in r.stderr and r.stdout == ""
    assert "Traceback" not in r.stderr


def test_bad_file_is_one_line_naming_file_path_and_value(project):
    (project / "compose.yaml").write_text("services:\n  web:\n    image: a\n    foo: bar\n")
    r = kade(project, "compose", "config")
    assert r.returncode == 1
    assert r.stderr == (f"Error: validating {project}/compose.yaml: services.web "
                        "Additional property foo is not allowed\n")


def test_unset_variable_warns_like_compose(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {web: {image: 'a:${NOPE}'}}")
    r = kade(tmp_path, "compose", "config", "--images")
    assert r.stdout == "a:\n"
    assert 'WARN[0000] The "NOPE" variable is not set. Defaulting to a blank string.' \
        in r.stderr
