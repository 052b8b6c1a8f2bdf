"""The runtime's public surface and its runc-shaped CLI, without containers."""

from __future__ import annotations

import inspect
import json
import signal

import pytest

import kade.runtime
from kade import errors
from kade.runtime import Runtime
from kade.runtime import cli as runtime_cli


def test_exports_are_pinned():
    assert kade.runtime.__all__ == ["Runtime", "load_spec"]
    public = {n for n, _ in inspect.getmembers(Runtime, inspect.isfunction)
              if not n.startswith("_")}
    assert public == {"create", "start", "state", "kill", "delete", "pause", "resume",
                      "exec", "list", "oom_killed"}


def test_unknown_and_invalid_containers(tmp_path):
    rt = Runtime(str(tmp_path / "state"))
    assert rt.list() == []
    with pytest.raises(errors.NotFound):
        rt.state("ghost")
    with pytest.raises(errors.NotFound):
        rt.start("ghost")
    with pytest.raises(errors.InvalidArgument):
        rt.delete("../etc")


def test_a_bundle_without_config(tmp_path):
    with pytest.raises(errors.NotFound, match="has no config.json"):
        Runtime(str(tmp_path / "state")).create("c1", str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(errors.InvalidArgument, match="is not valid JSON"):
        Runtime(str(tmp_path / "state")).create("c1", str(tmp_path))


def test_a_bad_spec_leaves_no_state(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}}))
    rt = Runtime(str(tmp_path / "state"))
    with pytest.raises(errors.InvalidArgument):
        rt.create("c1", str(tmp_path))
    assert rt.list() == []


def test_a_container_still_being_created(tmp_path):
    rt = Runtime(str(tmp_path))
    (tmp_path / "c1").mkdir()
    assert rt.state("c1")["status"] == "creating"
    with pytest.raises(errors.Conflict, match="still being created"):
        rt.delete("c1")
    rt.delete("c1", force=True)
    assert rt.list() == []


@pytest.mark.parametrize(("text", "number"), [
    ("9", 9), ("KILL", signal.SIGKILL), ("SIGKILL", signal.SIGKILL), ("term", signal.SIGTERM),
    ("sigusr1", signal.SIGUSR1)])
def test_parse_signal(text, number):
    assert runtime_cli.parse_signal(text) == number


def test_parse_signal_rejects_junk():
    with pytest.raises(errors.InvalidArgument, match='signal "NOPE"'):
        runtime_cli.parse_signal("NOPE")


def test_exec_process_starts_from_the_containers_process():
    base = {"args": ["sleep", "1"], "env": ["PATH=/bin"], "cwd": "/", "terminal": True,
            "capabilities": {"bounding": ["CAP_KILL"]}}
    got = runtime_cli.exec_process(base, ["ls", "-l"], cwd="/tmp", env=["A=1"], user="5:6")
    assert got == {"args": ["ls", "-l"], "env": ["PATH=/bin", "A=1"], "cwd": "/tmp",
                   "terminal": False, "capabilities": {"bounding": ["CAP_KILL"]},
                   "user": {"uid": 5, "gid": 6}}
    with pytest.raises(errors.InvalidArgument, match="UID"):
        runtime_cli.exec_process(base, ["ls"], user="root")


def test_cli_state_and_list(tmp_path, capsys):
    assert runtime_cli.main(["list", "--format", "json"], str(tmp_path)) == 0
    assert json.loads(capsys.readouterr().out) == []
    with pytest.raises(errors.NotFound):
        runtime_cli.main(["state", "ghost"], str(tmp_path))
    with pytest.raises(SystemExit):
        runtime_cli.main(["frobnicate"], str(tmp_path))


def test_standalone_cli_prints_errors(tmp_path, capsys):
    assert runtime_cli._standalone(["--root", str(tmp_path), "state", "ghost"]) == 1
    assert 'error: container "ghost" does not exist' in capsys.readouterr().err
