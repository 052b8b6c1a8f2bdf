"""docker's config.json and credential helpers, shared with docker."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from kade.errors import FailedPrecondition
from kade.remotes.auth import Credential
from kade.remotes.credentials import DOCKER_HUB_KEY, DockerConfig, config_dir, server_key


@pytest.fixture
def cfg(tmp_path) -> DockerConfig:
    return DockerConfig(str(tmp_path / "docker"))


def read(cfg: DockerConfig) -> dict:
    with open(cfg.path) as f:
        return json.load(f)


def test_server_keys_follow_docker():
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io",
                 "https://index.docker.io/v1/"):
        assert server_key(name) == DOCKER_HUB_KEY
    assert server_key("localhost:5000") == "localhost:5000"
    assert server_key("https://registry.example/v2/") == "registry.example"


def test_store_get_erase_in_auths(cfg):
    where = cfg.store("localhost:5000", Credential("alice", "pa:ss"))
    assert where == cfg.path
    doc = read(cfg)
    assert doc["auths"]["localhost:5000"]["auth"] == base64.b64encode(b"alice:pa:ss").decode()
    assert stat.S_IMODE(os.stat(cfg.path).st_mode) == 0o600
    assert cfg.get("localhost:5000") == Credential("alice", "pa:ss")
    assert cfg.get("other:5000") is None
    assert cfg.erase("localhost:5000") is True
    assert read(cfg)["auths"] == {}
    assert cfg.erase("localhost:5000") is False


def test_docker_hub_and_keys_written_by_docker(cfg):
    os.makedirs(cfg.directory)
    with open(cfg.path, "w") as f:
        json.dump({"auths": {"https://index.docker.io/v1/": {"auth": "dTpwdw=="},
                             "http://reg.example": {"username": "x", "password": "y"},
                             "tok.example": {"identitytoken": "rt"}},
                   "HttpHeaders": {"User-Agent": "keep me"}}, f)
    assert cfg.get("docker.io") == Credential("u", "pw")
    assert cfg.get("reg.example") == Credential("x", "y")
    assert cfg.get("tok.example") == Credential("<token>", "rt")
    cfg.store("docker.io", Credential("v", "q"))
    doc = read(cfg)
    assert doc["HttpHeaders"] == {"User-Agent": "keep me"}  # other settings survive
    assert doc["auths"][DOCKER_HUB_KEY]["auth"] == base64.b64encode(b"v:q").decode()


def test_docker_config_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "elsewhere"))
    assert config_dir() == str(tmp_path / "elsewhere")
    assert DockerConfig().path == str(tmp_path / "elsewhere" / "config.json")


HELPER = """#!/bin/sh
# a docker-credential helper keeping its secrets in files next to itself
dir=$(dirname "$0")/store
mkdir -p "$dir"
read -r input
case "$1" in
  store) printf '%s' "$input" > "$dir/$(printf '%s' "$input" | sed 's/.*"ServerURL": *"\\([^"]*\\)".*/\\1/' | tr '/:' '__')";;
  get) f="$dir/$(printf '%s' "$input" | tr '/:' '__')"
       if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
  erase) rm -f "$dir/$(printf '%s' "$input" | tr '/:' '__')";;
esac
"""


@pytest.fixture
def helper(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "docker-credential-fake"
    path.write_text(HELPER)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


@pytest.mark.parametrize("setting", [{"credsStore": "fake"},
                                     {"credHelpers": {"localhost:5000": "fake"}}])
def test_credential_helpers(cfg, helper, setting):
    os.makedirs(cfg.directory)
    with open(cfg.path, "w") as f:
        json.dump(setting, f)
    assert cfg.get("localhost:5000") is None
    assert cfg.store("localhost:5000", Credential("bob", "hunter2")) == "docker-credential-fake"
    assert read(cfg)["auths"] == {"localhost:5000": {}}  # docker's marker, no secret
    assert "hunter2" not in open(cfg.path).read()
    assert cfg.get("localhost:5000") == Credential("bob", "hunter2")
    assert cfg.erase("localhost:5000")
    assert cfg.get("localhost:5000") is None


def test_missing_helper_is_one_clear_line(cfg):
    os.makedirs(cfg.directory)
    with open(cfg.path, "w") as f:
        json.dump({"credsStore": "nosuchhelper"}, f)
    with pytest.raises(FailedPrecondition, match="docker-credential-nosuchhelper"):
        cfg.get("localhost:5000")
