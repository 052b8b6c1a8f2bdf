"""The state directory and the derived status (no root, no container)."""

from __future__ import annotations

import os

import pytest

from kade import errors
from kade.runtime.state import Record, StateDir, process_start_time, status, write_pid_file


def _record(pid: int, start: int | None) -> Record:
    return Record(id="c1", bundle="/b", pid=pid, pid_start=start or 0,
                  cgroups_path="/kade/c1", created="2026-01-01T00:00:00Z",
                  annotations={"a": "b"})


def test_claim_save_load_remove(tmp_path):
    sd = StateDir(str(tmp_path / "state"), "c1")
    sd.claim()
    assert sd.has_fifo() and sd.load() is None          # claimed, not yet saved: creating
    with pytest.raises(errors.AlreadyExists, match='container "c1" already exists'):
        StateDir(str(tmp_path / "state"), "c1").claim()
    rec = _record(123, 456)
    sd.save(rec)
    assert sd.load() == rec
    assert sorted(os.listdir(sd.path)) == ["exec.fifo", "state.json"]
    sd.remove()
    assert not os.path.exists(sd.path)
    with pytest.raises(errors.NotFound, match='container "c1" does not exist'):
        sd.load()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "x" * 129, ".hidden"])
def test_ids_are_checked(tmp_path, bad):
    with pytest.raises(errors.InvalidArgument):
        StateDir(str(tmp_path), bad)


def test_process_start_time_of_self_and_of_the_dead():
    assert isinstance(process_start_time(os.getpid()), int)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert process_start_time(pid) is None              # a zombie counts as gone
    os.waitpid(pid, 0)
    assert process_start_time(pid) is None


def test_status_is_derived():
    me = os.getpid()
    live = _record(me, process_start_time(me))
    assert status(live, has_fifo=True, frozen=lambda: False) == "created"
    assert status(live, has_fifo=False, frozen=lambda: False) == "running"
    assert status(live, has_fifo=False, frozen=lambda: True) == "paused"
    reused = _record(me, 1)                              # same pid, another process
    assert status(reused, has_fifo=False, frozen=lambda: False) == "stopped"


def test_oci_state_hides_the_pid_once_stopped():
    rec = _record(123, 456)
    assert rec.oci_state("running") == {
        "ociVersion": "1.0.2", "id": "c1", "status": "running", "pid": 123, "bundle": "/b",
        "rootfs": "", "created": "2026-01-01T00:00:00Z", "annotations": {"a": "b"}}
    assert rec.oci_state("stopped")["pid"] == 0


def test_pid_file(tmp_path):
    write_pid_file(str(tmp_path / "pid"), 42)
    assert (tmp_path / "pid").read_text() == "42"
    assert os.listdir(tmp_path) == ["pid"]
