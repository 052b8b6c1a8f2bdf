"""How a process enters a container (issue 9, escapes #2 and #3), attacked for real.

#2: a container with CAP_SYS_PTRACE races every new process in its pid namespace and
    tries to read and write the host's files through /proc/<pid>/root.
#3: /proc/self/exe of the process that enters a container must never be the host's
    Python (nor any writable host binary): it is kade's sealed trampoline.
Each test fails if the attack works.
"""

import errno
import fcntl
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kade.runtime import trampoline

EXECS = 24
HOST_PYTHON = os.path.realpath(sys.executable)

# For every pid: read the marker and write beside it through /proc/<pid>/root, and note
# where /proc/<pid>/exe points the first time the pid is seen. A chrooted sleep is the
# control: its root is not the racer's, and the same paths reach its files.
RACER = r"""
M=%(marker)s
mkdir -p /seen /found /ctl$M
cp /bin/busybox /ctl/busybox
echo control > /ctl$M/secret
chroot /ctl /busybox sleep 100000 &
while :; do
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    if read -r line 2>/dev/null < $p/root$M/secret; then echo -n > /found/$line; fi
    [ -e $p/root$M/written ] || echo pwned 2>/dev/null > $p/root$M/written
    if [ ! -e /seen/$n ]; then echo "$n $(readlink $p/exe 2>&1)" > /seen/$n; fi
  done
done
"""
# an exec'd process waits until the racer has seen it, so every exec is raced
WAIT_TO_BE_SEEN = "until [ -s /seen/$$ ]; do :; done"


@pytest.fixture
def host_marker():
    path = Path(f"/tmp/kade-marker-{secrets.token_hex(8)}")
    path.mkdir()
    token = secrets.token_hex(8)
    (path / "secret").write_text(token + "\n")
    yield path, token
    shutil.rmtree(path)


def test_a_ptrace_capable_racer_never_reaches_the_hosts_root_through_exec(kade, host_marker):
    marker, token = host_marker
    name = f"racer-{secrets.token_hex(4)}"
    kade("run", "-d", "--name", name, "--cap-add", "SYS_PTRACE", "busybox",
         "sh", "-c", RACER % {"marker": marker})
    try:
        kade("exec", name, "sh", "-c", "until [ -e /found/control ]; do :; done", timeout=60)
        for _ in range(EXECS):
            kade("exec", name, "sh", "-c", WAIT_TO_BE_SEEN, timeout=60)
        found = kade("exec", name, "ls", "/found").stdout.split()
        seen = kade("exec", name, "sh", "-c", "cat /seen/*").stdout
        control_written = kade("exec", name, "cat", f"/ctl{marker}/written",
                               check=False).stdout
    finally:
        kade("rm", "-f", name, check=False)
    assert "control" in found and control_written == "pwned\n"   # the racer works
    assert token not in found, "the racer read a host file through /proc/<pid>/root"
    assert not (marker / "written").exists(), "the racer wrote a host file"
    assert len(seen.splitlines()) >= EXECS
    assert "python" not in seen and HOST_PYTHON not in seen, seen


def _give_host_pythons_libraries(kade, name: str, tmp_path: Path) -> None:
    """Copy the host Python's loader and libraries into the container, so that if
    /proc/self/exe were the host's Python, it would run there and say so."""
    tree = tmp_path / "libs"
    ldd = subprocess.run(["ldd", HOST_PYTHON], capture_output=True, text=True, check=True)
    for word in ldd.stdout.split():
        if word.startswith("/"):
            target = tree / word.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(word), target)
    for top in tree.iterdir():
        kade("cp", str(top), f"{name}:/")


def test_proc_self_exe_of_a_container_command_is_not_the_hosts_python(kade, tmp_path):
    name = f"exe-{secrets.token_hex(4)}"
    kade("create", "--name", name, "busybox", "/proc/self/exe", "--version")
    try:
        _give_host_pythons_libraries(kade, name, tmp_path)
        run = kade("start", "-a", name, check=False)
    finally:
        kade("rm", "-f", name, check=False)
    assert "Python" not in run.stdout + run.stderr
    assert run.returncode != 0


def test_proc_self_exe_of_an_exec_is_not_the_hosts_python(kade, tmp_path):
    name = f"exe-{secrets.token_hex(4)}"
    kade("run", "-d", "--name", name, "busybox", "sleep", "1000")
    try:
        _give_host_pythons_libraries(kade, name, tmp_path)
        execd = kade("exec", name, "/proc/self/exe", "--version", check=False)
    finally:
        kade("rm", "-f", name, check=False)
    assert "Python" not in execd.stdout + execd.stderr
    assert execd.returncode != 0


def test_a_shebang_of_proc_self_exe_does_not_run_the_hosts_python(kade, tmp_path):
    script = tmp_path / "s"
    script.write_text("#!/proc/self/exe\nimport sys; print('Python', sys.version)\n")
    script.chmod(0o755)
    name = f"shebang-{secrets.token_hex(4)}"
    kade("create", "--name", name, "busybox", "/s")
    try:
        _give_host_pythons_libraries(kade, name, tmp_path)
        kade("cp", str(script), f"{name}:/s")
        started = kade("start", "-a", name, check=False)
    finally:
        kade("rm", "-f", name, check=False)
    assert "Python" not in started.stdout + started.stderr
    assert started.returncode != 0


def _read_all(fd: int) -> str:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data.decode()


def test_a_created_inits_exe_is_the_sealed_trampoline(harness):
    """A process exec'd into a created (not yet started) container, even with
    CAP_SYS_PTRACE, finds pid 1 to be the trampoline, and cannot write to it."""
    cid, bundle = harness.bundle(["true"])
    harness.create(cid, bundle)
    process = harness.spec(bundle)["process"]
    caps = sorted({*process["capabilities"]["bounding"], "CAP_SYS_PTRACE"})
    process = {**process, "capabilities": {k: caps for k in process["capabilities"]},
               "args": ["sh", "-c", "readlink /proc/1/exe; echo x >> /proc/1/exe && echo wrote"]}
    r, w = os.pipe()
    pid = harness.rt.exec(cid, process, stdio=(None, w, w))
    os.close(w)
    out = _read_all(r)
    os.close(r)
    os.waitpid(pid, 0)
    assert "memfd:kade-init" in out.splitlines()[0], out
    assert "python" not in out and "wrote" not in out


# -- the trampoline itself, on the host ---------------------------------------

def _spawn(mode: str, fifo: str, path: str, args: list[str], env: dict) -> tuple[int, int, int]:
    """Exec the trampoline in a child; returns (child, report read end, output read end)."""
    rep_r, rep_w = os.pipe()
    out_r, out_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.dup2(out_w, 1)
            os.set_inheritable(rep_w, True)
            os.execve(trampoline.fd(), trampoline.argv(mode, rep_w, fifo, path, tuple(args)),
                      env)
        finally:
            os._exit(99)
    os.close(rep_w)
    os.close(out_w)
    return child, rep_r, out_r


def _exit_code(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_exec_mode_clones_a_child_of_ours_that_runs_the_command_with_args_and_env():
    args = ["zero", "a b", "", "c"]
    child, rep, out = _spawn(trampoline.EXEC, "", "/bin/sh",
                             ["/bin/sh", "-c", 'printf "%s|" "$0" "$@" "$X"', *args],
                             {"X": "x=1"})
    report = _read_all_bytes(rep)
    output = _read_all(out)
    assert _exit_code(child) == 0
    (tag, pid), = trampoline.records(report)
    assert tag == trampoline.TAG_PID
    assert _exit_code(pid) == 0                 # CLONE_PARENT: the clone is our child
    assert output == "zero|a b||c|x=1|"


def _read_all_bytes(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return data


@pytest.mark.parametrize(("path", "code", "err"), [
    ("/nonexistent/cmd", 127, errno.ENOENT), ("/etc/passwd", 126, errno.EACCES)])
def test_exec_failures_are_reported_and_exit_like_docker(path, code, err):
    child, rep, out = _spawn(trampoline.EXEC, "", path, ["x"], {})
    report = _read_all_bytes(rep)
    os.close(out)
    assert _exit_code(child) == 0
    records = dict(trampoline.records(report))
    assert records[trampoline.TAG_EXEC] == err
    assert _exit_code(records[trampoline.TAG_PID]) == code


def test_fifo_mode_waits_for_a_reader_then_execs_and_reports_into_the_fifo(tmp_path):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo, 0o600)
    for path, expected, code in (("/bin/echo", b"", 0), ("/nonexistent", None, 127)):
        held = os.open(fifo, os.O_PATH)
        child = os.fork()
        if child == 0:
            try:
                os.set_inheritable(held, True)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.execve(trampoline.fd(), trampoline.argv(
                    trampoline.FIFO, held, f"/proc/self/fd/{held}", path, ("echo", "hi")), {})
            finally:
                os._exit(99)
        os.close(held)
        reader = os.open(fifo, os.O_RDONLY)        # what start() does: lets it go on
        report = _read_all_bytes(reader)
        assert _exit_code(child) == code
        if expected is not None:
            assert report == expected
        else:
            assert trampoline.records(report) == [(trampoline.TAG_EXEC, errno.ENOENT)]


def test_run_by_hand_it_does_nothing():
    run = subprocess.run([f"/proc/self/fd/{trampoline.fd()}", "--version"],
                         pass_fds=(trampoline.fd(),), capture_output=True)
    assert (run.returncode, run.stdout, run.stderr) == (127, b"", b"")


def test_the_memfd_is_sealed_and_cannot_be_written():
    fd = trampoline.fd()
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    for seal in (fcntl.F_SEAL_SEAL, fcntl.F_SEAL_WRITE, fcntl.F_SEAL_GROW,
                 fcntl.F_SEAL_SHRINK):
        assert seals & seal
    with pytest.raises(PermissionError):
        os.pwrite(fd, b"\0", 0)
    with pytest.raises(OSError):
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        try:
            os.write(w, b"\0")
        finally:
            os.close(w)
    with pytest.raises(OSError):
        os.ftruncate(fd, 0)
    assert os.pread(fd, 4, 0) == b"\x7fELF"
    assert trampoline.fd() == fd                 # one per process
