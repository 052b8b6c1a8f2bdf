"""kill -9 of a kade command at any moment leaves nothing half-visible, and nothing
that `kade rm -f` or `kade system prune` cannot clean (the issue's crash rule)."""

import io
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]

# spread over the life of a command: before the store is opened, while writing, after
DELAYS = [0.0, 0.03, 0.06, 0.1, 0.15, 0.25, 0.4]


def _kill_after(kade, delay: float, *args) -> None:
    proc = subprocess.Popen(KADE + ["--root", kade.root, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assert_whole(kade) -> None:
    """Every image listed is usable; problems left are only collectable garbage."""
    for image_id in kade("images", "-aq", "--no-trunc").stdout.split():
        kade("image", "inspect", image_id)
    report = kade("system", "check", check=False).stdout
    for line in report.splitlines():
        assert "unfinished layer extraction" in line or "not in the metadata" in line or \
            line == "store is consistent" or "has no filesystem" in line or \
            "was being removed by a process that died" in line, report


def _assert_cleanable(kade) -> None:
    ids = kade("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        kade("rm", "-f", *ids)
    kade("system", "prune", "-f")
    assert kade("system", "check").stdout.strip() == "store is consistent"
    assert kade.root not in open("/proc/self/mountinfo").read()
    for cid in ids:
        assert not os.path.exists(f"/sys/fs/cgroup/memory/kade/{cid}")
        assert not os.path.exists(f"/sys/fs/cgroup/pids/kade/{cid}")


@pytest.fixture
def layer_tar(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(200):
            data = os.urandom(20_000)
            info = tarfile.TarInfo(f"d{i % 10}/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "layer.tar"
    path.write_bytes(buf.getvalue())
    return str(path)


@pytest.mark.parametrize("delay", DELAYS)
def test_kill_during_import(kade, layer_tar, delay):
    _kill_after(kade, delay, "import", layer_tar, f"crash-import:{int(delay * 1000)}")
    _assert_whole(kade)
    _assert_cleanable(kade)


@pytest.mark.parametrize("delay", DELAYS)
def test_kill_during_load(kade, tmp_path, delay):
    archive = str(tmp_path / "busybox.tar")
    kade("save", "-o", archive, "busybox")
    kade("tag", "busybox", "keep:me")
    kade("rmi", "busybox")
    _kill_after(kade, delay, "load", "-i", archive)
    _assert_whole(kade)
    kade("load", "-i", archive)  # what a user does next: it works
    kade("rmi", "keep:me")
    _assert_cleanable(kade)


@pytest.mark.parametrize("delay", DELAYS)
def test_kill_during_run(kade, delay):
    _kill_after(kade, delay, "run", "--name", f"crash-run-{int(delay * 1000)}", "busybox",
                "sh", "-c", "echo x > /f; sleep 1")
    _assert_whole(kade)
    _assert_cleanable(kade)


@pytest.mark.parametrize("delay", DELAYS)
def test_kill_during_commit(kade, delay):
    kade("run", "--name", "crash-src", "busybox", "sh", "-c",
         "dd if=/dev/urandom of=/big bs=1M count=8 2>/dev/null")
    _kill_after(kade, delay, "commit", "crash-src", f"crash-commit:{int(delay * 1000)}")
    _assert_whole(kade)
    _assert_cleanable(kade)


@pytest.mark.parametrize("delay", DELAYS)
def test_kill_during_rm(kade, delay):
    kade("run", "-d", "--name", "crash-rm", "busybox", "sleep", "60")
    _kill_after(kade, delay, "rm", "-f", "crash-rm")
    _assert_whole(kade)
    _assert_cleanable(kade)


def test_supervisor_lost_between_the_halves_of_an_rm_leaves_only_garbage(kade):
    """`run --rm` drops the rows first and the files after (Containers.unlist, purge):
    a supervisor killed in between leaves a bundle and a layer no row knows."""
    import sqlite3
    cid = kade("create", "busybox", "true").stdout.strip()
    layer = kade("inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", cid).stdout.strip()
    db = sqlite3.connect(os.path.join(kade.root, "kade.db"))
    with db:
        db.execute("DELETE FROM snapshots WHERE key=?", (cid,))
        db.execute("DELETE FROM containers WHERE id=?", (cid,))
    db.close()
    _assert_whole(kade)
    _assert_cleanable(kade)
    assert not os.path.exists(os.path.join(kade.root, "containers", cid))
    assert not os.path.exists(layer)


def test_a_removal_killed_between_rename_and_forget_is_reported_as_such(kade):
    """A snapshot removal renames <num> to <num>.removing first and forgets the row last:
    a kill in between is one dead removal, which --repair finishes."""
    kade("create", "--name", "half-gone", "busybox", "true")
    upper = kade("inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "half-gone").stdout.strip()
    layer = os.path.dirname(upper)
    os.rename(layer, layer + ".removing")
    report = kade("system", "check", check=False).stdout
    assert "was being removed by a process that died" in report, report
    assert "has no directory" not in report and "not in the metadata" not in report, report
    kade("system", "check", "--repair", check=False)
    kade("rm", "-f", "half-gone", check=False)
    assert kade("system", "check").stdout.strip() == "store is consistent"
    assert not os.path.exists(layer + ".removing")
