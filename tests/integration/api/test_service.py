"""`kade system service` itself: idle exit, socket activation, refused listeners."""

import os
import socket
import subprocess
import sys
import time

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


def _ping(path: str) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    return out


def test_exits_when_idle_and_removes_its_socket(kade, tmp_path):
    sock = str(tmp_path / "s.sock")
    proc = subprocess.Popen(KADE + ["--root", kade.root, "system", "service", "--socket", sock,
                                    "--time", "1"])
    try:
        while not os.path.exists(sock):
            assert proc.poll() is None
            time.sleep(0.02)
        assert oct(os.stat(sock).st_mode & 0o777) == "0o660"
        assert _ping(sock).endswith(b"OK")
        assert proc.wait(30) == 0
        assert not os.path.exists(sock)
    finally:
        proc.kill()


def test_socket_activation(kade, tmp_path):
    """systemd's protocol: a listening socket on fd 3, LISTEN_PID and LISTEN_FDS."""
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    script = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
              "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
              "os.execv(sys.executable, [sys.executable, '-c', "
              "'from kade.cli.main import entry; entry()', '--root', sys.argv[2], "
              "'system', 'service', '-H', 'fd://', '--time', '0'])")
    proc = subprocess.Popen([sys.executable, "-c", script, str(listener.fileno()), kade.root],
                            pass_fds=(listener.fileno(),))
    listener.close()
    try:
        assert _ping(path).endswith(b"OK")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_tcp_listener_refused_off_loopback_without_tls(kade):
    out = kade("system", "service", "-H", "tcp://0.0.0.0:23750", "--time", "1", check=False)
    assert out.returncode != 0
    assert 'refusing to listen on "0.0.0.0:23750" without TLS' in out.stderr
    assert "Traceback" not in out.stderr


def test_loopback_tcp_listener(kade, docker_cli):
    port = _free_port()
    proc = subprocess.Popen(KADE + ["--root", kade.root, "system", "service", "-H",
                                    f"tcp://127.0.0.1:{port}", "--time", "0"])
    try:
        deadline = time.monotonic() + 20
        while True:
            out = subprocess.run([docker_cli, "-H", f"tcp://127.0.0.1:{port}", "version",
                                  "--format", "{{.Server.Os}}"], capture_output=True, text=True)
            if out.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert out.stdout == "linux\n"
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
