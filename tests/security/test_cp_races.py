"""`kade cp` against a container that races it (docker's CVE-2018-15664): while cp
walks a path, the container keeps exchanging a directory on that path with a symlink
to /etc (renameat2 RENAME_EXCHANGE in a tight loop, so every walk meets one or the
other). Resolved on the host, that symlink would be the host's /etc: cp must copy
nothing of the host's out, and write nothing of ours into the host.

The host has /etc/<marker> holding a secret; the container's directory holds a decoy
of that name, and the container's own /etc has none. So a copy out gives the decoy or
"not found", never the secret; a copy in lands in the container, never in host /etc.
Every loop also checks it met both sides of the race, so the test cannot pass idle.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest
from attack_probe import mount_of

ROUNDS = 16
TOKEN = os.urandom(6).hex()
MARKER = f"kade-marker-{TOKEN}"
SECRET = f"host-secret-{TOKEN}\n"
DECOY = "decoy\n"


def raw(kade, *args) -> subprocess.CompletedProcess:
    """The CLI with bytes out (tars)."""
    cli = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
    return subprocess.run([*cli, "--root", kade.root, *args], capture_output=True,
                          timeout=60)


def host_etc_with_token() -> list[str]:
    return sorted(n for n in os.listdir("/etc") if TOKEN in n and n != MARKER)


@pytest.fixture(scope="module")
def host_secret():
    path = f"/etc/{MARKER}"
    with open(path, "w") as f:
        f.write(SECRET)
    yield path
    os.unlink(path)
    for name in host_etc_with_token():  # what a failed test let through
        subprocess.run(["rm", "-rf", f"/etc/{name}"], check=False)


@pytest.fixture(scope="module")
def racer(kade, probe, host_secret):  # noqa: F811 - probe is the imported fixture
    script = (f"mkdir -p /race/d && echo decoy > /race/d/{MARKER} && ln -s /etc /race/link"
              " && exec /probe swap:/race/d:/race/link")
    # --cpus: the swap loop spins; half a core is plenty to race cp
    kade("run", "-d", "--name", "racer", "--cpus", "0.5", *mount_of(probe),
         "busybox", "sh", "-c", script)
    _wait_running(kade, "racer")
    yield "racer"
    kade("rm", "-f", "racer", check=False)


def _wait_running(kade, name: str) -> None:
    for _ in range(200):
        if "swap:/race/d:/race/link RUNNING" in kade("logs", name).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"the racer never started: {kade('logs', name, check=False)}")


def _members(data: bytes) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t:
            f = t.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else None
    return out


def _files_under(top: str) -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(top):  # os.walk follows no symlinks to directories
        for name in files:
            path = os.path.join(d, name)
            if not os.path.islink(path):
                with open(path, errors="replace") as f:
                    out[os.path.relpath(path, top)] = f.read()
    return out


def _copy_or_fail_cleanly(kade, src: str, dest: str) -> bool:
    """A copy that loses the race may fail (docker's may too), but as a user error:
    exit 1 and one line, never a traceback. True when it copied."""
    proc = kade("cp", src, dest, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    if proc.returncode:
        assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, \
            proc.stderr
    return proc.returncode == 0


def test_cp_out_of_a_swapped_path_never_reads_the_host(kade, racer, host_secret):
    seen = set()
    for _ in range(ROUNDS):
        out = raw(kade, "cp", f"{racer}:/race/d/{MARKER}", "-")
        if out.returncode == 0:
            got = _members(out.stdout)[MARKER]
            assert got != SECRET.encode(), "cp copied the host's file out"
            assert got == DECOY.encode()
            seen.add("dir")
        else:
            assert b"Could not find the file" in out.stderr, out.stderr
            seen.add("symlink")  # /race/d -> /etc, resolved in the container: none there
    assert seen == {"dir", "symlink"}, f"the race was not met: only {seen}"


def test_cp_out_of_a_swapped_tree_never_reads_or_writes_the_host(kade, racer, host_secret,
                                                                tmp_path):
    kinds = set()
    for i in range(ROUNDS):
        dest = tmp_path / f"out{i}"
        if not _copy_or_fail_cleanly(kade, f"{racer}:/race", str(dest)):
            continue
        files = _files_under(str(dest))
        assert SECRET not in files.values(), "cp copied the host's /etc out"
        assert set(files.values()) <= {DECOY}, files
        kinds.add("d" if os.path.islink(dest / "d") else "link")  # which one was the link
        # the copy's symlink (d or link -> /etc) must not have been written through
        with open(host_secret) as f:
            assert f.read() == SECRET, "cp wrote into the host's /etc"
    assert host_etc_with_token() == []
    assert kinds == {"d", "link"}, f"the race was not met: only {kinds}"


def test_cp_into_a_swapped_path_never_writes_the_host(kade, racer, host_secret, tmp_path):
    name = f"kade-race-in-{TOKEN}"
    (tmp_path / name).write_text("from the host\n")
    tree = tmp_path / f"kade-race-tree-{TOKEN}"
    (tree / "sub").mkdir(parents=True)
    for n in range(8):
        (tree / "sub" / f"f{n}").write_text("tree\n")
    for _ in range(ROUNDS):
        for src in (tmp_path / name, tree):
            _copy_or_fail_cleanly(kade, str(src), f"{racer}:/race/d/")
        assert host_etc_with_token() == [], "cp wrote into the host's /etc"
    with open(host_secret) as f:
        assert f.read() == SECRET
    # both sides were met: some copies went through the link, into the container's /etc
    through_link = raw(kade, "cp", f"{racer}:/etc/{name}", "-")
    assert through_link.returncode == 0, "no copy went through the symlink"
    # the racer still swaps under /race, so one copy out may lose the race and fail
    # cleanly (as docker's does): the first that succeeds shows what landed there
    for _ in range(20):
        out = raw(kade, "cp", f"{racer}:/race", "-")
        if out.returncode == 0 and out.stdout:
            break
    in_dirs = [n for n in _members(out.stdout) if n.endswith("/" + name)]
    assert in_dirs, "no copy landed in the real directory"
