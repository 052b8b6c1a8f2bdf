"""The real docker CLI against `kade system service`."""

import os
import pty
import select
import time

import pytest


def test_version_and_info(docker):
    v = docker("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
               check=True)
    assert v.stdout.split() == ["1.50", "1.24"]
    info = docker("info", "--format", "{{.OSType}} {{.Images}} {{.Swarm.LocalNodeState}}",
                  check=True)
    assert info.stdout.split() == ["linux", "1", "inactive"]


def test_run_rm_prints_and_propagates_exit_code(docker, kade):
    assert docker("run", "--rm", "busybox", "echo", "hi", check=True).stdout == "hi\n"
    failed = docker("run", "--rm", "busybox", "sh", "-c", "echo bad >&2; exit 3")
    assert (failed.returncode, failed.stdout, failed.stderr) == (3, "", "bad\n")
    assert kade("ps", "-aq").stdout == ""  # --rm left nothing behind


def test_run_detached_logs_stop_rm(docker, kade):
    cid = docker("run", "-d", "--name", "web", "busybox", "sh", "-c",
                 "echo out; echo err >&2; exec sleep 300", check=True).stdout.strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while "out" not in docker("logs", "web").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = docker("logs", "web", check=True)
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    ps = docker("ps", "--format", "{{.Names}} {{.State}}", check=True)
    assert "web running" in ps.stdout.splitlines()
    state = docker("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Id}}", "web", check=True)
    assert state.stdout.split() == ["running", "/web", cid]
    docker("stop", "-t", "1", "web", check=True)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", "web").stdout.strip() == "137"
    docker("rm", "web", check=True)
    gone = docker("inspect", "web")
    assert gone.returncode == 1 and "No such object: web" in gone.stderr
    assert "web" not in kade("ps", "-a").stdout


def test_exec_output_and_exit_code(docker):
    docker("run", "-d", "--name", "ex", "busybox", "sleep", "300", check=True)
    try:
        out = docker("exec", "ex", "sh", "-c", "echo in-exec; echo e >&2; exit 4")
        assert (out.returncode, out.stdout, out.stderr) == (4, "in-exec\n", "e\n")
        fed = docker("exec", "-i", "ex", "cat", input="piped\n")
        assert (fed.returncode, fed.stdout) == (0, "piped\n")
    finally:
        docker("rm", "-f", "ex")


def _in_pty(argv: list[str], typed: bytes = b"", timeout: float = 30) -> tuple[bytes, int]:
    """Runs argv on a new pty (a user's terminal); types `typed` at the first prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvp(argv[0], argv)
    out, sent = b"", not typed
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        if not sent and b"# " in out:
            os.write(fd, typed)
            sent = True
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)


def test_run_it_through_a_real_pty(service, docker_cli):
    host = ["-H", f"unix://{service}"]
    out, code = _in_pty([docker_cli, *host, "run", "-it", "--rm", "busybox", "tty"])
    assert (out, code) == (b"/dev/pts/0\r\n", 0)
    out, code = _in_pty([docker_cli, *host, "run", "-it", "--rm", "busybox", "sh"],
                        typed=b"echo typed-$((6*7)); exit 5\r")
    assert b"typed-42" in out and code == 5


def test_unknown_image_is_docker_404(docker):
    out = docker("create", "--pull", "never", "busybx")
    assert out.returncode != 0 and "No such image: busybx" in out.stderr


@pytest.fixture
def client(service):
    docker_py = pytest.importorskip("docker")
    c = docker_py.DockerClient(base_url=f"unix://{service}")
    yield c
    c.close()


def test_docker_py(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.50"
    assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"
    c = client.containers.run("busybox", "sleep 300", detach=True, name="dp")
    try:
        assert "dp" in [x.name for x in client.containers.list()]
        assert c.exec_run("echo via-exec") == (0, b"via-exec\n")
    finally:
        c.remove(force=True)
    assert "dp" not in [x.name for x in client.containers.list(all=True)]


def test_cp_both_ways_and_events(docker, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("copied in\n")
    docker("run", "-d", "--name", "files", "busybox", "sleep", "300", check=True)
    try:
        docker("cp", str(src), "files:/tmp/in.txt", check=True)
        assert docker("exec", "files", "cat", "/tmp/in.txt").stdout == "copied in\n"
        docker("cp", "files:/tmp/in.txt", str(tmp_path / "back.txt"), check=True)
        assert (tmp_path / "back.txt").read_text() == "copied in\n"
        missing = docker("cp", "files:/nonexistent", str(tmp_path / "x"))
        assert missing.returncode == 1 and "Could not find the file /nonexistent" in \
            missing.stderr
    finally:
        docker("rm", "-f", "files", check=True)
    until = str(int(time.time()) + 1)  # whole seconds, as the CLI sends them
    events = docker("events", "--since", "5m", "--until", until, "--filter",
                    "container=files", "--format", "{{.Action}}", check=True)
    assert events.stdout.split()[:2] == ["create", "start"]
    assert events.stdout.split()[-1] == "destroy"
    bad = docker("events", "--filter", "bogus=1", "--until", "0s")
    assert bad.returncode == 1 and "invalid filter 'bogus'" in bad.stderr


def test_no_socket_reaches_a_container(docker):
    """Issue 9 through the API: attached and exec'd processes get pipes or their own
    pty, never the hijacked connection's socket."""
    listing = "for f in /proc/self/fd/*; do readlink $f; done; true"
    run = docker("run", "--rm", "-i", "busybox", "sh", "-c", listing, input="", check=True)
    assert "socket:" not in run.stdout and "pipe:" in run.stdout
    docker("run", "-d", "--name", "fds", "busybox", "sleep", "300", check=True)
    try:
        ex = docker("exec", "-i", "fds", "sh", "-c", listing, input="", check=True)
        assert "socket:" not in ex.stdout and "pipe:" in ex.stdout
    finally:
        docker("rm", "-f", "fds", check=True)
