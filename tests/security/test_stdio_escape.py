"""Issue 9, escape #1: a container must never get a descriptor of its caller.

Given the caller's own stdio, a container reopens it through /proc/self/fd/N in
any mode: it reads and truncates the host file behind `>> file`, overwrites a
read-only file behind `< file`, and a process it leaves behind reads what the
user types after `kade exec` returned. Each test runs the attack for real, with
host files as the CLI's stdio, and fails if it works.
"""

import os
import re
import subprocess
import sys

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
RUNC = "/usr/sbin/runc"
RUNTIMES = ["kade", pytest.param(RUNC, marks=pytest.mark.skipif(
    not os.path.exists(RUNC), reason="needs Debian's runc (apt-get install runc)"))]
# what a container's stdio may be: a pipe made for it, a pty of its own, /dev/null
OWN = re.compile(r"(pipe:\[\d+\]|/dev/pts/\d+|/dev/null)")
READLINKS = "for f in 0 1 2; do echo fd$f=$(readlink /proc/self/fd/$f); done"


def _box(request, runtime: str) -> str:
    """The module's running container (tests/conftest.py) of a runtime parameter."""
    return request.getfixturevalue("box" if runtime == "kade" else "runc_box")


def _cli(kade, *args, stdin, stdout, stderr, timeout=60):
    """The CLI with the given host descriptors as its own stdio."""
    return subprocess.run(KADE + ["--root", kade.root, *args], stdin=stdin, stdout=stdout,
                          stderr=stderr, timeout=timeout)


def _host_files(tmp_path, content=b"host secret\n"):
    """stdin, stdout and stderr for the CLI: files on the host, by path."""
    paths = [tmp_path / name for name in ("in", "out", "err")]
    for path in paths:
        path.write_bytes(content if path.name == "in" else b"")
    return paths


def _assert_only_own_fds(out: str, paths) -> None:
    out = out.replace("\r", "")
    links = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("fd"))
    assert sorted(links) == ["fd0", "fd1", "fd2"], out
    for fd, target in links.items():
        assert OWN.fullmatch(target), f"{fd} is the caller's {target!r}"
    assert not any(str(p) in out for p in paths)


# --- (a) the file behind `>> hostfile` -------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_cannot_read_or_truncate_the_file_given_as_its_stdout(kade, tmp_path, request,
                                                                   runtime):
    name = _box(request, runtime)
    host = tmp_path / "hostfile"
    host.write_bytes(b"precious host data\n")
    err = tmp_path / "err"
    # read fd 1 back if it is a file (reopening a pipe for reading would wait on
    # ourselves), then truncate whatever it is
    attack = "[ -f /proc/self/fd/1 ] && head -n1 < /proc/self/fd/1 >&2; : > /proc/self/fd/1"
    with open(host, "ab") as out, open(err, "wb") as errf:
        proc = _cli(kade, "exec", name, "sh", "-c", attack, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=errf)
    assert proc.returncode == 0, err.read_text()
    assert host.read_bytes() == b"precious host data\n"
    assert b"precious" not in err.read_bytes()


# --- (b) the read-only file behind `< file` --------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_i_cannot_write_a_read_only_file_given_as_its_stdin(kade, tmp_path, runtime):
    ro = tmp_path / "readonly"
    ro.write_bytes(b"read only\n")
    ro.chmod(0o444)  # root writes it anyway: only the open mode of fd 0 protects it
    with open(ro, "rb") as stdin:
        proc = _cli(kade, "run", "--rm", "-i", "--runtime", runtime, "busybox", "sh", "-c",
                    "echo x > /proc/self/fd/0", stdin=stdin, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert ro.read_bytes() == b"read only\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_i_cannot_write_a_read_only_file_given_as_its_stdin(kade, tmp_path, request,
                                                                 runtime):
    name = _box(request, runtime)
    ro = tmp_path / "readonly"
    ro.write_bytes(b"read only\n")
    ro.chmod(0o444)
    with open(ro, "rb") as stdin:
        proc = _cli(kade, "exec", "-i", name, "sh", "-c", "echo x > /proc/self/fd/0",
                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert ro.read_bytes() == b"read only\n"


# --- (c) what the container's fds 0, 1, 2 are -------------------------------------
@pytest.mark.parametrize("args", [
    ["run", "--rm"], ["run", "--rm", "-i"], ["run", "--rm", "-t"], ["run", "--rm", "-i", "-t"],
    pytest.param(["run", "--rm", "--runtime", RUNC], marks=RUNTIMES[1].marks),
    pytest.param(["run", "--rm", "-i", "--runtime", RUNC], marks=RUNTIMES[1].marks),
])
def test_run_gives_the_container_only_its_own_stdio(kade, tmp_path, args):
    paths = _host_files(tmp_path)
    with open(paths[0], "rb") as i, open(paths[1], "wb") as o, open(paths[2], "wb") as e:
        proc = _cli(kade, *args, "busybox", "sh", "-c", READLINKS, stdin=i, stdout=o, stderr=e)
    assert proc.returncode == 0, paths[2].read_text()
    _assert_only_own_fds(paths[1].read_text(), paths)


@pytest.mark.parametrize("flags", [["-a"], ["-a", "-i"]])
def test_start_attached_gives_the_container_only_its_own_stdio(kade, tmp_path, flags):
    name = "stdio-start-" + "".join(flags).replace("-", "")
    kade("create", "-i", "--name", name, "busybox", "sh", "-c", READLINKS)
    paths = _host_files(tmp_path)
    try:
        with open(paths[0], "rb") as i, open(paths[1], "wb") as o, open(paths[2], "wb") as e:
            proc = _cli(kade, "start", *flags, name, stdin=i, stdout=o, stderr=e)
        assert proc.returncode == 0, paths[2].read_text()
        _assert_only_own_fds(paths[1].read_text(), paths)
    finally:
        kade("rm", "-f", name)


@pytest.mark.parametrize("runtime,flags", [
    ("kade", []), ("kade", ["-i"]), ("kade", ["-t"]), ("kade", ["-i", "-t"]),
    # runc's -t wants the caller's terminal, and gives the process only a pty it made
    pytest.param(RUNC, [], marks=RUNTIMES[1].marks),
    pytest.param(RUNC, ["-i"], marks=RUNTIMES[1].marks),
])
def test_exec_gives_the_process_only_its_own_stdio(kade, tmp_path, request, runtime, flags):
    name = _box(request, runtime)
    paths = _host_files(tmp_path)
    with open(paths[0], "rb") as i, open(paths[1], "wb") as o, open(paths[2], "wb") as e:
        proc = _cli(kade, "exec", *flags, name, "sh", "-c", READLINKS, stdin=i, stdout=o,
                    stderr=e)
    assert proc.returncode == 0, paths[2].read_text()
    _assert_only_own_fds(paths[1].read_text(), paths)


def test_detached_exec_gets_nothing_of_the_caller(kade, tmp_path, box):
    paths = _host_files(tmp_path)
    with open(paths[0], "rb") as i, open(paths[1], "wb") as o, open(paths[2], "wb") as e:
        proc = _cli(kade, "exec", "-d", "-i", box, "sh", "-c", READLINKS + " > /tmp/links",
                    stdin=i, stdout=o, stderr=e)
    assert proc.returncode == 0, paths[2].read_text()
    # the detached process may still be running: wait for its file, in the container
    out = kade("exec", box, "sh", "-c",
               "until grep -q fd2 /tmp/links 2>/dev/null; do usleep 10000; done; "
               "cat /tmp/links; rm /tmp/links").stdout
    links = dict(line.split("=", 1) for line in out.splitlines())
    assert links["fd0"] == links["fd2"] == "/dev/null", out


def test_a_build_run_step_gets_only_its_own_stdio(kade, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {READLINKS}\n")
    paths = _host_files(tmp_path)
    with open(paths[0], "rb") as i, open(paths[1], "wb") as o, open(paths[2], "wb") as e:
        proc = _cli(kade, "build", "--progress=plain", "--no-cache", "-t", "stdio-build",
                    str(ctx), stdin=i, stdout=o, stderr=e, timeout=120)
    log = paths[1].read_text() + paths[2].read_text()
    assert proc.returncode == 0, log
    lines = [re.sub(r"^#\d+ [\d.]+ ", "", ln) for ln in log.splitlines()]
    _assert_only_own_fds("\n".join(ln for ln in lines if re.match(r"fd\d=", ln)), paths)
    kade("rmi", "stdio-build")


# --- (d) what the user types after exec returned -------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("flags", [["-i"], []])
def test_a_process_left_by_exec_cannot_read_the_callers_input_afterwards(
        kade, request, runtime, flags):
    name = _box(request, runtime)
    kade("exec", name, "rm", "-f", "/tmp/stolen", "/tmp/catpid")
    # the shell's stdin kept on fd 3 (a background job's stdin is /dev/null), then a
    # reader left behind once the exec'd shell is gone
    attack = "sleep 1; exec 3<&0; cat <&3 > /tmp/stolen & echo $! > /tmp/catpid"
    r, w = os.pipe()
    try:
        proc = _cli(kade, "exec", *flags, name, "sh", "-c", attack, stdin=r,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(r)
        r = -1
        assert proc.returncode == 0, proc.stderr
        try:
            os.write(w, b"typed after exec returned\n")  # the user goes on typing
        except BrokenPipeError:
            pass  # no reader of the caller's input is left anywhere: the aim
    finally:
        os.close(w)
        if r >= 0:
            os.close(r)
    # the reader ends either way (its input closed): wait for it, then see what it got
    out = kade("exec", name, "sh", "-c",
               "p=$(cat /tmp/catpid); "
               "while [ -e /proc/$p ] && [ \"$(cut -d' ' -f3 /proc/$p/stat)\" != Z ]; "
               "do usleep 10000; done; cat /tmp/stolen").stdout
    assert "typed" not in out
