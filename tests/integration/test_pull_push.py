"""Kade's registry client against Debian's docker-registry (distribution 2.8).

Every test starts its own registry on 127.0.0.1 (a free port, its own storage
under the test's tmp dir) and stops it; nothing leaves loopback. Images come
from the offline bootstrap busybox plus `kade commit`. DOCKER_CONFIG points into
the test's tmp dir, so logins never touch the real ~/.docker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REGISTRY = "/usr/bin/docker-registry"


class DockerRegistry:
    """distribution's `registry serve` with a config of its own."""

    def __init__(self, base: Path, users: dict[str, str] | None = None, tls: bool = False):
        self.base = base
        self.users = users or {}
        self.tls = tls  # serve HTTPS with a self-signed certificate for 127.0.0.1 (ca.crt)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.base / "storage"

    def start(self) -> "DockerRegistry":
        self.base.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.users:
            lines = [subprocess.run(["htpasswd", "-Bbn", u, p], check=True, capture_output=True,
                                    text=True).stdout.strip() for u, p in self.users.items()]
            (self.base / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = (f"auth:\n  htpasswd:\n    realm: kade-test\n"
                    f"    path: {self.base / 'htpasswd'}\n")
        tls = ""
        if self.tls:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(self.base / "key.pem"),
                            "-out", str(self.base / "ca.crt"), "-days", "2",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            tls = (f"  tls:\n    certificate: {self.base / 'ca.crt'}\n"
                   f"    key: {self.base / 'key.pem'}\n")
        (self.base / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + tls + auth)
        log = open(self.base / "registry.log", "wb")  # noqa: SIM115 (lives with the process)
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.base / "config.yml")],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " +
                                   (self.base / "registry.log").read_text()[-2000:])
            try:
                if self.tls:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # 401: up, with auth
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_missing() -> str | None:
    if not os.path.exists(REGISTRY):
        return f"{REGISTRY} is missing: apt-get install docker-registry"
    if shutil.which("htpasswd") is None:
        return "htpasswd is missing: apt-get install apache2-utils"
    return None


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


@pytest.fixture
def registry(tmp_path):
    why = registry_missing()
    if why:
        pytest.skip(why)
    reg = DockerRegistry(tmp_path / "registry").start()
    yield reg
    reg.stop()


@pytest.fixture
def auth_registry(tmp_path):
    why = registry_missing()
    if why:
        pytest.skip(why)
    reg = DockerRegistry(tmp_path / "auth-registry", {"kade": "s3cret-pw"}).start()
    yield reg
    reg.stop()


class Patient:
    """A Kade CLI runner with a time-out fit for pulls and pushes on a busy disk."""

    TIMEOUT = 300

    def __init__(self, inner):
        self.inner = inner
        self.root = inner.root

    def __call__(self, *args, **kw):
        kw.setdefault("timeout", self.TIMEOUT)
        return self.inner(*args, **kw)

    def cleanup(self):
        self.inner.cleanup()


@pytest.fixture
def kade(kade):
    """The conftest's module-wide root (bootstrapped busybox), patiently."""
    return Patient(kade)


@pytest.fixture
def fresh(kade, tmp_path):
    """Another, empty Kade root (the `kade` fixture's class, its own directory)."""
    made = []

    def make(name: str = "fresh"):
        k = Patient(type(kade.inner)(str(tmp_path / name)))
        made.append(k)
        return k
    yield make
    for k in made:
        k.cleanup()


def commit_image(kade, name: str, ref: str, script: str, *changes: str) -> None:
    kade("run", "--name", name, "busybox" if ":" not in name else name, "sh", "-c", script)
    kade("commit", *[a for c in changes for a in ("-c", c)], name, ref)
    kade("rm", name)


def layer_lines(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.endswith(": " + status)]


# --- the main job, offline ------------------------------------------------------------


GREETING = "Hello from Kade! Your image was pushed, pulled back and run."


def test_offline_main_flow(kade, registry):
    """bootstrap busybox -> hello-world -> push -> rmi -> run pulls it and greets."""
    name = f"{registry.host}/hello-world"
    kade("run", "--name", "hw-build", "busybox", "sh", "-c",
         f"printf '#!/bin/sh\\necho \"{GREETING}\"\\n' > /hello && chmod +x /hello")
    kade("commit", "-c", 'CMD ["/hello"]', "hw-build", name)
    kade("rm", "hw-build")
    push = kade("push", name).stdout
    assert push.startswith(f"Using default tag: latest\nThe push refers to repository [{name}]\n")
    assert len(layer_lines(push, "Pushed")) == 2
    assert "latest: digest: sha256:" in push
    kade("rmi", name)

    run = kade("run", "--rm", name)
    assert run.stdout == GREETING + "\n"
    err = run.stderr.splitlines()
    assert err[0] == f"Unable to find image '{name}:latest' locally"
    assert err[1] == "latest: Pulling from hello-world"
    assert len([ln for ln in err if ln.endswith(": Already exists")]) == 1  # busybox is here
    assert len([ln for ln in err if ln.endswith(": Pull complete")]) == 1
    assert err[-2].startswith("Digest: sha256:")
    assert err[-1] == f"Status: Downloaded newer image for {name}:latest"
    # a second run finds it locally and pulls nothing
    again = kade("run", "--rm", name)
    assert again.stdout == GREETING + "\n" and again.stderr == ""
    kade("rmi", name)


# --- pull and push ----------------------------------------------------------------------


def test_multi_layer_push_then_pull_into_a_fresh_store_and_run(kade, registry, fresh):
    host = registry.host
    commit_image(kade, "ml1", f"{host}/multi:1", "echo one > /one && echo keep > /keep")
    kade("run", "--name", "ml2", f"{host}/multi:1", "sh", "-c", "echo two > /two && rm /one")
    kade("commit", "-c", 'CMD ["cat", "/two"]', "ml2", f"{host}/multi:2")
    kade("rm", "ml2")
    out = kade("push", f"{host}/multi:2").stdout.splitlines()
    assert out[0] == f"The push refers to repository [{host}/multi]"
    assert [ln.split(": ")[1] for ln in out[1:4]] == ["Preparing"] * 3
    assert sorted(ln.split(": ")[1] for ln in out[4:7]) == ["Pushed"] * 3
    digest = out[7].split()[2]
    assert out[7] == f"2: digest: {digest} size: {out[7].split()[-1]}"

    new = fresh()
    pulled = new("pull", f"{host}/multi:2").stdout.splitlines()
    assert pulled[0] == "2: Pulling from multi"
    assert len(layer_lines("\n".join(pulled), "Pull complete")) == 3
    assert pulled[-3:] == [f"Digest: {digest}",
                           f"Status: Downloaded newer image for {host}/multi:2",
                           f"{host}/multi:2"]
    assert new("images", "-q", "--no-trunc").stdout.strip() == \
        kade("images", "-q", "--no-trunc", f"{host}/multi:2").stdout.strip()
    digests = new("images", "--digests", "--format", "{{.Digest}}").stdout.split()
    assert digests == [digest]
    assert new("run", "--rm", f"{host}/multi:2").stdout == "two\n"
    ls = new("run", "--rm", f"{host}/multi:2", "ls", "/one", "/keep", check=False)
    assert "/keep" in ls.stdout and "/one" in ls.stderr  # the whiteout holds
    up = new("pull", f"{host}/multi:2").stdout.splitlines()
    assert up[1:] == [f"Digest: {digest}", f"Status: Image is up to date for {host}/multi:2",
                      f"{host}/multi:2"]
    assert new("pull", "-q", f"{host}/multi:2").stdout == f"{host}/multi:2\n"


def test_second_push_and_cross_repository_mount(kade, registry):
    host = registry.host
    commit_image(kade, "mnt", f"{host}/first:1", "echo m > /m")
    kade("push", f"{host}/first:1")
    again = kade("push", f"{host}/first:1").stdout
    assert len(layer_lines(again, "Layer already exists")) == 2
    kade("tag", f"{host}/first:1", f"{host}/second:1")
    mounted = kade("push", f"{host}/second:1").stdout
    assert len(layer_lines(mounted, "Mounted from first")) == 2
    kade("rmi", f"{host}/first:1", f"{host}/second:1")


def test_zstd_push_and_pull(kade, registry, fresh):
    host = registry.host
    commit_image(kade, "zs", f"{host}/zs:1", "echo z > /z")
    kade("push", "--compression", "zstd", f"{host}/zs:1")
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{host}/v2/zs/manifests/1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})) as resp:
        doc = json.load(resp)
    assert {lay["mediaType"] for lay in doc["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    new = fresh()
    new("pull", f"{host}/zs:1")
    assert new("run", "--rm", f"{host}/zs:1", "cat", "/z").stdout == "z\n"


def put(url: str, data: bytes, media_type: str) -> None:
    req = urllib.request.Request(url, data=data, method="PUT",
                                 headers={"Content-Type": media_type})
    urllib.request.urlopen(req).close()


def upload(host: str, repo: str, data: bytes) -> str:
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(req) as resp:
        location = resp.headers["Location"]
    location = location if "://" in location else f"http://{host}{location}"
    put(f"{location}&digest={digest}", data, "application/octet-stream")
    return digest


def test_manifest_list_picks_the_platform(kade, registry, fresh):
    """A list made by hand: the host's image and the same layers under an arm64 config."""
    from kade.oci.platform import host_arch
    host = registry.host
    commit_image(kade, "ml", f"{host}/multiarch:host", "echo arch > /arch")
    kade("push", f"{host}/multiarch:host")
    docker_v2 = "application/vnd.docker.distribution.manifest.v2+json"
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{host}/v2/multiarch/manifests/host", headers={"Accept": docker_v2})) as r:
        native = r.read()
    manifest = json.loads(native)
    with urllib.request.urlopen(f"http://{host}/v2/multiarch/blobs/"
                                f"{manifest['config']['digest']}") as r:
        config = json.load(r)
    other = "arm64" if host_arch() != "arm64" else "amd64"
    config["architecture"] = other
    config_bytes = json.dumps(config).encode()
    manifest["config"] = {**manifest["config"], "size": len(config_bytes),
                          "digest": upload(host, "multiarch", config_bytes)}
    foreign = json.dumps(manifest, indent=3).encode()
    import hashlib
    digests = {}
    for arch, data in ((host_arch(), native), (other, foreign)):
        digests[arch] = "sha256:" + hashlib.sha256(data).hexdigest()
        put(f"http://{host}/v2/multiarch/manifests/{digests[arch]}", data, docker_v2)
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": [{"mediaType": docker_v2, "size": len(d),
                                       "digest": digests[a],
                                       "platform": {"os": "linux", "architecture": a}}
                                      for a, d in ((other, foreign), (host_arch(), native))]})
    put(f"http://{host}/v2/multiarch/manifests/list", index.encode(),
        "application/vnd.docker.distribution.manifest.list.v2+json")
    list_digest = "sha256:" + hashlib.sha256(index.encode()).hexdigest()

    new = fresh("native")
    out = new("pull", f"{host}/multiarch:list").stdout
    assert f"Digest: {list_digest}" in out
    assert new("image", "inspect", "-f", "{{.Architecture}}", f"{host}/multiarch:list") \
        .stdout.strip() == host_arch()
    assert new("run", "--rm", f"{host}/multiarch:list", "cat", "/arch").stdout == "arch\n"
    foreign_root = fresh("foreign")
    foreign_root("pull", "--platform", f"linux/{other}", f"{host}/multiarch:list")
    assert foreign_root("image", "inspect", "-f", "{{.Architecture}}",
                        f"{host}/multiarch:list").stdout.strip() == other
    kade("rmi", f"{host}/multiarch:host")


def test_mirrors_are_tried_in_order(kade, registry, fresh):
    host = registry.host
    commit_image(kade, "mir", f"{host}/library/mirrored:1", "echo mirrored > /m")
    kade("push", f"{host}/library/mirrored:1")
    new = fresh()
    os.makedirs(new.root, exist_ok=True)
    Path(new.root, "registries.json").write_text(json.dumps({"registries": {
        "docker.io": {"mirrors": [f"http://127.0.0.1:{free_port()}", f"http://{host}"]}}}))
    out = new("pull", "mirrored:1").stdout  # docker.io/library/mirrored:1, from the mirror
    assert out.splitlines()[-1] == "docker.io/library/mirrored:1"
    assert new("run", "--rm", "mirrored:1", "cat", "/m").stdout == "mirrored\n"
    kade("rmi", f"{host}/library/mirrored:1")


def test_tls_registry_trusted_through_certs_dir(kade, tmp_path, fresh):
    """HTTPS with a CA from <certs_dir>/<host>/ca.crt; 127.0.0.1 marked secure, so the
    certificate is really checked."""
    if registry_missing() or shutil.which("openssl") is None:
        pytest.skip(registry_missing() or "openssl is missing")
    reg = DockerRegistry(tmp_path / "tls-registry", tls=True).start()
    try:
        host = reg.host
        certs = tmp_path / "certs.d"
        config = {"certs_dir": str(certs), "registries": {host: {"insecure": False}}}
        Path(kade.root, "registries.json").write_text(json.dumps(config))
        commit_image(kade, "tl", f"{host}/tls:1", "echo tls > /t")
        refused = kade("push", f"{host}/tls:1", check=False)
        assert refused.returncode == 1 and "certificate verify failed" in refused.stderr
        (certs / host).mkdir(parents=True)
        shutil.copy(reg.base / "ca.crt", certs / host / "ca.crt")
        kade("push", f"{host}/tls:1")
        new = fresh()
        os.makedirs(new.root, exist_ok=True)
        Path(new.root, "registries.json").write_text(json.dumps(config))
        assert new("run", "--rm", f"{host}/tls:1", "cat", "/t").stdout == "tls\n"
        kade("rmi", f"{host}/tls:1")
    finally:
        os.unlink(Path(kade.root, "registries.json"))
        reg.stop()


# --- auth -------------------------------------------------------------------------------


def test_htpasswd_registry_login_push_pull_logout(kade, auth_registry, fresh, docker_config):
    host = auth_registry.host
    commit_image(kade, "au", f"{host}/private:1", "echo secret > /s")
    denied = kade("push", f"{host}/private:1", check=False)
    assert denied.returncode == 1
    assert denied.stderr.strip().endswith(f"use 'kade login {host}' first")
    bad = kade("login", "-u", "kade", "--password-stdin", host, input="wrong\n", check=False)
    assert bad.returncode == 1 and "unauthorized" in bad.stderr
    ok = kade("login", "-u", "kade", "--password-stdin", host, input="s3cret-pw\n")
    assert ok.stdout == "Login Succeeded\n"
    assert "stored unencrypted" in ok.stderr
    cfg = json.loads((docker_config / "config.json").read_text())
    import base64
    assert base64.b64decode(cfg["auths"][host]["auth"]) == b"kade:s3cret-pw"
    kade("push", f"{host}/private:1")

    new = fresh()
    pulled = new("pull", f"{host}/private:1")
    assert pulled.stdout.splitlines()[-1] == f"{host}/private:1"
    assert kade("logout", host).stdout == f"Removing login credentials for {host}\n"
    other = fresh("other")
    refused = other("pull", f"{host}/private:1", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"Error: pull access denied for {host}/private, "
                                     "repository does not exist or may require 'kade login'")
    assert refused.stderr.count("\n") == 1
    kade("rmi", f"{host}/private:1")


# --- bad input --------------------------------------------------------------------------


def test_missing_image_and_repository(kade, registry, fresh):
    new = fresh()
    p = new("pull", f"{registry.host}/nothing:here", check=False)
    assert p.returncode == 1
    assert p.stderr == (f"Error: manifest for {registry.host}/nothing:here not found: "
                        "manifest unknown: manifest unknown\n")
    run = new("run", "--rm", f"{registry.host}/nothing", "true", check=False)
    assert run.returncode == 125
    assert run.stderr.splitlines()[0] == \
        f"Unable to find image '{registry.host}/nothing:latest' locally"
    never = new("run", "--pull", "never", f"{registry.host}/nothing", check=False)
    assert never.returncode == 125 and "Unable to find" not in never.stderr
    assert new("images", "-q").stdout == ""


def test_corrupt_blob_in_the_registry_is_refused(kade, registry, fresh):
    host = registry.host
    commit_image(kade, "cor", f"{host}/corrupt:1", "echo c > /c")
    kade("push", f"{host}/corrupt:1")
    # damage the top layer's data inside the registry's storage
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{host}/v2/corrupt/manifests/1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})) as r:
        top = json.load(r)["layers"][-1]["digest"]
    data = registry.storage / "docker/registry/v2/blobs/sha256" / top[7:9] / top[7:] / "data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    new = fresh()
    p = new("pull", f"{host}/corrupt:1", check=False)
    assert p.returncode == 1
    assert f"verification failed for digest {top}" in p.stderr and p.stderr.count("\n") == 1
    assert new("images", "-q").stdout == ""
    blobs = Path(new.root, "content", "blobs", "sha256")
    assert not (blobs / top[7:]).exists()
    kade("rmi", f"{host}/corrupt:1")


def test_pull_flags(kade, registry, fresh):
    host = registry.host
    commit_image(kade, "tg", f"{host}/tags:a", "echo a > /a")
    kade("tag", f"{host}/tags:a", f"{host}/tags:b")
    kade("push", "-a", f"{host}/tags")
    new = fresh()
    out = new("pull", "-a", f"{host}/tags").stdout.splitlines()
    assert out[-2:] == [f"Status: Downloaded newer image for {host}/tags", f"{host}/tags"]
    assert sorted(new("images", "--format", "{{.Tag}}").stdout.split()) == ["a", "b"]
    always = new("run", "--rm", "--pull", "always", f"{host}/tags:a", "cat", "/a")
    assert always.stdout == "a\n"
    assert "Status: Image is up to date" in always.stderr
    created = fresh("create")("create", f"{host}/tags:b", "true")
    assert created.stderr.startswith(f"Unable to find image '{host}/tags:b' locally\n")
    assert len(created.stdout.strip()) == 64  # the new container's id
    kade("rmi", f"{host}/tags:a", f"{host}/tags:b")
