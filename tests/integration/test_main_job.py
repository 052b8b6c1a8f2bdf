"""The README's main job, offline: build hello-world, push it to `kade registry serve`
on loopback, remove it, and `kade run` pulls it back and runs it."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


@pytest.fixture
def registry(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(KADE + ["registry", "serve", "--addr", f"127.0.0.1:{port}",
                                    "--root", str(tmp_path / "registry")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_build_push_remove_and_run_pulls_it_back(kade, registry):
    image = f"{registry}/hello-world"
    kade("run", "--name", "hello-build", "busybox", "sh", "-c",
         "printf '#!/bin/sh\\necho Hello from Kade!\\n' > /hello; chmod +x /hello")
    kade("commit", "-c", 'CMD ["/hello"]', "hello-build", image)
    kade("rm", "hello-build")
    pushed = kade("push", image).stdout
    assert "Pushed" in pushed and "latest: digest: sha256:" in pushed
    kade("rmi", image)
    run = kade("run", "--rm", image)
    assert f"Unable to find image '{image}:latest' locally" in run.stderr
    # as with docker run, the pull's lines go to stderr and stdout is the container's
    assert "Pull complete" in run.stderr and "Status: Downloaded newer image" in run.stderr
    assert run.stdout == "Hello from Kade!\n"
    assert kade("run", "--rm", image).stdout == "Hello from Kade!\n"  # now local: no pull
