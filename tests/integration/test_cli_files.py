"""kade diff, export, commit and cp against real containers, running and stopped."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]

SCRIPT = ("mkdir /newdir; echo x > /newdir/f; rm /bin/ls; echo y >> /etc/passwd; "
          "rm -rf /home; mkdir /home; touch /home/z; ln -s / /evil; ln -s ../../.. /up; "
          "echo inside > /marker; touch /ready; exec sleep 600")
CHANGES = ["C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /evil", "C /home",
           "A /home/z", "A /marker", "A /newdir", "A /newdir/f", "A /ready", "A /up"]


def raw(kade, *args, input: bytes | None = None) -> subprocess.CompletedProcess:
    """The CLI with bytes in and out (tars)."""
    return subprocess.run(KADE + ["--root", kade.root, *args], input=input,
                          capture_output=True, timeout=60)


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.getnames()


def member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.extractfile(name).read()


def wait_ready(kade, name: str) -> None:
    for _ in range(100):
        if "A /ready" in kade("diff", name).stdout:
            return
        time.sleep(0.05)
    raise AssertionError(f"container {name} never got ready")


def no_mounts_under(root: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return not any(root in line for line in f)


@pytest.fixture(scope="module")
def running(kade):
    kade("run", "-d", "--name", "files-run", "busybox", "sh", "-c", SCRIPT)
    wait_ready(kade, "files-run")
    return "files-run"


@pytest.fixture(scope="module")
def stopped(kade):
    kade("run", "-d", "--name", "files-stop", "busybox", "sh", "-c", SCRIPT)
    wait_ready(kade, "files-stop")
    kade("stop", "-t", "0", "files-stop")
    return "files-stop"


@pytest.fixture(scope="module", autouse=True)
def leaves_no_mounts(kade):
    yield
    assert no_mounts_under(kade.root)


# --- diff -----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["running", "stopped"])
def test_diff_lists_changes_like_docker(kade, which, request):
    name = request.getfixturevalue(which)
    assert kade("diff", name).stdout.splitlines() == CHANGES


def test_diff_of_a_fresh_container_is_empty(kade):
    kade("create", "--name", "files-fresh", "busybox", "true")
    assert kade("diff", "files-fresh").stdout == ""


def test_diff_of_an_unknown_container(kade):
    proc = kade("diff", "nope", check=False)
    assert proc.returncode == 1
    assert proc.stderr == "Error response from daemon: no such container: nope\n"


# --- export ---------------------------------------------------------------------
@pytest.mark.parametrize("which", ["running", "stopped"])
def test_export_is_the_merged_root_without_mounts(kade, which, request, tmp_path):
    name = request.getfixturevalue(which)
    out = raw(kade, "export", name)
    assert out.returncode == 0, out.stderr
    got = names(out.stdout)
    assert {"newdir/f", "home/z", "bin/sh", "marker"} <= set(got)
    assert "bin/ls" not in got and not any(n.startswith("proc/") for n in got)
    assert member(out.stdout, "etc/passwd").endswith(b"y\n")
    kade("export", "-o", str(tmp_path / "out.tar"), name)
    assert names((tmp_path / "out.tar").read_bytes()) == got
    assert no_mounts_under(kade.root)


def test_export_refuses_a_terminal(kade, stopped):
    master, slave = os.openpty()
    try:
        proc = subprocess.run(KADE + ["--root", kade.root, "export", stopped], stdout=slave,
                              stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 1
    assert proc.stderr == (b"cowardly refusing to save to a terminal. "
                           b"Use the -o flag or redirect\n")


# --- commit ---------------------------------------------------------------------
def test_commit_a_stopped_container(kade, stopped):
    image_id = kade("commit", "-m", "msg", "-a", "me", "-c", "ENV A=1", stopped,
                    "files/img:v1").stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    out = kade("run", "--rm", "files/img:v1", "sh", "-c",
               "cat /newdir/f; echo $A; test -e /bin/ls || echo gone; ls /home; "
               "test -s /etc/hosts && echo hosts").stdout
    assert out == "x\n1\ngone\nz\nhosts\n"
    history = kade("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                   "files/img:v1").stdout.splitlines()
    assert history[0] == f"sh -c {SCRIPT}|msg"


def test_commit_a_running_container_pauses_it(kade, running):
    before = time.time()
    kade("commit", running, "files/run")
    actions = kade("events", "--since", str(before - 1), "--until", str(time.time() + 1),
                   "--filter", f"container={running}", "--format", "{{.Action}}").stdout.split()
    assert actions[-3:] == ["pause", "unpause", "commit"]
    assert kade("inspect", "-f", "{{.State.Status}}", running).stdout.strip() == "running"
    kade("commit", "--pause=false", running)


def test_commit_without_changes_adds_an_empty_layer(kade):
    kade("run", "--name", "files-same", "busybox", "true")  # started: mount points made
    assert kade("diff", "files-same").stdout == ""
    kade("commit", "files-same", "files/same")
    layers = kade("image", "inspect", "-f", "{{len .RootFS.Layers}}", "files/same").stdout
    base = kade("image", "inspect", "-f", "{{len .RootFS.Layers}}", "busybox").stdout
    assert layers == base


def test_commit_refuses_a_bad_reference(kade, stopped):
    proc = kade("commit", stopped, "Bad:Name", check=False)
    assert proc.returncode == 1 and "invalid reference format" in proc.stderr


# --- cp out of a container ----------------------------------------------------------
@pytest.mark.parametrize("which", ["running", "stopped"])
def test_cp_out(kade, which, request, tmp_path):
    name = request.getfixturevalue(which)
    kade("cp", f"{name}:/etc/passwd", str(tmp_path))
    assert (tmp_path / "passwd").read_text().endswith("y\n")
    kade("cp", f"{name}:/newdir", str(tmp_path / "copy"))  # new name: the dir, renamed
    assert (tmp_path / "copy" / "f").read_text() == "x\n"
    kade("cp", f"{name}:/newdir", str(tmp_path / "copy"))  # existing dir: goes inside
    assert (tmp_path / "copy" / "newdir" / "f").read_text() == "x\n"
    (tmp_path / "contents").mkdir()
    kade("cp", f"{name}:/newdir/.", str(tmp_path / "contents"))
    assert os.listdir(tmp_path / "contents") == ["f"]
    kade("cp", f"{name}:/newdir/f", str(tmp_path / "renamed"))
    assert (tmp_path / "renamed").read_text() == "x\n"


def test_cp_out_as_a_tar_stream(kade, running):
    out = raw(kade, "cp", f"{running}:/newdir", "-")
    assert out.returncode == 0 and sorted(names(out.stdout)) == ["newdir", "newdir/f"]


@pytest.mark.parametrize("which", ["running", "stopped"])
@pytest.mark.parametrize("path", ["/evil/marker", "/up/marker", "../../marker",
                                  "/evil/../../../marker"])
def test_cp_out_never_reads_the_host(kade, which, path, request):
    name = request.getfixturevalue(which)
    out = raw(kade, "cp", f"{name}:{path}", "-")
    assert member(out.stdout, "marker") == b"inside\n"


def test_cp_out_errors_like_docker(kade, running, tmp_path):
    proc = kade("cp", f"{running}:/nope", str(tmp_path), check=False)
    assert (proc.returncode, proc.stderr) == (
        1, f"Error response from daemon: Could not find the file /nope in container "
           f"{running}\n")
    proc = kade("cp", f"{running}:/etc", str(tmp_path / "missing" / "x"), check=False)
    assert proc.returncode == 1 and proc.stderr == (
        f'invalid output path: directory "{tmp_path}/missing" does not exist\n')
    (tmp_path / "file").write_text("")
    proc = kade("cp", f"{running}:/etc", str(tmp_path / "file"), check=False)
    assert (proc.returncode, proc.stderr) == (1, "cannot copy directory\n")


# --- cp into a container ------------------------------------------------------------
@pytest.mark.parametrize("which", ["running", "stopped"])
def test_cp_in(kade, which, request, tmp_path):
    name = request.getfixturevalue(which)
    (tmp_path / "hello").write_text("hello\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "g").write_text("g\n")
    kade("cp", str(tmp_path / "hello"), f"{name}:/tmp/")
    kade("cp", str(tmp_path / "hello"), f"{name}:/etc/passwd")  # a file over a file
    kade("cp", str(tmp_path / "tree"), f"{name}:/tmp/tree-{which}")
    with open(tmp_path / "in.tar", "wb") as f:
        with tarfile.open(fileobj=f, mode="w") as t:
            t.add(tmp_path / "hello", "streamed")
    out = raw(kade, "cp", "-", f"{name}:/root", input=(tmp_path / "in.tar").read_bytes())
    assert out.returncode == 0, out.stderr
    listing = raw(kade, "cp", f"{name}:/", "-")
    got = names(listing.stdout)
    assert {"tmp/hello", f"tmp/tree-{which}/sub/g", "root/streamed"} <= set(got)
    assert member(listing.stdout, "etc/passwd") == b"hello\n"
    diff = kade("diff", name).stdout.splitlines()
    assert "A /tmp/hello" in diff and "C /root" in diff


@pytest.mark.parametrize("which", ["running", "stopped"])
@pytest.mark.parametrize("dest", ["/evil/etc/", "/up/etc/", "../../../etc/"])
def test_cp_in_never_writes_the_host(kade, which, dest, request, tmp_path):
    name = request.getfixturevalue(which)
    planted = f"kade-test-{which}-{abs(hash(dest))}"
    (tmp_path / planted).write_text("pwned\n")
    kade("cp", str(tmp_path / planted), f"{name}:{dest}")
    assert not os.path.exists(f"/etc/{planted}")
    assert raw(kade, "cp", f"{name}:/etc/{planted}", "-").returncode == 0


def test_cp_in_refuses_entries_that_climb_out(kade, running, tmp_path):
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as t:
        info = tarfile.TarInfo("../../../../tmp/kade-escaped")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    out = raw(kade, "cp", "-", f"{running}:/tmp", input=evil.getvalue())
    assert out.returncode == 1 and b"escapes the root" in out.stderr
    assert not os.path.exists("/tmp/kade-escaped")


def test_cp_in_errors_like_docker(kade, running, tmp_path):
    (tmp_path / "f").write_text("")
    proc = kade("cp", str(tmp_path / "f"), f"{running}:/nonexist/", check=False)
    assert (proc.returncode, proc.stderr) == (1, "no such directory\n")
    proc = kade("cp", str(tmp_path / "f"), f"{running}:/nonexist/x", check=False)
    assert proc.stderr == (f"Error response from daemon: Could not find the file /nonexist "
                           f"in container {running}\n")
    proc = kade("cp", str(tmp_path), f"{running}:/etc/passwd", check=False)
    assert proc.stderr == "cannot copy directory\n"
    proc = kade("cp", "-", f"{running}:/etc/passwd", input="", check=False)
    assert proc.stderr == f'destination "{running}:/etc/passwd" must be a directory\n'
    proc = kade("cp", str(tmp_path / "missing"), f"{running}:/tmp", check=False)
    assert proc.stderr == f"lstat {tmp_path}/missing: no such file or directory\n"
    proc = kade("cp", "a", "b", check=False)
    assert proc.stderr == "must specify at least one container source\n"
    proc = kade("cp", "a:/x", "b:/y", check=False)
    assert proc.stderr == "copying between containers is not supported\n"
    proc = kade("cp", str(tmp_path / "f"), "nope:/tmp", check=False)
    assert proc.stderr == "Error response from daemon: no such container: nope\n"


def test_cp_sees_volumes_like_docker(kade, tmp_path):
    host = tmp_path / "bound"
    host.mkdir()
    (host / "h").write_text("from host\n")
    (tmp_path / "new").write_text("new\n")
    kade("run", "-d", "--name", "files-vol", "-v", f"{host}:/data", "-v", f"{host}:/ro:ro",
         "-v", "files-named:/vol", "busybox", "sh", "-c", "echo inside > /vol/x; sleep 600")
    for _ in range(100):
        if raw(kade, "cp", "files-vol:/vol/x", "-").returncode == 0:
            break
        time.sleep(0.05)
    for state in ("running", "stopped"):
        assert member(raw(kade, "cp", "files-vol:/data/h", "-").stdout, "h") == b"from host\n"
        assert member(raw(kade, "cp", "files-vol:/vol/x", "-").stdout, "x") == b"inside\n"
        kade("cp", str(tmp_path / "new"), f"files-vol:/data/{state}")
        assert (host / state).read_text() == "new\n"
        proc = kade("cp", str(tmp_path / "new"), "files-vol:/ro/", check=False)
        assert proc.returncode == 1 and "Read-only file system" in proc.stderr
        if state == "running":
            kade("stop", "-t", "0", "files-vol")
    assert kade("diff", "files-vol").stdout.splitlines() == ["A /data", "A /ro", "A /vol"]
