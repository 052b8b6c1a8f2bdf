"""kade top, stats, port and events against real containers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


@pytest.fixture(scope="module")
def sleeper(kade):
    kade("run", "-d", "--name", "obs-sleep", "busybox", "sleep", "600")
    return "obs-sleep"


@pytest.fixture(scope="module")
def stopped(kade):
    kade("create", "--name", "obs-stopped", "busybox", "true")
    return "obs-stopped"


# --- top ------------------------------------------------------------------------
def test_top_default_columns(kade, sleeper):
    lines = kade("top", sleeper).stdout.splitlines()
    assert lines[0] == "".join(f"{t:<20}" for t in
                               ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME")) + "CMD"
    assert len(lines) == 2 and lines[1].startswith("root") and lines[1].endswith("sleep 600")
    pid = kade("inspect", "-f", "{{.State.Pid}}", sleeper).stdout.strip()
    assert lines[1].split()[1] == pid


def test_top_with_ps_options(kade, sleeper):
    assert kade("top", sleeper, "-o", "pid,comm").stdout.splitlines()[1].split()[1] == "sleep"
    assert kade("top", sleeper, "aux").stdout.splitlines()[0].split()[:3] == [
        "USER", "PID", "%CPU"]


def test_top_of_a_stopped_container(kade, stopped):
    proc = kade("top", stopped, check=False)
    assert proc.returncode == 1
    assert re.fullmatch(r"Error response from daemon: container [0-9a-f]{64} is not running\n",
                        proc.stderr)


# --- stats ----------------------------------------------------------------------
def test_stats_no_stream(kade, sleeper):
    lines = kade("stats", "--no-stream", sleeper).stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["CONTAINER ID", "NAME", "CPU %",
                                             "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                                             "BLOCK I/O", "PIDS"]
    cells = re.split(r"\s{2,}", lines[1])
    assert cells[1] == sleeper and len(cells[0]) == 12
    assert re.fullmatch(r"\d+\.\d\d%", cells[2]) and re.fullmatch(r"\d+\.\d\d%", cells[4])
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / [\d.]+[KMGT]iB", cells[3])
    assert cells[5] == "0B / 0B" or " / " in cells[5]
    assert cells[7] == "1"


def test_stats_format_and_all(kade, sleeper, stopped):
    rows = [json.loads(line) for line in kade(
        "stats", "--no-stream", "-a", "--no-trunc", "--format", "{{json .}}").stdout.splitlines()]
    by_name = {r["Name"]: r for r in rows}
    assert list(by_name[sleeper]) == sorted(by_name[sleeper])
    assert len(by_name[sleeper]["ID"]) == 64
    assert by_name[stopped]["MemUsage"] == "0B / 0B" and by_name[stopped]["PIDs"] == "0"
    out = kade("stats", "--no-stream", "--format", "{{.Name}}: {{.PIDs}}", sleeper).stdout
    assert out == f"{sleeper}: 1\n"


def test_stats_of_an_unknown_container(kade):
    proc = kade("stats", "--no-stream", "nope", check=False)
    assert (proc.returncode, proc.stderr) == (
        1, "Error response from daemon: no such container: nope\n")


# --- port -----------------------------------------------------------------------
def test_port_without_published_ports(kade, sleeper):
    assert kade("port", sleeper).stdout == ""
    proc = kade("port", sleeper, "80", check=False)
    assert (proc.returncode, proc.stderr) == (
        1, f"Error: No public port '80/tcp' published for {sleeper}\n")
    proc = kade("port", sleeper, "80/udp", check=False)
    assert proc.stderr == f"Error: No public port '80/udp' published for {sleeper}\n"


# --- events ---------------------------------------------------------------------
LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (\w+) (\S+) "
                  r"(\S+)(?: \((.*)\))?")


def test_events_since_until(kade):
    since = str(time.time() - 1)
    cid = kade("run", "-d", "--name", "obs-ev", "busybox", "true").stdout.strip()
    kade("wait", "obs-ev")
    kade("rm", "obs-ev")
    until = str(time.time() + 1)
    lines = kade("events", "--since", since, "--until", until, "--filter",
                 f"container={cid[:12]}").stdout.splitlines()
    parsed = [LINE.fullmatch(line).groups() for line in lines]
    assert [p[2] for p in parsed] == ["create", "start", "die", "destroy"]
    assert all(p[1] == "container" and p[3] == cid for p in parsed)
    assert parsed[0][4] == "image=busybox, name=obs-ev"
    assert parsed[2][4] == "exitCode=0, image=busybox, name=obs-ev"
    out = kade("events", "--since", since, "--until", until, "--filter", "event=die",
               "--filter", "container=obs-ev", "--format", "{{json .}}").stdout
    ev = json.loads(out)
    assert list(ev) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                        "timeNano"]
    assert (ev["status"], ev["id"], ev["from"]) == ("die", cid, "busybox")
    assert ev["Actor"]["Attributes"]["exitCode"] == "0"


def test_events_follow_until_interrupted(kade, tmp_path):
    proc = subprocess.Popen(KADE + ["--root", kade.root, "events", "--filter",
                                    "container=obs-follow", "--format",
                                    "{{.Action}} {{.Actor.Attributes.name}}"],
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        kade("run", "--name", "obs-follow", "busybox", "true")
        kade("rm", "obs-follow")
        got = [proc.stdout.readline().strip() for _ in range(4)]
    finally:
        proc.send_signal(2)
        code = proc.wait(timeout=10)
    assert got == ["create obs-follow", "start obs-follow", "die obs-follow",
                   "destroy obs-follow"]
    assert code in (0, 130)


def test_events_refuse_unknown_filters(kade):
    proc = kade("events", "--until", "0s", "--filter", "foo=bar", check=False)
    assert (proc.returncode, proc.stderr) == (
        1, "Error response from daemon: invalid filter 'foo'\n")


def test_no_cgroup_or_process_is_left(kade, sleeper):
    """After the module's cleanup nothing of ours remains (checked here for one container)."""
    cid = kade("inspect", "-f", "{{.Id}}", sleeper).stdout.strip()
    pid = int(kade("inspect", "-f", "{{.State.Pid}}", sleeper).stdout)
    kade("rm", "-f", sleeper)
    assert not os.path.exists(f"/proc/{pid}")
    from kade.runtime.cgroups import list_cgroups
    assert f"/kade/{cid}" not in list_cgroups()
