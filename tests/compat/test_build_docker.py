"""Proof of docker's build semantics: every Dockerfile under build_cases/ is built by
real docker (Debian's docker.io 20.10, the legacy builder: DOCKER_BUILDKIT=0) and by
`kade build`, from the same base image, and the two results must agree on

- the image config fields that instructions set (CONFIG_FIELDS, plus author, os and
  architecture), with null, missing and empty treated alike only where docker's own
  Go types make them alike (see `_normal`);
- the number of layers (rootfs.diff_ids);
- the history: its length and each entry's `empty_layer`, in order;
- the file tree of a container created from the image and exported: per path its
  type, mode, owner, link target, hard-link group and content digest (not mtimes).

Docker is the oracle: nothing here says what a build should produce. The harness is
checked against docker itself so that a pass means Kade agrees with docker, not that
the comparison is blind: deliberately different builds must show their differences;
a second, uncached docker build of a case must show none (for every case with
KADE_BUILD_SELFCHECK=1, and for any case where Kade differs, before Kade is blamed).

A case is a directory: a Dockerfile, its context, and optionally a case.json:
    flags      flags given to both builders (--build-arg, --target, -f, --label, ...);
               "{http}" in them is the URL of the case's context on a loopback
               HTTP server (for ADD <url>)
    variants   {name: extra flags}: one test per entry instead of one per case
    needs      cases built (and tagged) first, e.g. a parent image with ONBUILD triggers
    base       "busybox:latest" (default) or "debian:bookworm"
    slow       skipped when KADE_SKIP_SLOW=1 (the debootstrap of debian:bookworm)
    paths      compare only these subtrees of the exported files (why_paths says why)
    mkdirs     empty directories to create in the context (git keeps none)
    modes      {path: octal mode} set in the context (git keeps only the x bit)
    kade_only  BuildKit syntax that legacy docker refuses: the context has kade/ and
               docker/ halves, the second spelling the same build without it
Each image is tagged with the case's name ("_" -> "-", plus "-VARIANT"), so a case
can build FROM another one (onbuild_child FROM onbuild-parent).

Nothing is pulled: the base images are Kade's own bootstrap, `kade save`d and
`docker load`ed into a private dockerd, so both sides start from one image id. RUN
steps see only loopback, except the debian case, which both builders run with
`--network host` to reach the Debian mirror.

As root: `pytest tests/compat/test_build_docker.py -q` (the debootstrap of the debian
case adds a minute or two; KADE_SKIP_SLOW=1 leaves it out; KADE_BUILD_SELFCHECK=1
adds the docker-against-docker check of every case).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dockerd import Docker, running_dockerd  # tests/compat, on sys.path

pytestmark = pytest.mark.compat

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
CASES_DIR = Path(__file__).parent / "build_cases"
SKIP_SLOW = os.environ.get("KADE_SKIP_SLOW", "") not in ("", "0")
SELFCHECK = os.environ.get("KADE_BUILD_SELFCHECK", "") not in ("", "0")
BUILD_TIMEOUT = 600
SLOW_TIMEOUT = 1800
SHOW_PATHS = 25  # differing paths shown in a failure message

# Fields of docker's container.Config that instructions set, with their Go shape: a
# missing key and null decode to the same Go zero value, and an `omitempty` field that
# is empty is dropped when docker writes it, so for those empty = missing as well.
CONFIG_FIELDS = {  # name: (zero value, omitempty)
    "Env": (None, False), "Cmd": (None, False), "Entrypoint": (None, False),
    "WorkingDir": ("", False), "User": ("", False), "ExposedPorts": (None, True),
    "Volumes": (None, False), "Labels": (None, False), "Healthcheck": (None, True),
    "StopSignal": ("", True), "Shell": (None, True), "OnBuild": (None, False),
}
TOP_FIELDS = {"author": ("", True), "architecture": ("", False), "os": ("", False)}


# --- cases ----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    variant: str = ""
    flags: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    base: str = "busybox:latest"
    slow: bool = False
    paths: tuple[str, ...] | None = None
    mkdirs: tuple[str, ...] = ()
    modes: tuple[tuple[str, str], ...] = ()
    kade_only: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name

    @property
    def tag(self) -> str:
        return self.name.replace("_", "-") + (f"-{self.variant}" if self.variant else "")


CASE_KEYS = {"flags", "variants", "needs", "base", "slow", "paths", "why_paths", "mkdirs",
             "modes", "kade_only"}


def load_cases() -> list[Case]:
    cases = []
    for d in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        spec_file = d / "case.json"
        spec = json.loads(spec_file.read_text()) if spec_file.exists() else {}
        unknown = set(spec) - CASE_KEYS
        assert not unknown, f"{spec_file}: unknown keys {sorted(unknown)}"
        common = dict(
            name=d.name, needs=tuple(spec.get("needs", ())),
            base=spec.get("base", "busybox:latest"), slow=spec.get("slow", False),
            paths=tuple(spec["paths"]) if "paths" in spec else None,
            mkdirs=tuple(spec.get("mkdirs", ())), modes=tuple(spec.get("modes", {}).items()),
            kade_only=spec.get("kade_only"))
        flags = list(spec.get("flags", []))
        for variant, extra in (spec.get("variants") or {"": []}).items():
            cases.append(Case(variant=variant, flags=tuple(flags + extra), **common))
    return cases


CASES = load_cases()
BY_NAME = {c.name: c for c in CASES if not c.variant}


def params(cases: list[Case]) -> list:
    out = []
    for case in cases:
        marks = [pytest.mark.skipif(SKIP_SLOW, reason="KADE_SKIP_SLOW is set")] \
            if case.slow else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


SAME_SPELLING = [c for c in CASES if not c.kade_only]
KADE_ONLY = [c for c in CASES if c.kade_only]


# --- running the two builders ---------------------------------------------------
def run(argv: list[str], timeout: float = BUILD_TIMEOUT,
        env: dict | None = None) -> subprocess.CompletedProcess:
    # Always an explicit environment: these run in the Lab's threads while pytest sets
    # PYTEST_CURRENT_TEST in the main thread, and a child spawned with env=None reads
    # the C `environ` that setenv may be reallocating (seen once: execve EFAULT)
    env = dict(os.environ) if env is None else env
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=env)


def _text(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr).decode(errors="replace")


def config_from_archive(archive: bytes) -> dict:
    """The image config, byte for byte as the engine stores it, from `save` output."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return json.load(tar.extractfile(manifest[0]["Config"]))


class BuildFailed(Exception):
    """A builder refused or failed a case: its message is the builder's own output."""


class DockerSide:
    name = "docker"

    def __init__(self, docker: Docker):
        self.docker = docker

    def build(self, context: Path, tag: str, flags: list[str], timeout: float) -> str:
        proc = self.docker("build", "-t", tag, *flags, str(context), check=False,
                           timeout=timeout, env={"DOCKER_BUILDKIT": "0"})
        if proc.returncode != 0:
            raise BuildFailed(f"docker build -t {tag} failed ({proc.returncode}):\n"
                              f"{_text(proc)[-3000:]}")
        return _text(proc)

    def save(self, ref: str) -> bytes:
        return self.docker("save", ref, timeout=300).stdout

    def export(self, ref: str, command: list[str]) -> bytes:
        # the container is left to die with the private dockerd: one process less
        cid = self.docker.out("create", ref, *command)
        return self.docker("export", cid, timeout=300).stdout


class KadeSide:
    name = "kade"

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # RUN steps would make a default bridge in the host's namespace (tests/conftest.py)
        (root / "daemon.json").write_text('{"bridge": "none"}\n')

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = run([*KADE, "--root", str(self.root), *args], timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"kade {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{_text(proc)[-3000:]}")
        return proc

    def build(self, context: Path, tag: str, flags: list[str], timeout: float) -> str:
        proc = run([*KADE, "--root", str(self.root), "build", "-t", tag, *flags,
                    str(context)], timeout=timeout)
        if proc.returncode != 0:
            raise BuildFailed(f"kade build -t {tag} failed ({proc.returncode}):\n"
                              f"{_text(proc)[-3000:]}")
        return _text(proc)

    def save(self, ref: str) -> bytes:
        return self("save", ref).stdout

    def export(self, ref: str, command: list[str]) -> bytes:
        cid = self("create", ref, *command).stdout.decode().strip().splitlines()[-1]
        return self("export", cid).stdout  # the container dies with the temporary root


@functools.cache
def kade_build_missing(root: str) -> str | None:
    proc = run([*KADE, "--root", root, "build", "--help"], timeout=60)
    if proc.returncode != 0:
        last = _text(proc).strip().splitlines()[-1:] or [""]
        return f"`kade build` is not there yet ({last[0]})"
    return None


# --- what a build produced -------------------------------------------------------
@dataclass
class Built:
    side: str
    config: dict
    tree: dict[str, dict]
    log: str = field(repr=False, default="")


# Paths that belong to a container rather than to its image. Docker puts an "init
# layer" under every container (daemon/initlayer): empty /.dockerenv, /etc/hosts,
# /etc/hostname, /etc/resolv.conf (bind-mount targets at start), /etc/mtab ->
# /proc/mounts, and /dev/console, /dev/pts, /dev/shm; an image's own copies of those
# are hidden under it, so export never shows them. /proc, /sys and /dev are mount
# points whose contents a build cannot keep. The directories docker creates for them
# (/etc, /dev, /proc, /sys, even in a scratch image) are compared only when both
# exports have them.
CONTAINER_FILES = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab"}
MOUNT_DIRS = ("dev", "proc", "sys")
INIT_PARENTS = {"etc", "dev", "proc", "sys"}


def container_owned(path: str) -> bool:
    return path in CONTAINER_FILES or any(path.startswith(d + "/") for d in MOUNT_DIRS)


def tree_of(archive: bytes, only: tuple[str, ...] | None = None) -> dict[str, dict]:
    """path -> what a file is (no mtimes), from an export tar; hard links become the
    file they name plus the group of paths sharing it."""
    entries: dict[str, dict] = {}
    links: dict[str, str] = {}  # path -> the first path of its inode in the archive
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for m in tar:
            path = _clean(m.name)
            if not path or container_owned(path):
                continue
            entry = {"type": _kind(m), "mode": f"{m.mode & 0o7777:04o}",
                     "owner": f"{m.uid}:{m.gid}"}
            if m.issym():
                entry["target"] = m.linkname
            elif m.islnk():
                first = _clean(m.linkname)
                first = links.get(first, first)
                links[path] = first
                entry = dict(entries.get(first, entry), **{k: entry[k] for k in
                                                           ("mode", "owner")})
            elif m.isfile():
                body = tar.extractfile(m).read()
                entry["sha256"] = hashlib.sha256(body).hexdigest()[:16]
                entry["size"] = len(body)
            elif m.ischr() or m.isblk():
                entry["device"] = f"{m.devmajor},{m.devminor}"
            xattrs = sorted(k[len("SCHILY.xattr."):] for k in m.pax_headers
                            if k.startswith("SCHILY.xattr."))
            if xattrs:
                entry["xattrs"] = ",".join(xattrs)
            entries[path] = entry
    groups: dict[str, list[str]] = {}
    for path, first in links.items():
        groups.setdefault(first, [first]).append(path)
    for members in groups.values():
        for path in members:
            entries[path]["links"] = f"{len(members)} names, first {min(members)}"
    if only is not None:
        entries = {p: e for p, e in entries.items()
                   if any(p == o or p.startswith(o + "/") for o in only)}
    return entries


def _clean(name: str) -> str:
    """Archive member names as paths under /: "./etc/", "/etc" and "etc" alike."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    return "" if name == "." else name


def _kind(m: tarfile.TarInfo) -> str:
    return {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "file",
            tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block"
            }.get(m.type, "file")


def snapshot(side, ref: str, only: tuple[str, ...] | None) -> Built:
    config = config_from_archive(side.save(ref))
    conf = config.get("config") or {}
    # `create` needs a command; one that does not exist is fine, nothing runs
    command = [] if conf.get("Cmd") or conf.get("Entrypoint") else ["/no-command"]
    return Built(side.name, config, tree_of(side.export(ref, command), only))


# --- comparing two builds --------------------------------------------------------
def _normal(value, zero, omitempty: bool):
    if value is None or (omitempty and value in ({}, [], "", 0)):
        return zero
    if isinstance(value, dict) and omitempty:  # HealthConfig: every field omitempty
        return {k: v for k, v in value.items() if v not in (None, 0, "", [])} or zero
    return value


def config_problems(a: Built, b: Built) -> list[str]:
    out = []
    for where, fields, src in (("config.", CONFIG_FIELDS, "config"), ("", TOP_FIELDS, None)):
        for name, (zero, omitempty) in fields.items():
            va = (a.config.get(src) or {}).get(name) if src else a.config.get(name)
            vb = (b.config.get(src) or {}).get(name) if src else b.config.get(name)
            if _normal(va, zero, omitempty) != _normal(vb, zero, omitempty):
                out.append(f"{where}{name}:\n    {a.side}: {json.dumps(va)}\n"
                           f"    {b.side}: {json.dumps(vb)}")
    return out


def layer_problems(a: Built, b: Built) -> list[str]:
    la, lb = (len(x.config["rootfs"]["diff_ids"]) for x in (a, b))
    return [] if la == lb else [f"layers: {a.side} {la}, {b.side} {lb}"]


def history_problems(a: Built, b: Built) -> list[str]:
    ha, hb = a.config.get("history", []), b.config.get("history", [])
    flags_a = [bool(h.get("empty_layer")) for h in ha]
    flags_b = [bool(h.get("empty_layer")) for h in hb]
    if flags_a == flags_b:
        return []
    rows = [f"history (empty_layer, created_by): {a.side} {len(ha)} entries, "
            f"{b.side} {len(hb)}"]
    for i in range(max(len(ha), len(hb))):
        cells = []
        for h in (ha, hb):
            cells.append(f"{'empty' if h[i].get('empty_layer') else 'LAYER'} "
                         f"{h[i].get('created_by', '')[:60]}" if i < len(h) else "-")
        mark = " " if i < min(len(ha), len(hb)) and flags_a[i] == flags_b[i] else "*"
        rows.append(f"  {mark}{i:2d} {a.side}: {cells[0]}\n      {b.side}: {cells[1]}")
    return ["\n".join(rows)]


def tree_problems(a: Built, b: Built) -> list[str]:
    diffs = []
    for path in sorted(set(a.tree) | set(b.tree)):
        ea, eb = a.tree.get(path), b.tree.get(path)
        if path in INIT_PARENTS and (ea is None or eb is None):
            continue
        if ea != eb:
            diffs.append(f"  /{path}\n    {a.side}: {_show(ea)}\n    {b.side}: {_show(eb)}")
    if not diffs:
        return []
    head = f"file tree: {len(diffs)} paths differ"
    if len(diffs) > SHOW_PATHS:
        head += f" (first {SHOW_PATHS} shown)"
    return ["\n".join([head, *diffs[:SHOW_PATHS]])]


def _show(entry: dict | None) -> str:
    if entry is None:
        return "(missing)"
    return " ".join(f"{k}={v}" for k, v in entry.items())


def problems(a: Built, b: Built) -> list[str]:
    return (config_problems(a, b) + layer_problems(a, b) + history_problems(a, b)
            + tree_problems(a, b))


def assert_same(a: Built, b: Built, what: str) -> None:
    found = problems(a, b)
    if found:
        pytest.fail(f"{what}: {b.side} differs from {a.side}:\n" + "\n".join(found)
                    + f"\n--- {b.side} build log (tail) ---\n{b.log[-2500:]}", pytrace=False)


# --- the lab: one dockerd, one Kade root, base images in both -------------------
class Lab:
    """Builds cases on three sides: "docker", "docker-again" (the same build once more,
    uncached, under another tag) and "kade", each (side, case) once. Builds run on two
    worker threads, started in the order the selected tests will ask for them, so a
    test mostly finds its builds done. Kade builds one at a time: a concurrency bug
    in Kade must not pass for a difference in semantics. Only the main thread calls
    `submit`; a worker only waits for futures submitted before its own (bases and
    needed cases are submitted first), so two workers cannot wait on each other."""

    def __init__(self, docker: Docker, tmp: Path):
        self.tmp = tmp
        (tmp / "contexts").mkdir()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
            _QuietHandler, directory=str(tmp / "contexts")))
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.docker = DockerSide(docker)
        self.kade = KadeSide(tmp / "kade-root")
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="build")
        self.kade_lock = threading.Lock()
        self.futures: dict[tuple[str, str], Future] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.http.shutdown()
        self.http.server_close()

    def built(self, side: str, case: Case) -> Built:
        try:
            return self.submit(side, case).result()
        except BuildFailed as e:
            failure = f"{case.id}: {e}"
        pytest.fail(failure, pytrace=False)  # outside `except`: no chained traceback

    def submit(self, side: str, case: Case) -> Future:
        key = (side, case.id)
        if key not in self.futures:
            deps = [self._base(case.base)]
            deps += [self.submit("kade" if side == "kade" else "docker", BY_NAME[need])
                     for need in case.needs]
            context = self._context(case)
            self.futures[key] = self.pool.submit(self._build, side, case, context, deps)
        return self.futures[key]

    def prefetch(self, items: list) -> None:
        """Submit the builds the selected tests of this module will want, in order."""
        kade_ok = kade_build_missing(str(self.kade.root)) is None
        for item in items:
            case = getattr(item, "callspec", None) and item.callspec.params.get("case")
            if item.module.__name__ != __name__ or not isinstance(case, Case):
                continue
            if case.slow and SKIP_SLOW:
                continue
            if "reproducibly" in item.name:
                sides = ["docker", "docker-again"] if SELFCHECK else []
            else:
                sides = ["docker", "kade"] if kade_ok else []
            for side in sides:
                self.submit(side, case)

    def base(self, ref: str) -> str:
        return self._base(ref).result()

    def _base(self, ref: str) -> Future:
        key = ("base", ref)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(self._load_base, ref)
        return self.futures[key]

    def _load_base(self, ref: str) -> str:
        """Bootstrap `ref` in Kade and load that very image into docker."""
        what = "busybox" if ref.startswith("busybox") else ref
        slow = ref.startswith("debian")
        if slow and SKIP_SLOW:
            pytest.skip("KADE_SKIP_SLOW is set")
        with self.kade_lock:
            proc = run([*KADE, "--root", str(self.kade.root), "image", "bootstrap", what],
                       timeout=SLOW_TIMEOUT if slow else 300)
            if proc.returncode != 0:
                pytest.skip(f"kade image bootstrap {what} fails here: {_text(proc)[-800:]}")
            archive = self.tmp / f"{what.replace(':', '-')}.tar"
            self.kade("save", "-o", str(archive), ref)
        self.docker.docker("load", "-i", str(archive), timeout=600)
        image_id = self.docker.docker.out("image", "inspect", "-f", "{{.Id}}", ref)
        assert image_id == proc.stdout.decode().split()[-1], "docker loaded another id"
        return image_id

    def _context(self, case: Case) -> Path:
        """A copy of the case directory, completed with what git cannot hold."""
        dst = self.tmp / "contexts" / case.name
        if not dst.exists():
            shutil.copytree(CASES_DIR / case.name, dst, symlinks=True)
            (dst / "case.json").unlink(missing_ok=True)
            for d in case.mkdirs:
                (dst / d).mkdir(parents=True, exist_ok=True)
            for path, mode in case.modes:
                os.chmod(dst / path, int(mode, 8))
        return dst

    def _build(self, side_name: str, case: Case, context: Path, deps: list[Future]) -> Built:
        for dep in deps:
            dep.result()  # a failed base or parent image fails (or skips) this build too
        if case.kade_only:
            context = context / ("kade" if side_name == "kade" else "docker")
        url = f"http://127.0.0.1:{self.http.server_address[1]}/{case.name}"
        flags = _absolute_dockerfile([f.replace("{http}", url) for f in case.flags], context)
        tag = case.tag
        if side_name == "docker-again":  # the same build, nothing reused, another name
            flags, tag = ["--no-cache", *flags], f"{case.tag}-again"
        timeout = SLOW_TIMEOUT if case.slow else BUILD_TIMEOUT
        if side_name == "kade":
            with self.kade_lock:
                log = self.kade.build(context, tag, flags, timeout)
                result = snapshot(self.kade, tag, case.paths)
        else:
            log = self.docker.build(context, tag, flags, timeout)
            result = snapshot(self.docker, tag, case.paths)
            absent = [p for p in case.paths or () if not any(
                f == p or f.startswith(p + "/") for f in result.tree)]
            if absent:  # a comparison of nothing would pass whatever Kade built
                raise BuildFailed(f"case.json paths {absent} are not in docker's export")
        result.side, result.log = side_name, log
        return result


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the case contexts on loopback for ADD <url>; no log lines on stderr."""

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base's signature)
        pass


def _absolute_dockerfile(flags: list[str], context: Path) -> list[str]:
    """-f is relative to the working directory for both CLIs; cases mean the context."""
    out = list(flags)
    for i, flag in enumerate(out[:-1]):
        if flag in ("-f", "--file"):
            out[i + 1] = str(context / out[i + 1])
    return out


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory) -> Iterator[Lab]:
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as docker:
        lab = Lab(docker, tmp_path_factory.mktemp("build-compat"))
        try:
            lab.prefetch(request.session.items)
            yield lab
        finally:
            lab.close()


@pytest.fixture
def kade_builds(lab) -> None:
    why = kade_build_missing(str(lab.kade.root))
    if why:
        pytest.skip(why)


# --- the harness against docker itself ------------------------------------------
def test_base_images_are_the_same_on_both_sides(lab):
    """The starting point: one image id, and the two engines export it alike (so
    the ignore rules above hide container artefacts, not build results)."""
    lab.base("busybox:latest")
    a = snapshot(lab.docker, "busybox:latest", None)
    with lab.kade_lock:
        b = snapshot(lab.kade, "busybox:latest", None)
    assert len(a.tree) > 200, "busybox exported almost nothing"
    assert_same(a, b, "busybox:latest, as loaded")


def test_harness_sees_differences(lab, tmp_path):
    """Two docker builds that differ in config, layers, history and files must be
    reported as different, each in its own section, and nothing else reported."""
    lab.base("busybox:latest")
    builds = []
    for name, steps in (("first", ["RUN echo a > /f && chmod 600 /f", 'CMD ["x"]']),
                        ("second", ["RUN true", "RUN echo a > /f", "RUN touch /g",
                                    'CMD ["x", "y"]'])):
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("\n".join(["FROM busybox", *steps]) + "\n")
        lab.docker.build(ctx, f"harness-{name}", [], BUILD_TIMEOUT)
        built = snapshot(lab.docker, f"harness-{name}", None)
        built.side = name
        builds.append(built)
    found = problems(*builds)
    assert [p.split(":")[0] for p in found] == [
        "config.Cmd", "layers", "history (empty_layer, created_by)", "file tree"], found
    assert found[1] == "layers: first 2, second 3"
    assert "/f\n    first: type=file mode=0600" in found[3]
    assert "/g\n    first: (missing)" in found[3]
    assert "file tree: 2 paths differ" in found[3]


@pytest.mark.parametrize("case", params(CASES))
def test_docker_builds_reproducibly(lab, case):
    """The same case built again by docker, without its cache, compares equal: the
    cases and the comparison hold nothing that changes from build to build. It
    doubles docker's builds, so it runs on request (KADE_BUILD_SELFCHECK=1: after
    changing a case or the comparison) and whenever Kade differs (see below)."""
    if not SELFCHECK:
        pytest.skip("KADE_BUILD_SELFCHECK=1 checks every case against docker itself")
    assert_same(lab.built("docker", case), lab.built("docker-again", case), case.id)


# --- Kade against docker ----------------------------------------------------------
def assert_kade_like_docker(lab: Lab, case: Case) -> None:
    docker, kade = lab.built("docker", case), lab.built("kade", case)
    if problems(docker, kade) and not SELFCHECK:
        # before blaming Kade, make sure docker agrees with itself on this case
        assert_same(docker, lab.built("docker-again", case), f"{case.id} (docker alone)")
    assert_same(docker, kade, case.id)


@pytest.mark.parametrize("case", params(SAME_SPELLING))
def test_kade_builds_like_docker(lab, kade_builds, case):
    assert_kade_like_docker(lab, case)


@pytest.mark.parametrize("case", params(KADE_ONLY))
def test_kade_only_syntax_builds_like_docker_spelling(lab, kade_builds, case):
    """BuildKit-only syntax (COPY --chmod, heredocs), which legacy docker refuses,
    against docker's build of the same steps spelt the legacy way (case.json says how)."""
    assert_kade_like_docker(lab, case)


HASHES = re.compile(r"((?:file|dir|multi):)?[0-9a-f]{64}(?![0-9a-f])")


@pytest.mark.parametrize("case", params(SAME_SPELLING))
def test_kade_history_reads_like_docker(lab, kade_builds, case):
    """`created_by` in docker's words (issue 4: `kade history` lists the same steps
    with CREATED BY text in docker's style); the content hashes docker computes for
    COPY/ADD sources are masked, being docker's own tarsum of the sources."""
    texts = []
    for side in ("docker", "kade"):
        history = lab.built(side, case).config.get("history", [])
        texts.append([HASHES.sub(r"\1<hash>", h.get("created_by", "")) for h in history])
    if texts[0] != texts[1]:
        rows = [f"{case.id}: history created_by differs (docker {len(texts[0])} entries, "
                f"kade {len(texts[1])})"]
        for i in range(max(map(len, texts))):
            a, b = (t[i] if i < len(t) else "-" for t in texts)
            if a != b:
                rows.append(f"  {i:2d} docker: {a}\n     kade:   {b}")
        pytest.fail("\n".join(rows), pytrace=False)
