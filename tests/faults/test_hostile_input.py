"""Hostile input gets one clear line, never a traceback, never a raw control sequence.

Each test runs the attack for real against the `kade` CLI: JSON nested 200,000 deep in a
registry's manifest and config and in a `load` archive, a tar entry and a loaded tag
carrying terminal escape sequences, `kade import` onto a full disk (a tmpfs root in a
private mount namespace), and twenty `kade rm -f` of one container at once.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]

DEEP = b"[" * 200_000
ESC = "\x1b[2J\x1b[HPassword:"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def one_error_line(proc: subprocess.CompletedProcess, *, code: int = 1) -> str:
    """The one line a failure prints: no traceback, no raw escape, the exit code."""
    err = proc.stderr
    assert "Traceback" not in err + proc.stdout, err
    assert "\x1b" not in err + proc.stdout, repr(err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert proc.returncode == code, (proc.returncode, err)
    return lines[0]


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- deep JSON ---------------------------------------------------------------------
class _StubRegistry(http.server.BaseHTTPRequestHandler):
    """Serves one repository, `deep`, whose manifest or config is what the test set."""
    blobs: dict[str, bytes] = {}
    manifest = b""

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?")[0]
        if path == "/v2/":
            data, kind = b"{}", "application/json"
        elif path.startswith("/v2/deep/manifests/"):
            data, kind = self.manifest, "application/vnd.docker.distribution.manifest.v2+json"
        elif path.startswith("/v2/deep/blobs/") and path.rsplit("/", 1)[1] in self.blobs:
            data, kind = self.blobs[path.rsplit("/", 1)[1]], "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Content-Digest", sha256(data))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *_):
        pass


@pytest.fixture
def stub_registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _StubRegistry, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_manifest_nested_200000_deep_is_one_line(kade, stub_registry):
    stub, host = stub_registry
    stub.manifest = DEEP
    line = one_error_line(kade("pull", f"{host}/deep:latest", check=False))
    assert "exceeded max depth" in line


def test_a_config_nested_200000_deep_is_one_line(kade, stub_registry):
    stub, host = stub_registry
    layer = tar_of({"hello": b"hi\n"})
    stub.blobs = {sha256(DEEP): DEEP, sha256(layer): layer}
    stub.manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": sha256(DEEP), "size": len(DEEP)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "digest": sha256(layer), "size": len(layer)}]}).encode()
    line = one_error_line(kade("pull", f"{host}/deep:latest", check=False))
    assert "exceeded max depth" in line
    assert "deep" not in kade("images", "--format", "{{.Repository}}").stdout


@pytest.mark.parametrize("where", ["manifest.json", "config"])
def test_a_load_archive_nested_200000_deep_is_one_line(kade, where):
    if where == "manifest.json":
        archive = tar_of({"manifest.json": DEEP})
    else:
        name = f"blobs/sha256/{sha256(DEEP)[7:]}"
        manifest = json.dumps([{"Config": name, "RepoTags": ["deep:1"], "Layers": []}])
        archive = tar_of({name: DEEP, "manifest.json": manifest.encode()})
    proc = subprocess.run(KADE + ["--root", kade.root, "load"], input=archive,
                          capture_output=True)
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())
    assert "invalid character '[' exceeded max depth" in one_error_line(proc)
    assert kade("system", "check").returncode == 0


# --- control characters ----------------------------------------------------------------
def test_a_tar_entry_with_an_escape_sequence_is_shown_escaped(kade, tmp_path):
    bad = tmp_path / "esc.tar"
    bad.write_bytes(tar_of({f"../{ESC}": b"x"}))
    line = one_error_line(kade("import", str(bad), "esc:1", check=False))
    assert "\\x1b[2J\\x1b[HPassword:" in line


def test_a_loaded_tag_with_an_escape_sequence_is_refused_and_escaped(kade, tmp_path):
    saved = tmp_path / "bb.tar"
    kade("save", "-o", str(saved), "busybox")
    with tarfile.open(saved) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    manifest[0]["RepoTags"] = [f"evil{ESC}:latest"]
    files["manifest.json"] = json.dumps(manifest).encode()
    files.pop("index.json")
    crafted = tmp_path / "crafted.tar"
    crafted.write_bytes(tar_of(files))
    line = one_error_line(kade("load", "-i", str(crafted), check=False))
    assert "invalid reference format" in line and "\\x1b[2J" in line
    assert "evil" not in kade("images", "-a", "--format", "{{.Repository}}").stdout


def test_a_container_name_with_a_control_character_is_refused(kade):
    line = one_error_line(kade("create", "--name", f"x{ESC}", "busybox", check=False),
                          code=125)
    assert "\\x1b" in line


# --- full disk -------------------------------------------------------------------------
def test_import_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private tmpfs")
    big = tmp_path / "big.tar"
    big.write_bytes(tar_of({"blob": os.urandom(12 << 20)}))
    root = tmp_path / "root"
    root.mkdir()
    kade = " ".join(f"'{a}'" for a in KADE) + f" --root {root}"
    # the tmpfs lives in a private mount namespace: it goes when the shell does
    script = (f"mount -t tmpfs -o size=8m kade-full {root} && "
              f"{kade} import {big} full:1; echo \"rc=$?\" >&2; "
              f"{kade} system check >&2; "
              f"find {root}/content/ingest {root}/snapshots -mindepth 2 | head >&2")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.splitlines()
    rc = next(line for line in lines if line.startswith("rc="))
    errors = lines[:lines.index(rc)]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and "no space left on device" in errors[0], proc.stderr
    assert rc == "rc=1"
    assert lines[lines.index(rc) + 1:] == ["store is consistent"], proc.stderr


# --- twenty rm -f of one container -------------------------------------------------------
def test_twenty_parallel_rm_f_remove_it_once(kade):
    cid = kade("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    procs = [subprocess.Popen(KADE + ["--root", kade.root, "rm", "-f", cid[:12]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(20)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert not any("Traceback" in out + err for _, out, err in results), results
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    assert winners[0][1].strip() == cid[:12]
    for code, out, err in results:
        if code != 0:
            assert code == 1 and out == "", (code, out, err)
            assert err.strip().lower() == f"error: no such container: {cid[:12]}", err
    assert cid not in kade("ps", "-aq", "--no-trunc").stdout
    assert kade("system", "check").returncode == 0
