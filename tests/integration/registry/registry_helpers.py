"""Shared by the registry's integration and compat tests: a `kade registry serve`
subprocess on 127.0.0.1 with an ephemeral port, a urllib client, and small OCI
images made here with tarfile (no network, no other tool)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Server:
    """`kade registry serve` in a subprocess; `.url` once it listens."""

    def __init__(self, root: str, *extra: str, env: dict | None = None,
                 prefix: list[str] | None = None):
        """`prefix`: a command that runs the server, e.g. in a new mount namespace."""
        self.root = root
        self.proc = subprocess.Popen(
            (prefix or []) + KADE + ["registry", "serve", "--addr", "127.0.0.1:0",
                                     "--root", root, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        line = self.proc.stderr.readline()
        m = re.search(r"listening on (https?)://([\d.]+):(\d+)", line)
        if m is None:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"registry did not start: {line}{err}")
        self.scheme, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
        self.addr = f"{self.host}:{self.port}"
        self.url = f"{self.scheme}://{self.addr}"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_):
        self.stop()


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    @property
    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


def call(base: str, method: str, path: str, data: bytes | None = None,
         headers: dict | None = None, context=None) -> Reply:
    url = path if path.startswith("http") else base + path
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as r:
            return Reply(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, dict(e.headers), e.read())


def push_blob(base: str, name: str, data: bytes, headers: dict | None = None) -> str:
    digest = sha256(data)
    r = call(base, "POST", f"/v2/{name}/blobs/uploads/", b"", headers)
    assert r.status == 202, (r.status, r.body)
    loc = r.header("Location")
    sep = "&" if "?" in loc else "?"
    r = call(base, "PUT", f"{loc}{sep}digest={digest}", data,
             {"Content-Type": "application/octet-stream", **(headers or {})})
    assert r.status == 201, (r.status, r.body)
    return digest


@dataclass
class Image:
    """An OCI image in memory: blobs by digest, the manifest, its config."""
    blobs: dict
    manifest: bytes
    config: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def layers(self) -> list[str]:
        return [d["digest"] for d in json.loads(self.manifest)["layers"]]


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(layers: list[dict[str, bytes]] | None = None, arch: str = "amd64",
               media_type: str = OCI_MANIFEST, extra: dict | None = None) -> Image:
    layers = layers if layers is not None else [{"hello.txt": b"hello from kade\n"}]
    blobs, descs, diff_ids = {}, [], []
    for files in layers:
        raw = _tar(files)
        gz = gzip.compress(raw, mtime=0)
        blobs[sha256(gz)] = gz
        diff_ids.append(sha256(raw))
        layer_type = OCI_LAYER_GZIP if media_type == OCI_MANIFEST else \
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        descs.append({"mediaType": layer_type, "digest": sha256(gz), "size": len(gz)})
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    blobs[sha256(config)] = config
    config_type = OCI_CONFIG if media_type == OCI_MANIFEST else \
        "application/vnd.docker.container.image.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": media_type,
                "config": {"mediaType": config_type, "digest": sha256(config),
                           "size": len(config)},
                "layers": descs, **(extra or {})}
    return Image(blobs, json.dumps(manifest).encode(), config)


def push_image(base: str, name: str, ref: str, image: Image, headers: dict | None = None) -> str:
    for data in image.blobs.values():
        push_blob(base, name, data, headers)
    media_type = json.loads(image.manifest)["mediaType"]
    r = call(base, "PUT", f"/v2/{name}/manifests/{ref}", image.manifest,
             {"Content-Type": media_type, **(headers or {})})
    assert r.status == 201, (r.status, r.body)
    return r.header("Docker-Content-Digest")


def write_oci_layout(directory: str, image: Image, tag: str = "latest") -> str:
    """An OCI image layout (what skopeo reads as `oci:DIR:TAG`)."""
    os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
    for digest, data in [*image.blobs.items(), (image.digest, image.manifest)]:
        with open(os.path.join(directory, "blobs", "sha256", digest.split(":")[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest),
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump(index, f)
    return directory


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def write_oci_index_layout(directory: str, images: list[tuple[Image, str]],
                           tag: str = "latest") -> tuple[str, bytes]:
    """An OCI layout whose `tag` is an image index of `images` (image, architecture);
    returns (directory, index bytes)."""
    os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
    entries = []
    for image, arch in images:
        for digest, data in [*image.blobs.items(), (image.digest, image.manifest)]:
            with open(os.path.join(directory, "blobs", "sha256", digest.split(":")[1]),
                      "wb") as f:
                f.write(data)
        entries.append({"mediaType": OCI_MANIFEST, "digest": image.digest,
                        "size": len(image.manifest),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": entries}).encode()
    with open(os.path.join(directory, "blobs", "sha256", sha256(index).split(":")[1]),
              "wb") as f:
        f.write(index)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": sha256(index), "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump(top, f)
    return directory, index


def tool(*cmd: str, timeout: float = 180, check: bool = True,
         input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


def htpasswd_file(path: str, user: str, password: str) -> str:
    try:
        import bcrypt
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    except ImportError:
        if not shutil.which("htpasswd"):
            _skip("neither the bcrypt package nor htpasswd (apache2-utils) is installed")
        out = subprocess.run(["htpasswd", "-nbB", user, password], capture_output=True,
                             text=True, check=True).stdout
        hashed = out.strip().split(":", 1)[1]
    with open(path, "w") as f:
        f.write(f"{user}:{hashed}\n")
    return path


def _skip(reason: str):
    import pytest
    pytest.skip(reason)
