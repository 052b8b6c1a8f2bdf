"""A container's stdin, stdout and stderr through the pipes Kade copies (issue 9):
what a user pipes in comes out whole, the streams stay apart, EOF ends `cat`,
exit codes are the process's, and nothing waits on what never comes."""

import os
import pty
import subprocess
import sys

import pytest
from test_run_flags import _talk, _wait

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
RUNC = "/usr/sbin/runc"
RUNTIMES = ["kade", pytest.param(RUNC, marks=pytest.mark.skipif(
    not os.path.exists(RUNC), reason="needs Debian's runc (apt-get install runc)"))]
# every byte value, and more than any pipe holds: a pump that blocked on a full
# stdin pipe while `cat` waits on its full stdout pipe would never end
BLOB = bytes(range(256)) * 16384 + os.urandom(1 << 20)


def _box(request, runtime: str) -> str:
    """The module's running container (tests/conftest.py) of a runtime parameter."""
    return request.getfixturevalue("box" if runtime == "kade" else "runc_box")


def _raw(kade, *args, input: bytes | None = None, timeout: int = 60):
    return subprocess.run(KADE + ["--root", kade.root, *args], input=input,
                          capture_output=True, timeout=timeout)


def test_run_i_reads_piped_input_to_its_end(kade):
    assert kade("run", "-i", "--rm", "busybox", "cat", input="hi\n").stdout == "hi\n"
    got = kade("run", "--rm", "-i", "busybox", "sh", "-c", "read x; echo got $x", input="you\n")
    assert got.stdout == "got you\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_run_i_passes_binary_data_whole_both_ways(kade, runtime):
    p = _raw(kade, "run", "-i", "--rm", "--runtime", runtime, "busybox", "cat", input=BLOB)
    assert p.returncode == 0, p.stderr
    assert p.stdout == BLOB


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_i_passes_binary_data_whole_both_ways(kade, request, runtime):
    p = _raw(kade, "exec", "-i", _box(request, runtime), "cat", input=BLOB)
    assert p.returncode == 0, p.stderr
    assert p.stdout == BLOB


def test_start_a_i_feeds_the_container(kade):
    kade("create", "-i", "--name", "stdio-start", "busybox", "sh", "-c", "read x; echo got $x")
    try:
        p = kade("start", "-a", "-i", "stdio-start", input="in\n")
        assert p.stdout == "got in\n"
    finally:
        kade("rm", "-f", "stdio-start")


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_without_i_stdin_is_at_its_end_at_once(kade, box, verb):
    where = ["run", "--rm", "busybox"] if verb == "run" else ["exec", box]
    p = kade(*where, "sh", "-c", "cat; echo end", input="not for the container\n")
    assert p.stdout == "end\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_keeps_stdout_and_stderr_apart_and_returns_the_code(kade, request, runtime):
    name = _box(request, runtime)
    p = kade("exec", name, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    assert kade("exec", name, "sh", "-c", "kill -9 $$", check=False).returncode == 137


def test_run_keeps_stdout_and_stderr_apart(kade):
    p = kade("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo err >&2; exit 4",
             input="out\n", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (4, "out\n", "err\n")


def test_a_container_that_closed_its_output_still_gets_its_input(kade):
    p = kade("run", "--rm", "-i", "busybox", "sh", "-c",
             "exec >&- 2>&-; read x; [ \"$x\" = fed ] && exit 4", input="fed\n", check=False)
    assert p.returncode == 4


def test_exec_returns_when_its_process_does_though_a_child_holds_the_output(kade, box):
    """docker gives an exec's streams a short grace after its exit, no more."""
    p = kade("exec", box, "sh", "-c", "sleep 3600 & echo $! > /tmp/held; echo done")
    assert p.stdout == "done\n"
    kade("exec", box, "sh", "-c", "kill $(cat /tmp/held)")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_it_is_the_processes_own_terminal(kade, request, runtime):
    name = _box(request, runtime)
    pid, master = pty.fork()
    if pid == 0:  # the user's terminal runs `kade exec -it box sh`
        os.execv(KADE[0], KADE + ["--root", kade.root, "exec", "-it", name, "sh"])
    status = None
    try:
        _talk(master, b"", b"/ #")
        out = _talk(master, b"tty; readlink /proc/self/fd/0; echo done-$((6*7))\r", b"done-42")
        assert out.count(b"/dev/pts/") == 2, out
        os.write(master, b"exit 5\r")
        status = _wait(pid, master, 10)
    finally:
        if status is None:
            os.kill(pid, 9)
            status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 5
