"""Real containers for the runtime's integration tests: a busybox rootfs per test, a
docker-like config.json, and a harness that leaves no process, cgroup or state behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from dataclasses import dataclass, field

import pytest

from kade.oci import defaults
from kade.runtime import Runtime

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "true", "false", "cat", "echo", "ls", "id", "hostname", "mount", "sleep",
           "ps", "test", "touch", "wc", "grep", "head", "pwd", "readlink", "stat", "mkdir")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "runtime integration tests need root (namespaces, mounts, cgroups)"
    if not os.path.exists(BUSYBOX):
        return "needs busybox-static at /bin/busybox (apt-get install busybox-static)"
    return None


def make_rootfs(path: str) -> str:
    for d in ("bin", "proc", "dev", "sys", "etc", "tmp"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", applet))
    with open(os.path.join(path, "etc", "marker"), "w") as f:
        f.write("rootfs\n")
    return path


def make_spec(args: list[str], *, cgroup: str, **overrides: object) -> dict:
    """What docker would write for `docker run busybox ARGS`, minus seccomp."""
    spec: dict = {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": [f"PATH={PATH}", "HOME=/root"], "cwd": "/",
                    "capabilities": defaults.capabilities_spec(defaults.DEFAULT_CAPS),
                    "noNewPrivileges": False},
        "root": {"path": "rootfs"},
        "hostname": "kadetest",
        "mounts": defaults.default_mounts(),
        "linux": {"namespaces": [{"type": t} for t in
                                 ("pid", "network", "ipc", "uts", "mount", "cgroup")],
                  "maskedPaths": list(defaults.MASKED_PATHS),
                  "readonlyPaths": list(defaults.READONLY_PATHS),
                  "cgroupsPath": cgroup},
    }
    spec.update(overrides)
    return spec


def cgroup_dirs(path: str) -> list[str]:
    """Where a cgroup path exists in any hierarchy of this host."""
    found = []
    for name in os.listdir("/sys/fs/cgroup"):
        d = os.path.join("/sys/fs/cgroup", name) + path
        if os.path.isdir(d):
            found.append(d)
    return found


@dataclass
class Harness:
    root: str
    rt: Runtime
    pids: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def bundle(self, args: list[str], **overrides: object) -> tuple[str, str]:
        """A new bundle (own rootfs) and container id; returns (id, bundle)."""
        cid = f"kt-{uuid.uuid4().hex[:10]}"
        bundle = os.path.join(self.root, cid)
        make_rootfs(os.path.join(bundle, "rootfs"))
        spec = make_spec(args, cgroup=f"/kade/{cid}", **overrides)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        self.ids.append(cid)
        return cid, bundle

    def spec(self, bundle: str) -> dict:
        with open(os.path.join(bundle, "config.json")) as f:
            return json.load(f)

    def create(self, cid: str, bundle: str, **kwargs: object) -> int:
        pid = self.rt.create(cid, bundle, **kwargs)  # type: ignore[arg-type]
        self.pids.append(pid)
        return pid

    def run(self, args: list[str], **overrides: object) -> tuple[int, str]:
        """create, start, wait: (exit code, stdout+stderr)."""
        cid, bundle = self.bundle(args, **overrides)
        return self.run_bundle(cid, bundle)

    def run_bundle(self, cid: str, bundle: str, **kwargs: object) -> tuple[int, str]:
        r, w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            pid = self.create(cid, bundle, stdio=(devnull, w, w), **kwargs)
        finally:
            os.close(w)
            os.close(devnull)
        try:
            self.rt.start(cid)
            out = read_all(r)
        finally:
            os.close(r)
        code = self.wait(pid)
        self.rt.delete(cid)
        return code, out

    def wait(self, pid: int) -> int:
        _, status = os.waitpid(pid, 0)
        self.pids.remove(pid)
        return os.waitstatus_to_exitcode(status)

    def cleanup(self) -> None:
        for cid in self.ids:
            try:
                self.rt.delete(cid, force=True)
            except Exception:  # noqa: BLE001 - best effort: the test already failed or passed
                continue
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for cid in self.ids:
            for d in cgroup_dirs(f"/kade/{cid}"):
                os.rmdir(d)


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture
def harness(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    h = Harness(str(tmp_path), Runtime(str(tmp_path / "state")))
    yield h
    h.cleanup()
    leftovers = [cid for cid in h.ids if cgroup_dirs(f"/kade/{cid}")]
    assert not leftovers, f"cgroups left behind: {leftovers}"
