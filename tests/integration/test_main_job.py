"""The README's main job, offline: `kade build` examples/hello-world, push it to `kade registry serve`
on loopback, remove it, and `kade run` pulls it back and runs it."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


def test_build_push_remove_and_run_pulls_it_back(kade, registry):
    image = f"{registry}/hello-world"
    built = kade("build", "--progress", "plain", "-t", image, str(EXAMPLE))
    assert "[2/4] COPY hello /hello" in built.stderr and "DONE" in built.stderr
    pushed = kade("push", image).stdout
    assert "Pushed" in pushed and "latest: digest: sha256:" in pushed
    kade("rmi", image)
    kade("builder", "prune", "-a", "-f")  # the build cache holds the layers too
    run = kade("run", "--rm", image)
    assert f"Unable to find image '{image}:latest' locally" in run.stderr
    # as with docker run, the pull's lines go to stderr and stdout is the container's
    assert "Pull complete" in run.stderr and "Status: Downloaded newer image" in run.stderr
    assert run.stdout.startswith("\nHello from Kade!\n")
    assert "kade build" in run.stdout
    assert kade("run", "--rm", image).stdout == run.stdout  # now local: no pull
    kade("build", "-q", "-t", image, str(EXAMPLE))
    rebuilt = kade("build", "--progress", "plain", "-t", image, str(EXAMPLE)).stderr
    assert rebuilt.count("CACHED") == 3  # COPY, RUN, CMD: nothing changed
