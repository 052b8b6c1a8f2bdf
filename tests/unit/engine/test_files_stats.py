"""top, stats, port and events arithmetic and formats (engine.stats), and commit's
image config (engine.files.commit_config): pure functions and a database in tmp."""

from __future__ import annotations

import time

import pytest

from kade.engine import stats
from kade.engine.files import CommitOptions, commit_config
from kade.errors import FailedPrecondition, InvalidArgument

PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         501     480  0 10:01 ?        00:00:00 sleep 300
root         502     501  0 10:01 pts/0    00:00:00 sh -c echo  two  spaces
"""


def test_parse_ps_keeps_the_container_pids_and_the_last_column_whole():
    titles, rows = stats.parse_ps(PS, [501, 502])
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert rows == [["root", "501", "480", "0", "10:01", "?", "00:00:00", "sleep 300"],
                    ["root", "502", "501", "0", "10:01", "pts/0", "00:00:00",
                     "sh -c echo two spaces"]]


def test_parse_ps_needs_a_pid_column():
    with pytest.raises(FailedPrecondition, match="PID"):
        stats.parse_ps("USER COMMAND\nroot sh\n", [1])


def sample(cpu, system, memory=1 << 20, limit=4 << 20):
    return stats.Sample(cpu, system, 2, memory, limit, 10, 20, 30, 40, 3)


def test_cpu_percent_is_dockers():
    u = stats.usage("id", "n", sample(0, 0), sample(50_000_000, 200_000_000))
    assert u.cpu_percent == pytest.approx(50.0)  # a quarter of 2 CPUs' time
    assert u.memory_percent == pytest.approx(25.0)
    assert (u.net_rx, u.net_tx, u.block_read, u.block_write, u.pids) == (10, 20, 30, 40, 3)


def test_one_sample_gives_no_cpu_and_stopped_gives_zeros():
    assert stats.usage("id", "n", None, sample(5, 5)).cpu_percent == 0.0
    u = stats.usage("id", "n", None, stats.ZERO)
    assert (u.memory, u.memory_limit, u.memory_percent) == (0, 0, 0.0)


def test_net_dev_skips_loopback():
    lines = ["    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n",
             "  eth0: 2000 5 0 0 0 0 0 0 3000 6 0 0 0 0 0 0\n",
             "  eth1: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n"]
    assert stats.parse_net_dev(lines) == (2001, 3002)


def test_host_counters_are_sane():
    assert stats.system_cpu_ns() > 0 and stats.online_cpus() >= 1 and stats.host_memory() > 0


# --- events -------------------------------------------------------------------------
def record(action, actor="c" * 64, typ="container", attrs=None, t=1795363200.5):
    return {"Type": typ, "Action": action, "status": action, "id": actor,
            "Actor": {"ID": actor, "Attributes": attrs or {}}, "scope": "local",
            "time": int(t), "timeNano": int(t * 1e9)}


def test_event_json_is_dockers_shape_and_go_names_work():
    from kade.util import gotemplate
    names: dict = {}
    ev = stats.make_event(record("create", attrs={"name": "web", "image": "busybox"}), names)
    assert list(ev) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                        "timeNano"]
    assert ev["from"] == "busybox"
    assert gotemplate.render("{{.Status}} {{.ID}} {{.Actor.Attributes.name}} {{.TimeNano}}",
                             ev) == f"create {'c' * 64} web 1795363200500000000"
    assert gotemplate.render("{{json .}}", ev).startswith('{"status":"create","id":')


def test_container_events_learn_names_from_earlier_ones():
    names: dict = {}
    stats.make_event(record("create", attrs={"name": "web", "image": "busybox"}), names)
    ev = stats.make_event(record("die", attrs={"exitCode": "0"}), names)
    assert ev["Actor"]["Attributes"] == {"image": "busybox", "name": "web", "exitCode": "0"}
    stats.make_event(record("rename", attrs={"oldName": "/web", "name": "api"}), names)
    assert stats.make_event(record("stop"), names)["Actor"]["Attributes"]["name"] == "api"


def test_other_events_have_no_deprecated_fields():
    ev = stats.make_event(record("create", actor="vol", typ="volume"), {})
    assert "status" not in ev and "from" not in ev


def test_event_line_sorts_attributes(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        ev = stats.make_event(record("start", attrs={"name": "web", "image": "busybox"}), {})
        assert stats.event_line(ev) == ("2026-11-22T16:00:00.500000000Z container start "
                                        + "c" * 64 + " (image=busybox, name=web)")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_format_time_with_an_offset(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        assert stats.format_time(1_000_000_001) == "1969-12-31T19:00:01.000000001-05:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("filters, expected", [
    ({"type": ["container"]}, True), ({"type": ["image"]}, False),
    ({"event": ["die"]}, True), ({"event": ["start", "die"]}, True),
    ({"container": ["web"]}, True), ({"container": ["ccc"]}, True),
    ({"container": ["api"]}, False),
    ({"image": ["busybox"]}, True), ({"image": ["busybox:latest"]}, False),
    ({"image": ["alpine"]}, False),
    ({"label": ["tier"]}, True), ({"label": ["tier=web"]}, True),
    ({"label": ["tier=db"]}, False),
    ({"type": ["container"], "event": ["start"]}, False),
])
def test_event_filters(filters, expected):
    ev = stats.make_event(record("die", attrs={"name": "web", "image": "busybox",
                                               "tier": "web"}), {})
    assert stats.matches(ev, filters) is expected


def test_image_filter_without_a_tag_matches_any_tag():
    ev = stats.make_event(record("create", attrs={"name": "w", "image": "busybox:1.36"}), {})
    assert stats.matches(ev, {"image": ["busybox"]})
    assert stats.matches(ev, {"image": ["busybox:1.36"]})


@pytest.fixture
def engine(tmp_path):
    from kade.engine import Engine
    return Engine(str(tmp_path))


def test_events_from_since_until_until(engine):
    engine.emit("image", "tag", "sha256:" + "a" * 64, {"name": "x:1"})
    start = time.time()
    engine.emit("container", "create", "c" * 64, {"name": "web", "image": "busybox"})
    engine.emit("container", "start", "c" * 64)
    got = list(stats.events(engine, since=start - 0.001, until=time.time()))
    assert [e["Action"] for e in got] == ["create", "start"]
    assert got[1]["Actor"]["Attributes"] == {"image": "busybox", "name": "web"}
    got = list(stats.events(engine, until=time.time(), filters={"type": ["image"]}))
    assert [e["Action"] for e in got] == ["tag"]


def test_events_follow_new_ones_until_the_end(engine):
    import threading
    engine.emit("container", "create", "old")
    until = time.time() + 0.6
    from kade.engine import Engine
    later = threading.Timer(0.2, lambda: Engine(engine.root).emit("container", "start", "n"))
    later.start()
    try:
        got = [e["Actor"]["ID"] for e in stats.events(engine, until=until, poll=0.05)]
    finally:
        later.join()
    assert got == ["old", "n"]
    assert time.time() >= until


def test_events_refuse_unknown_filters(engine):
    with pytest.raises(InvalidArgument, match="invalid filter 'foo'"):
        next(stats.events(engine, filters={"foo": ["bar"]}))


# --- commit's config ------------------------------------------------------------------
IMAGE = {"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
         "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
         "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "ADD busybox"}],
         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}}
RECORD = {"Config": {"Hostname": "abc", "Env": ["PATH=/bin", "X=1"], "Cmd": ["sleep", "60"],
                     "Image": "busybox", "Labels": {}, "StopSignal": "SIGTERM"}}


def test_commit_config_is_the_containers_with_changes_and_history():
    opts = CommitOptions(changes=("ENV A=1", 'CMD ["sh"]', "EXPOSE 80"), message="msg",
                         author="me")
    cfg = commit_config(IMAGE, RECORD, opts, False, "2026-11-22T16:00:00Z")
    assert cfg["config"]["Env"] == ["PATH=/bin", "X=1", "A=1"]
    assert cfg["config"]["Cmd"] == ["sh"] and cfg["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert "StopSignal" not in cfg["config"]  # Kade's default, not the container's choice
    assert (cfg["architecture"], cfg["os"], cfg["author"], cfg["comment"]) == (
        "amd64", "linux", "me", "msg")
    assert cfg["history"][-1] == {"created": "2026-11-22T16:00:00Z",
                                  "created_by": "sleep 60", "author": "me", "comment": "msg"}
    assert RECORD["Config"]["Env"] == ["PATH=/bin", "X=1"]  # the record is left alone


def test_commit_config_marks_an_empty_layer():
    cfg = commit_config(IMAGE, RECORD, CommitOptions(), True, "2026-11-22T16:00:00Z")
    assert cfg["history"][-1] == {"created": "2026-11-22T16:00:00Z", "created_by": "sleep 60",
                                  "empty_layer": True}
    assert "author" not in cfg and "comment" not in cfg
