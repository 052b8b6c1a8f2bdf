"""`kade system service` on a temporary socket over the `kade` fixture's root."""

import os
import shutil
import subprocess
import sys
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


@pytest.fixture(scope="module")
def service(kade, tmp_path_factory):
    """The socket's path; the service runs until the module ends."""
    sock = str(tmp_path_factory.mktemp("api") / "docker.sock")
    proc = subprocess.Popen(KADE + ["--root", kade.root, "system", "service", "--socket", sock,
                                    "--time", "0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the service did not start: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    yield sock
    proc.terminate()
    proc.wait(10)
    assert not os.path.exists(sock), "the service left its socket behind"


@pytest.fixture(scope="module")
def docker_cli():
    path = shutil.which("docker")
    if path is None:
        pytest.skip("the docker CLI is not installed")
    return path


@pytest.fixture
def docker(service, docker_cli):
    def run(*args, input=None, timeout=60, check=False):
        proc = subprocess.run([docker_cli, "-H", f"unix://{service}", *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stdout}{proc.stderr}")
        return proc
    return run
