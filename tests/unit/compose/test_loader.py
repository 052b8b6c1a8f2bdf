"""extends, include, profiles, project name and files, through kade.compose.load."""

import io
import os

import pytest

from kade.compose import Options, config_hash, load
from kade.errors import InvalidArgument


def _write(d, name, text):
    path = os.path.join(d, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def _load(d, **kw):
    kw.setdefault("environ", {})
    return load(Options(cwd=str(d), **kw))


def test_files_found_in_parent_with_override(tmp_path):
    _write(tmp_path, "compose.yaml", "services: {web: {image: a}}")
    _write(tmp_path, "docker-compose.yml", "services: {web: {image: ignored}}")
    _write(tmp_path, "compose.override.yaml", "services: {web: {user: u}}")
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    p = _load(sub)
    assert p.services["web"]["image"] == "a" and p.services["web"]["user"] == "u"
    assert p.working_dir == str(tmp_path)
    assert p.name == tmp_path.name.lower().replace(".", "")


def test_no_file(tmp_path):
    with pytest.raises(InvalidArgument, match="no configuration file provided: not found"):
        _load(tmp_path)


def test_stdin_and_project_directory(tmp_path):
    p = load(Options(files=["-"], stdin=io.StringIO("services: {web: {build: .}}"),
                     project_directory=str(tmp_path), cwd="/", environ={}))
    assert p.services["web"]["build"]["context"] == str(tmp_path)


@pytest.mark.parametrize("flag,env,declared,expected", [
    ("cli", "envname", "declared", "cli"),
    (None, "envname", "declared", "envname"),
    (None, None, "Declared.Name!", "declaredname"),
    (None, None, None, "my_dir-1"),
])
def test_project_name_precedence(tmp_path, flag, env, declared, expected):
    d = tmp_path / "My_Dir-1"
    d.mkdir()
    _write(d, "compose.yaml", (f"name: {declared}\n" if declared else "")
           + "services: {web: {image: a}}")
    environ = {"COMPOSE_PROJECT_NAME": env} if env else {}
    p = _load(d, project_name=flag, environ=environ)
    assert p.name == expected
    assert p.resources("networks")["default"]["name"] == f"{expected}_default"


def test_bad_project_name_flag(tmp_path):
    _write(tmp_path, "compose.yaml", "services: {web: {image: a}}")
    with pytest.raises(InvalidArgument, match='invalid project name "Bad"'):
        _load(tmp_path, project_name="Bad")


def test_env_file_flag_and_environment_precedence(tmp_path):
    _write(tmp_path, "compose.yaml", "services: {web: {image: '${IMG}:${TAG}'}}")
    _write(tmp_path, ".env", "IMG=fromdotenv\nTAG=1")
    _write(tmp_path, "alt.env", "IMG=fromalt\nTAG=2")
    assert _load(tmp_path).services["web"]["image"] == "fromdotenv:1"
    p = _load(tmp_path, env_files=["alt.env"], environ={"TAG": "env"})
    assert p.services["web"]["image"] == "fromalt:env"
    with pytest.raises(InvalidArgument, match="couldn't find env file"):
        _load(tmp_path, env_files=["missing.env"])


def test_profiles(tmp_path):
    _write(tmp_path, "compose.yaml", "services:\n  web: {image: a}\n"
           "  dbg: {image: b, profiles: [debug]}\n  t: {image: c, profiles: [test, ci]}\n")
    assert list(_load(tmp_path).services) == ["web"]
    assert list(_load(tmp_path, profiles=["ci"]).services) == ["t", "web"]
    p = _load(tmp_path, environ={"COMPOSE_PROFILES": "debug,test"})
    assert list(p.services) == ["dbg", "t", "web"]
    assert list(_load(tmp_path, profiles=["*"]).services) == ["dbg", "t", "web"]
    # a service named on the command line enables its profiles
    assert list(_load(tmp_path, services=["dbg"]).services) == ["dbg", "web"]
    assert _load(tmp_path).profiles() == ["ci", "debug", "test"]


def test_extends_same_and_other_file(tmp_path):
    _write(tmp_path, "compose.yaml", """
services:
  base: {image: a, environment: {A: "1"}, ports: ["80:80"]}
  mid: {extends: base, environment: {B: "2"}}
  top: {extends: {service: mid}, ports: ["81:81"]}
  far: {extends: {file: lib/other.yaml, service: svc}}
""")
    _write(tmp_path, "lib/other.yaml", "services: {svc: {build: ./ctx, volumes: [./v:/v]}}")
    s = _load(tmp_path).services
    assert s["top"]["environment"] == {"A": "1", "B": "2"}
    assert [p["target"] for p in s["top"]["ports"]] == [80, 81]
    assert s["far"]["build"]["context"] == str(tmp_path / "lib" / "ctx")
    assert s["far"]["volumes"][0]["source"] == str(tmp_path / "lib" / "v")


def test_include_conflict(tmp_path):
    _write(tmp_path, "compose.yaml", "include: [inc.yaml]\nservices: {db: {image: a}}")
    _write(tmp_path, "inc.yaml", "services: {db: {image: b}}")
    with pytest.raises(InvalidArgument, match="defines conflicting service db"):
        _load(tmp_path)


def test_nothing_created_on_error(tmp_path):
    _write(tmp_path, "compose.yaml", "services: {web: {image: a, volumes: [./new:/x], "
           "depends_on: [missing]}}")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InvalidArgument):
        _load(tmp_path)
    assert sorted(os.listdir(tmp_path)) == before


def test_config_hash_ignores_what_changes_no_container(tmp_path):
    _write(tmp_path, "compose.yaml", "services: {web: {image: a}}")
    web = _load(tmp_path).services["web"]
    h = config_hash(web)
    assert len(h) == 64
    assert config_hash({**web, "scale": 3, "depends_on": {"x": {}}, "profiles": ["p"],
                        "build": {"context": "."}, "pull_policy": "always",
                        "x-ext": 1}) == h
    assert config_hash({**web, "image": "b"}) != h
    assert config_hash({**web, "deploy": {"replicas": 2}}) == config_hash(
        {**web, "deploy": {"replicas": 5}})
