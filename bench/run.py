#!/usr/bin/env python3
"""Kade's benchmark runner: kade, docker and podman side by side, in one run.

    python bench/run.py [--install-peers] [--only NAME] [--out docs/benchmarks.md]

Every engine gets the same busybox rootfs and its own private state inside one
temporary directory, so nothing here touches the host's own docker, podman or kade:

    <tmp>/                      made by tempfile.mkdtemp, removed at the end
      kade/                     kade --root
      docker/  dexec/           dockerd --data-root / --exec-root
      docker.sock docker.pid    dockerd --host / --pidfile
      docker-config/            DOCKER_CONFIG for the client
      podman/  podrun/ podtmp/  podman --root / --runroot / --tmpdir
      registries.conf           no search registries: podman can never pull
      busybox.tar               `kade save busybox`, or a rootfs tar made here
      images/                   tiny distinct image tars for the listing benchmark

Timings are wall-clock seconds of one CLI invocation, from spawn to its exit:
time.perf_counter around subprocess.Popen and a blocking wait (see call()). The
CLI's output goes to temporary files rather than pipes, so a detached helper
that inherits a pipe cannot make a call look slower than it is. Nothing here
asserts a timing: it only reports.

Network: no engine pulls (`--pull never`, and podman has no search
registries); containers run with `--network none`; dockerd talks over a unix
socket only. Nothing leaves the machine.

Cleanup runs on success, failure, Ctrl-C and SIGTERM, in this order: each
engine removes its containers; dockerd gets SIGTERM; any process still
referring to <tmp> is killed, with its descendants; mounts under <tmp> are
detached; <tmp> is deleted; cgroups named after our containers are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ("run", "memory", "list")
ENGINES = ("kade", "docker", "podman")
CLI_TIMEOUT = 120.0
DOCKERD_START_TIMEOUT = 60.0

# The targets: kade's median over the peer's median must be at most this.
RUN_TARGETS = {"docker": 1 / 8, "podman": 1 / 5}
LIST_TARGET_SECONDS = 0.050


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- calling CLIs


class Unavailable(Exception):
    """An engine could not be set up, or failed a step; str(e) is the reason."""


@dataclass
class Call:
    rc: int
    out: str
    err: str
    seconds: float


def call(argv: list[str], env: dict[str, str] | None = None,
         timeout: float = CLI_TIMEOUT) -> Call:
    """Run one command to its exit; raise Unavailable if it cannot start or times out.

    The wait blocks in waitpid() and a watchdog thread enforces the timeout:
    Popen.wait(timeout=...) polls with sleeps of up to 50 ms, which would round
    every timing up to the next poll (63, 113, 163 ms...).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        timed_out = threading.Event()
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env)
        except FileNotFoundError:
            raise Unavailable(f"{argv[0]} not found") from None
        watchdog = threading.Timer(timeout, _kill_on_timeout, (proc, timed_out))
        watchdog.start()
        try:
            rc = proc.wait()
        except BaseException:  # Ctrl-C: do not leave the child behind
            proc.kill()
            proc.wait()
            raise
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - start
        if timed_out.is_set():
            raise Unavailable(f"`{' '.join(argv[-4:])}` timed out after {timeout:.0f}s")
        out.seek(0)
        err.seek(0)
        return Call(rc, out.read().decode(errors="replace"),
                    err.read().decode(errors="replace"), seconds)


def _kill_on_timeout(proc: subprocess.Popen, timed_out: threading.Event) -> None:
    timed_out.set()
    proc.kill()


def first_line(text: str, limit: int = 160) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # a Python traceback says what went wrong on its last line
    line = lines[-1] if lines and lines[0].startswith("Traceback") else (lines[0] if lines else "")
    return line if len(line) <= limit else line[:limit] + "..."


@dataclass
class Engine:
    """One engine's CLI: its argv prefix, environment and the flags for run/create."""

    name: str
    argv: list[str]
    create_flags: list[str]          # added to every `run` and `create`
    env: dict[str, str] | None = None
    image: str = "busybox:latest"    # how this engine names the shared busybox image
    unavailable: str | None = None   # set when setup failed; every benchmark then skips it
    facts: dict[str, str] = field(default_factory=dict)
    daemon_pids: Callable[[], list[int]] = field(default=list)

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> Call:
        """Run `<engine> args...`; a non-zero exit raises Unavailable with the engine's message."""
        c = call([*self.argv, *args], self.env, timeout)
        if c.rc != 0:
            what = " ".join(args)
            what = what if len(what) <= 80 else what[:77] + "..."
            raise Unavailable(f"`{self.name} {what}` exited {c.rc}: "
                              f"{first_line(c.err or c.out) or 'no message'}")
        return c

    def cli_ok(self, *args: str) -> bool:
        try:
            self.cli(*args)
            return True
        except Unavailable:
            return False

    def create_args(self, verb: str, *rest: str) -> list[str]:
        return [verb, *self.create_flags, *rest]


@dataclass
class Samples:
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        # nearest-rank percentile: the smallest sample with at least 90% at or below it
        ordered = sorted(self.seconds)
        return ordered[math.ceil(0.9 * len(ordered)) - 1]


# engine name -> its figures, or the reason it could not be measured
Results = dict[str, "dict | Samples | str"]


def sample(engines: list[Engine], args_of: Callable[[Engine], list[str]], runs: int,
           warmups: int) -> dict[str, Samples | str]:
    """Time the engines in turn, call by call, so a change in machine load hits all alike."""
    seconds: dict[str, list[float]] = {e.name: [] for e in engines}
    failed: dict[str, str] = {}
    for i in range(warmups + runs):
        label = f"warm-up {i + 1}/{warmups}" if i < warmups else f"run {i - warmups + 1}/{runs}"
        for engine in engines:
            if engine.name in failed:
                continue
            try:
                c = _step(engine, args_of(engine), label)
            except Unavailable as e:
                log(f"{engine.name} unavailable: {e}")
                failed[engine.name] = str(e)
                continue
            if i >= warmups:
                seconds[engine.name].append(c.seconds)
    return {e.name: failed.get(e.name) or Samples(seconds[e.name]) for e in engines}


def same_args(args: list[str]) -> Callable[[Engine], list[str]]:
    return lambda engine: args


def _step(engine: Engine, args: list[str], label: str) -> Call:
    try:
        return engine.cli(*args)
    except Unavailable as e:
        raise Unavailable(f"{label}: {e}") from None


# ---------------------------------------------------------------- workspace and cleanup


class Workspace:
    """The run's temporary directory and everything made in it; close() undoes it all."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kade-benchrun-"))
        self.stack = contextlib.ExitStack()
        self.container_ids: set[str] = set()
        # dockerd's network: none here; bench/network.py gives it a bridge and iptables
        self.dockerd_network = ["--iptables=false", "--ip6tables=false", "--bridge=none"]

    def close(self) -> None:
        log(f"cleaning up {self.dir}")
        try:
            self.stack.close()
        except Exception as e:  # noqa: BLE001 - keep going: the sweep below still runs
            log(f"engine cleanup failed: {e}")
        kill_processes_referring_to(str(self.dir))
        unmount_under(str(self.dir))
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_cgroups_of(self.container_ids)
        if self.dir.exists():
            log(f"could not remove {self.dir} entirely")


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, cmdline) for every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            table[int(entry)] = (parent_pid(int(entry)), cmdline)
        except (OSError, ValueError):
            continue
    return table


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        # the command name may contain spaces and parentheses: split after the last ')'
        return int(f.read().rsplit(")", 1)[1].split()[1])


def descendants(table: dict[int, tuple[int, str]], roots: set[int]) -> set[int]:
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def kill_processes_referring_to(path: str) -> None:
    """Kill what still names our temp dir (dockerd, shims, conmon, monitors), and its children."""
    mine = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        pid = parent_pid(pid)
        mine.add(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        table = _proc_table()
        targets = descendants(table, {p for p, (_, cmd) in table.items() if path in cmd}) - mine
        if not targets:
            return
        names = Counter(table[p][1].split(" ", 1)[0].rsplit("/", 1)[-1] for p in targets)
        log(f"sending {sig.name} to leftover processes: "
            + ", ".join(f"{n} × {c}" for c, n in names.items()))
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in targets):
            time.sleep(0.1)


def mounts_under(path: str) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


def unmount_under(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    MNT_DETACH = 2
    for _ in range(5):  # stacked mounts on one point need one pass each
        points = mounts_under(path)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            libc.umount2(point.encode(), MNT_DETACH)
    log(f"mounts left under {path}: {mounts_under(path)}")


def remove_cgroups_of(container_ids: set[str]) -> None:
    """rmdir empty cgroups whose name holds one of our container ids (runtimes may leave them)."""
    if not container_ids or not os.path.isdir("/sys/fs/cgroup"):
        return
    for top, _, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if any(cid in os.path.basename(top) for cid in container_ids):
            with contextlib.suppress(OSError):
                os.rmdir(top)


# ---------------------------------------------------------------- images


DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def busybox_rootfs_tar(path: Path) -> None:
    """A busybox rootfs: /bin/busybox and every applet as a hard link to it, plus /etc basics."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = call([busybox, "--list-full"]).out.split()
    dirs = sorted({"bin", "dev", "etc", "proc", "root", "sys", "tmp", "usr", "usr/bin", "sbin",
                   "usr/sbin", "var"} | {os.path.dirname(a) for a in applets if "/" in a})
    mtime = int(os.stat(busybox).st_mtime)
    with tarfile.open(path, "w") as tar:
        for d in dirs:
            tar.addfile(_tar_info(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, mtime))
        info = _tar_info("bin/busybox", tarfile.REGTYPE, 0o755, mtime)
        info.size = os.path.getsize(busybox)
        with open(busybox, "rb") as f:
            tar.addfile(info, f)
        for applet in applets:
            if applet != "bin/busybox":
                link = _tar_info(applet, tarfile.LNKTYPE, 0o755, mtime)
                link.linkname = "bin/busybox"
                tar.addfile(link)
        _add_bytes(tar, "etc/passwd", PASSWD.encode(), mtime)
        _add_bytes(tar, "etc/group", GROUP.encode(), mtime)


def tiny_image_tar(path: Path, n: int) -> None:
    """An image tar with one file whose content differs per n, so every image id differs."""
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, "bench-image", f"{n}\n".encode(), 0)


def _tar_info(name: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, mtime
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = _tar_info(name, tarfile.REGTYPE, 0o644, mtime)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def loaded_name(output: str) -> str | None:
    """The busybox reference named by `docker load` / `podman load` output."""
    for line in output.splitlines():
        m = re.match(r"Loaded image(?:\(s\))?:\s*(\S+)", line.strip())
        if m:
            names = [n for n in m.group(1).split(",") if "busybox" in n]
            if names:
                return names[0]
    return None


def share_busybox(ws: Workspace, engines: list[Engine]) -> str:
    """Give every engine the same busybox rootfs; returns how it was done, for the report."""
    kade = next((e for e in engines if e.name == "kade" and not e.unavailable), None)
    saved = ws.dir / "busybox.tar"
    how = ["a rootfs tar of /bin/busybox (applets as hard links) imported by every engine"]
    if kade:
        try:
            kade.cli("image", "bootstrap", "busybox")
            kade.cli("save", "-o", str(saved), kade.image)
            how = ["`kade image bootstrap busybox`, saved by `kade save`, loaded by the peers"]
        except Unavailable as e:
            log(f"kade could not bootstrap and save busybox; importing a rootfs tar: {e}")
            how.append(f"kade could not bootstrap and save it: {e}")
            import_busybox(ws, kade)
    for peer in engines:
        if peer.name == "kade" or peer.unavailable:
            continue
        if saved.exists():
            try:
                load_busybox(peer, saved)
                continue
            except Unavailable as e:
                log(f"{peer.name} could not load kade's save; importing a rootfs tar: {e}")
                how.append(f"{peer.name} imported the rootfs tar instead, as its load failed: {e}")
        import_busybox(ws, peer)
    return "; ".join(how)


def load_busybox(engine: Engine, tar: Path) -> None:
    engine.image = loaded_name(engine.cli("load", "-i", str(tar)).out) or engine.image
    engine.cli("image", "inspect", engine.image)


def import_busybox(ws: Workspace, engine: Engine) -> None:
    tar = ws.dir / "busybox-rootfs.tar"
    try:
        if not tar.exists():
            busybox_rootfs_tar(tar)
        # an imported image has no config: give it the PATH a Dockerfile image would have
        engine.cli("import", "--change", f"ENV {DEFAULT_PATH}", str(tar), engine.image)
        engine.cli("image", "inspect", engine.image)
    except Unavailable as e:
        if engine.cli_ok("image", "inspect", engine.image):
            log(f"{engine.name}: import failed, keeping the busybox it has: {e}")
        else:
            engine.unavailable = f"no busybox image: {e}"


# ---------------------------------------------------------------- engines


def kade_engine(ws: Workspace) -> Engine:
    # the console script beside this Python, not a version manager's shim: a shim
    # (pyenv's is a bash script) would add its own start-up to every call
    beside = Path(sys.executable).with_name("kade")
    kade = str(beside) if beside.exists() else shutil.which("kade")
    if not kade:
        return Engine("kade", [], [], unavailable="kade is not installed (pip install -e .)")
    engine = Engine("kade", [kade, "--root", str(ws.dir / "kade")],
                    ["--network", "none", "--pull", "never"])
    engine.facts["cli"] = kade
    engine.facts["version"] = kade_version()
    engine.facts["bytecode"] = compile_kade()
    with contextlib.suppress(Unavailable):
        info = engine.cli("info").out
        driver = re.search(r"^Storage Driver:\s*(\S+)", info, re.M)
        engine.facts["storage"] = driver.group(1) if driver else "?"
    ws.stack.callback(remove_all_containers, engine)
    return engine


def compile_kade() -> str:
    """Compile kade's modules to bytecode now, as installing a wheel does.

    An editable install compiles each module on import and caches the bytecode in
    __pycache__, unless PYTHONDONTWRITEBYTECODE is set (some shells here set it):
    then every call would compile kade's sources again, some 70 ms of a `kade build`.
    """
    import compileall
    from importlib import util
    spec = util.find_spec("kade")
    if spec is None or not spec.submodule_search_locations:
        return "kade not importable by this Python: not compiled"
    folder = list(spec.submodule_search_locations)[0]
    ok = compileall.compile_dir(folder, quiet=1)
    return "compiled up front (compileall)" if ok else "compileall failed for some modules"


def kade_version() -> str:
    from importlib import metadata
    try:
        version = metadata.version("kade")
    except metadata.PackageNotFoundError:
        version = "?"
    commit = call(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    return f"{version} ({commit.out.strip()})" if commit.rc == 0 else version


def docker_engine(ws: Workspace) -> Engine:
    dockerd = shutil.which("dockerd")
    # Debian's client, matching Debian's daemon, even when another client is first on PATH
    client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
    if not dockerd or not client:
        return Engine("docker", [], [], unavailable="docker.io is not installed "
                                                    "(run with --install-peers)")
    (ws.dir / "docker-config").mkdir()
    engine = Engine("docker", [client, "-H", f"unix://{ws.dir / 'docker.sock'}"],
                    ["--network", "none", "--pull", "never"],
                    env={**os.environ, "DOCKER_CONFIG": str(ws.dir / "docker-config")})
    try:
        dockerd_proc = start_dockerd(ws, dockerd, engine)
    except Unavailable as e:
        engine.unavailable = str(e)
        return engine
    engine.daemon_pids = lambda: daemon_processes(dockerd_proc.pid)
    engine.facts.update(docker_facts(engine, client))
    return engine


def start_dockerd(ws: Workspace, dockerd: str, engine: Engine) -> subprocess.Popen:
    """dockerd with its own socket, data root, exec root and an empty config file."""
    (ws.dir / "daemon.json").write_text("{}\n")
    log_path = ws.dir / "dockerd.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [dockerd, "--host", f"unix://{ws.dir / 'docker.sock'}",
             "--data-root", str(ws.dir / "docker"), "--exec-root", str(ws.dir / "dexec"),
             "--pidfile", str(ws.dir / "docker.pid"),
             "--config-file", str(ws.dir / "daemon.json"),
             *ws.dockerd_network],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)  # so Ctrl-C reaches only us, and we stop dockerd in order
    ws.stack.callback(stop_dockerd, proc, engine)
    deadline = time.monotonic() + DOCKERD_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()
            raise Unavailable(f"dockerd exited {proc.returncode}: {tail[-1] if tail else ''}")
        if engine.cli_ok("version"):
            return proc
        time.sleep(0.2)
    raise Unavailable(f"dockerd did not answer within {DOCKERD_START_TIMEOUT:.0f}s")


def stop_dockerd(proc: subprocess.Popen, engine: Engine) -> None:
    if proc.poll() is not None:
        return
    remove_all_containers(engine)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log("dockerd ignored SIGTERM for 30s; killing it")
        proc.kill()
        proc.wait()


def daemon_processes(dockerd: int) -> list[int]:
    """dockerd and the containerd it started (the shims are counted per container)."""
    table = _proc_table()
    return [p for p in descendants(table, {dockerd}) if "containerd-shim" not in table[p][1]]


def docker_facts(engine: Engine, client: str) -> dict[str, str]:
    facts = {"client": client}
    with contextlib.suppress(Unavailable, ValueError, KeyError):
        info = json.loads(engine.cli("info", "--format", "{{json .}}").out)
        facts["version"] = f"dockerd {info['ServerVersion']}"
        facts["storage"] = info["Driver"]
        facts["cgroups"] = f"{info['CgroupDriver']}, v{info.get('CgroupVersion', '?')}"
        facts["runtime"] = f"containerd {info['ContainerdCommit']['ID']}, " \
                           f"runc {info['RuncCommit']['ID']}"
    return facts


def podman_engine(ws: Workspace) -> Engine:
    podman = shutil.which("podman")
    if not podman:
        return Engine("podman", [], [], unavailable="podman is not installed "
                                                    "(run with --install-peers)")
    conf = ws.dir / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")
    engine = Engine(
        "podman",
        [podman, "--root", str(ws.dir / "podman"), "--runroot", str(ws.dir / "podrun"),
         "--tmpdir", str(ws.dir / "podtmp"), "--cgroup-manager", "cgroupfs",
         "--events-backend", "file", "--runtime", "runc"],
        # this host caps nofile and nproc below podman's defaults, which run would exceed
        ["--network", "none", "--pull", "never",
         "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"],
        env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)},
        image="localhost/busybox:latest")
    ws.stack.callback(remove_all_containers, engine)
    try:
        info = json.loads(engine.cli("info", "--format", "json").out)
    except (Unavailable, ValueError) as e:
        engine.unavailable = str(e)
        return engine
    with contextlib.suppress(KeyError):
        host = info["host"]
        engine.facts["version"] = f"podman {info['version']['Version']}"
        engine.facts["storage"] = info["store"]["graphDriverName"]
        engine.facts["cgroups"] = f"{host['cgroupManager']}, {host['cgroupVersion']}"
        engine.facts["runtime"] = (f"{host['conmon']['version'].split(',')[0]}, "
                                   f"{host['ociRuntime']['version'].splitlines()[0]}")
    return engine


def make_engine(name: str, ws: Workspace) -> Engine:
    makers = {"kade": kade_engine, "docker": docker_engine, "podman": podman_engine}
    log(f"setting up {name}")
    try:
        return makers[name](ws)
    except Exception as e:  # noqa: BLE001 - report it in the table, run the others
        return Engine(name, [], [], unavailable=f"setup failed: {e!r}")


def remove_all_containers(engine: Engine) -> None:
    try:
        ids = engine.cli("ps", "-aq").out.split()
        for i in range(0, len(ids), 50):
            engine.cli("rm", "-f", *ids[i:i + 50])
    except Unavailable as e:
        log(f"{engine.name}: could not remove its containers ({e}); the sweep will kill them")


def remove(engine: Engine, ids: list[str]) -> None:
    for i in range(0, len(ids), 50):
        try:
            engine.cli("rm", "-f", *ids[i:i + 50])
        except Unavailable as e:
            log(f"{engine.name}: {e}")


# ---------------------------------------------------------------- benchmarks


def bench_run(engines: list[Engine], runs: int) -> Results:
    """`run --rm busybox true`: the whole life of a container, CLI to CLI."""
    live = [e for e in engines if not e.unavailable]
    log(f"run: {', '.join(e.name for e in live)}, interleaved")
    timed = sample(live, lambda e: e.create_args("run", "--rm", e.image, "true"), runs, 2)
    return {e.name: e.unavailable or timed[e.name] for e in engines}


def bench_memory(ws: Workspace, engine: Engine, count: int) -> dict:
    """PSS of the engine processes each detached container keeps alive."""
    daemons_before = sum_pss(engine.daemon_pids())
    ids: list[str] = []
    try:
        starts = []
        for i in range(count):
            c = _step(engine, engine.create_args("run", "-d", engine.image, "sleep", "600"),
                      f"container {i + 1}/{count}")
            ids.append(container_id(ws, c))
            starts.append(c.seconds)
        time.sleep(2)  # let monitors and shims finish starting up
        keepers = keeper_processes(engine, ids)
        return {
            "count": count,
            "pss_kb": sum_pss(keepers),
            "rss_kb": statistics.median(read_kb(p, "Rss") for p in keepers),
            "processes": Counter(command_name(p) for p in keepers),
            "daemon_growth_kb": sum_pss(engine.daemon_pids()) - daemons_before,
            "start": Samples(starts),
        }
    finally:
        remove(engine, ids)


def container_id(ws: Workspace, c: Call) -> str:
    words = c.out.split()
    if not words:
        raise Unavailable("printed no container id")
    ws.container_ids.add(words[-1])
    return words[-1]


def keeper_processes(engine: Engine, ids: list[str]) -> set[int]:
    """The engine processes that keep these containers: what the report weighs.

    The ancestors of each container's init below pid 1, each counted once: a
    containerd-shim per container for docker, a conmon per container for
    podman, one supervisor for all of kade's. Plus their children that are not
    container processes (a log pump, say). Never this runner's own ancestors.
    """
    inits = [init_pid(engine, cid) for cid in ids]
    table = _proc_table()
    chains = [ancestors(table, init) for init in inits]
    for cid, init, chain in zip(ids, inits, chains):
        if not chain:
            raise Unavailable(f"container {cid[:12]}'s init (pid {init}) has no engine "
                              "process above it")
    keepers = set().union(*chains) - ancestors(table, os.getpid())
    helpers = {p for p, (ppid, _) in table.items() if ppid in keepers}
    return keepers | (helpers - descendants(table, set(inits)))


def init_pid(engine: Engine, cid: str) -> int:
    out = engine.cli("inspect", "-f", "{{.State.Pid}}", cid).out.strip()
    if not out.isdigit() or int(out) <= 0:
        raise Unavailable(f"`inspect -f '{{{{.State.Pid}}}}' {cid[:12]}` printed {out[:40]!r}, "
                          "not a pid")
    return int(out)


def ancestors(table: dict[int, tuple[int, str]], pid: int) -> set[int]:
    """The parents of pid, its grandparents and so on, stopping below pid 1."""
    found = set()
    pid = table.get(pid, (0, ""))[0]
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = table.get(pid, (0, ""))[0]
    return found


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def read_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sum_pss(pids) -> int:
    return sum(read_kb(p, "Pss") for p in pids)


def bench_list(ws: Workspace, engines: list[Engine], containers: int, images: int) -> Results:
    """`ps -a` and `images` with many created containers and distinct images."""
    results: Results = {}
    made: dict[str, list[str]] = {}
    try:
        for engine in engines:
            made[engine.name] = []
            results[engine.name] = engine.unavailable or _fill(ws, engine, containers, images,
                                                               made[engine.name])
        ready = [e for e in engines if isinstance(results[e.name], dict)]
        log(f"list: {', '.join(e.name for e in ready)}, interleaved")
        for args in (["ps", "-a"], ["images"]):
            ready = [e for e in ready if isinstance(results[e.name], dict)]
            timings = sample(ready, same_args(args), runs=10, warmups=2)
            for name, timed in timings.items():
                figures = results[name]
                if isinstance(figures, dict):
                    figures[args[0]] = timed
                if isinstance(timed, str):
                    results[name] = timed
        for engine in ready:
            figures = results[engine.name]
            if isinstance(figures, dict):
                figures["rows"] = (_rows(engine, "ps", "-a"), _rows(engine, "images"))
        return results
    finally:
        for engine in engines:
            remove(engine, made.get(engine.name, []))


def _fill(ws: Workspace, engine: Engine, containers: int, images: int,
          ids: list[str]) -> dict | str:
    """Give one engine the images and created containers to list; ids collects what it made."""
    log(f"list: filling {engine.name}")
    try:
        how = make_images(ws, engine, images)
        for i in range(containers):
            c = _step(engine, engine.create_args("create", engine.image, "true"),
                      f"create {i + 1}/{containers}")
            ids.append(container_id(ws, c))
        return {"how": how}
    except Unavailable as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - one engine's surprise must not stop the others
        return f"runner error: {e!r}"


def _rows(engine: Engine, *args: str) -> str:
    try:
        return str(len(engine.cli(*args).out.splitlines()) - 1)
    except Unavailable:
        return "?"


def make_images(ws: Workspace, engine: Engine, count: int) -> str:
    """Distinct images by importing tiny tars; tags of busybox if import fails."""
    folder = ws.dir / "images"
    folder.mkdir(exist_ok=True)
    try:
        for i in range(count):
            tar = folder / f"{i}.tar"
            if not tar.exists():
                tiny_image_tar(tar, i)
            engine.cli("import", str(tar), f"bench-image-{i}:latest")
        return f"{count} distinct images (`import` of tiny tars) + busybox"
    except Unavailable as e:
        log(f"{engine.name}: import failed, tagging busybox instead: {e}")
        for i in range(count):
            engine.cli("tag", engine.image, f"bench-tag-{i}:latest")
        return f"{count} tags of busybox (import failed: {e})"


# ---------------------------------------------------------------- the report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kb: float) -> str:
    return f"{kb / 1024:.2f} MiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def machine_facts(engines: list[Engine], image_how: str, load: tuple[float, ...]) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next((int(x.split()[1]) for x in meminfo if x.startswith("MemTotal")), 0)
    cgroupfs = call(["stat", "-fc", "%T", "/sys/fs/cgroup"]).out.strip()
    debian = Path("/etc/debian_version")
    rows = [("cores", f"{os.cpu_count()} ({cpu})"),
            ("memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
            ("kernel", platform.release()),
            ("OS", f"Debian {debian.read_text().strip()}" if debian.exists() else "?"),
            ("cgroups", "v2" if cgroupfs == "cgroup2fs" else "v1"),
            ("Python", f"{platform.python_version()} ({sys.executable}, which runs kade)"),
            ("load average (1 min) at start, end", f"{load[0]:.2f}, {os.getloadavg()[0]:.2f}")]
    for e in engines:
        facts = "; ".join(f"{k}: {v}" for k, v in e.facts.items())
        rows.append((e.name, f"unavailable: {e.unavailable}" if e.unavailable else facts))
    names = ", ".join(f"{e.name} `{e.image}`" for e in engines)
    rows.append(("image", f"{image_how}; named {names}"))
    lines = ["| | |", "|---|---|", *(f"| {k} | {cell(v)} |" for k, v in rows)]
    return lines + busy_note(load[0], os.getloadavg()[0])


def busy_note(start: float, end: float) -> list[str]:
    """A warning under the facts when other work shared the CPUs during the run."""
    cores = os.cpu_count() or 1
    if max(start, end) < cores / 2:
        return []
    return ["", f"**The machine was busy**: a load average of {start:.2f} at the start and "
            f"{end:.2f} at the end on {cores} cores means other work (tests, other "
            "benchmarks) competed for the CPUs. Every time is inflated and every ratio is "
            "noisier than on a quiet machine; the engines took turns, so the load fell on "
            "all of them, but not necessarily evenly."]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def ratio(kade: float, peer: float) -> str:
    return f"{kade / peer:.3f}" if peer else "n/a"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header),
            *(f"| {' | '.join(cell(c) for c in row)} |" for row in rows)]


def unavailable_row(name: str, reason: str, width: int) -> list[str]:
    return [name, f"unavailable: {reason}", *[""] * (width - 2)]


RUN_TEXT = """{runs} runs per engine after 2 warm-ups, each `run --rm --network none --pull never
busybox true`; wall time of the CLI, from spawn to exit. The engines take turns, call by
call, so a change in the machine's load falls on all of them alike. Targets: kade's
median at most 1/8 of docker's and 1/5 of podman's."""


def report_run(results: dict, runs: int) -> list[str]:
    header = ["engine", "median", "p90", "kade/engine (median)", "target", "verdict"]
    kade = results.get("kade")
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append(unavailable_row(name, r, len(header)))
            continue
        s = r
        cmp = target = met = ""
        if name in RUN_TARGETS:
            limit = RUN_TARGETS[name]
            target = f"<= {limit:.3f} (1/{round(1 / limit)})"
            if isinstance(kade, Samples):
                cmp = ratio(kade.median, s.median)
                met = verdict(kade.median / s.median <= limit)
            else:
                met = "kade not measured"
        rows.append([name, ms(s.median), ms(s.p90), cmp, target, met])
    return ["## `run --rm busybox true`", "", RUN_TEXT.format(runs=runs), "",
            *table(header, rows)]


MEMORY_TEXT = """{count} containers per engine from `run -d busybox sleep 600`, all alive at
once. Measured: the PSS (sum of `Pss` in /proc/PID/smaps_rollup) of the engine processes
that keep these containers: the processes above each container's init up to pid 1
(found from `inspect -f '{{{{.State.Pid}}}}'` and /proc/PID/stat), each counted once, plus
their children that are not container processes; that total divided by the number of
containers. docker keeps a containerd-shim per container and podman a conmon; a process
shared by all the containers (kade's supervisor) is counted whole, fixed cost included.
PSS splits shared pages between the processes that map them, so {count} copies of one
binary cost less than {count} times its RSS. Daemon growth: the PSS that dockerd and
its containerd gained during the benchmark, per container (kade and podman have no
daemon); it can be negative when Go's collector hands memory back. The engines run one
after the other, each with its {count} containers. Target: kade <= conmon (about 1 MB)."""


def report_memory(results: dict, count: int) -> list[str]:
    header = ["engine", "processes measured", "their PSS", "PSS per container",
              "RSS per process (median)", "daemon growth per container", "`run -d` median",
              "kade/engine (PSS per container)", "target"]
    kade = results.get("kade")
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append(unavailable_row(name, r, len(header)))
            continue
        per = r["pss_kb"] / r["count"]
        procs = ", ".join(f"{n} × {c}" for c, n in r["processes"].most_common())
        growth = mib(r["daemon_growth_kb"] / r["count"]) if name == "docker" else "-"
        cmp = target = ""
        if isinstance(kade, dict) and name != "kade":
            kper = kade["pss_kb"] / kade["count"]
            cmp = ratio(kper, per)
            if name == "podman":
                target = f"kade <= conmon: {verdict(kper <= per)}"
        elif name == "podman":
            target = "kade <= conmon: kade not measured"
        rows.append([name, procs, mib(r["pss_kb"]), mib(per), mib(r["rss_kb"]), growth,
                     ms(r["start"].median), cmp, target])
    return ["## Memory kept per detached container", "", MEMORY_TEXT.format(count=count), "",
            *table(header, rows)]


LIST_TEXT = """{containers} containers from `create busybox true` (never started), and the
images in the last column; median and p90 of 10 calls after 2 warm-ups, the engines
taking turns call by call, each holding its containers and images at once. Target: kade's
median under {target:.0f} ms for both. "Rows listed" counts the output's lines less the
header, as a check that every engine listed the same things."""


def report_list(results: dict, containers: int) -> list[str]:
    header = ["engine", "`ps -a` median", "p90", "`images` median", "p90",
              "kade/engine (ps, images)", "rows listed (ps, images)", "images made"]
    kade = results.get("kade")
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append(unavailable_row(name, r, len(header)))
            continue
        ps, im = r["ps"], r["images"]
        if name == "kade":
            ok = ps.median < LIST_TARGET_SECONDS and im.median < LIST_TARGET_SECONDS
            cmp = f"target < {LIST_TARGET_SECONDS * 1000:.0f} ms: {verdict(ok)}"
        elif isinstance(kade, dict):
            cmp = (f"{ratio(kade['ps'].median, ps.median)}, "
                   f"{ratio(kade['images'].median, im.median)}")
        else:
            cmp = ""
        rows.append([name, ms(ps.median), ms(ps.p90), ms(im.median), ms(im.p90), cmp,
                     f"{r['rows'][0]}, {r['rows'][1]}", r["how"]])
    text = LIST_TEXT.format(containers=containers, target=LIST_TARGET_SECONDS * 1000)
    return ["## `ps -a` and `images` with many containers and images", "", text, "",
            *table(header, rows)]


INTRO = """Written by `python bench/run.py{args}` on {date} UTC, in {took}. Do not edit by
hand: rerun the runner (bench/README.md). Times are wall-clock times of one CLI call.
Ratios are kade's median over the peer's median: below 1 means kade is faster or smaller.
Every engine ran as root on this machine with private state in one temporary directory,
the same busybox rootfs, no network for the containers and no pulls.
Registry, pull and push figures are in docs/benchmarks-registry.md; builder figures
in docs/benchmarks-build.md."""


def write_report(out: Path, engines: list[Engine], image_how: str, sections: list[list[str]],
                 started: datetime.datetime, load: tuple[float, ...], argv: list[str],
                 title: str = "Benchmarks", intro: str = INTRO) -> str:
    """The report: title, intro (a template of {args}, {date}, {took}), machine, sections."""
    took = int((datetime.datetime.now(datetime.UTC) - started).total_seconds())
    intro = intro.format(args="".join(f" {a}" for a in argv), date=f"{started:%Y-%m-%d %H:%M}",
                         took=f"{took // 60} min {took % 60} s")
    facts = "\n".join(machine_facts(engines, image_how, load))
    parts = [f"# {title}", intro, "## Machine", facts,
             *("\n".join(section) for section in sections)]
    text = "\n\n".join(parts) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


# ---------------------------------------------------------------- main


PEERS = ("docker.io", "podman")


def install_peers(packages: tuple[str, ...] = PEERS) -> None:
    lists = Path("/var/lib/apt/lists")
    if not any(lists.glob("*_Packages*")):
        subprocess.run(["apt-get", "update"], check=True)
    packages = ["apt-get", "install", "-y", *packages]
    if subprocess.run(packages, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(packages, check=True)


def run_per_engine(engines: list[Engine], name: str, fn: Callable[[Engine], dict]) -> dict:
    results: dict[str, dict | str] = {}
    for engine in engines:
        if engine.unavailable:
            results[engine.name] = engine.unavailable
            continue
        log(f"{name}: {engine.name}")
        try:
            results[engine.name] = fn(engine)
        except Unavailable as e:
            log(f"{name}: {engine.name} unavailable: {e}")
            results[engine.name] = str(e)
        except Exception as e:  # noqa: BLE001 - one engine's surprise must not stop the others
            log(f"{name}: {engine.name} failed: {e!r}")
            results[engine.name] = f"runner error: {e!r}"
    return results


def add_common_args(p: argparse.ArgumentParser, runs: int, runs_help: str,
                    out: Path) -> None:
    """The options every side-by-side runner takes: --install-peers, --engines, --runs, --out."""
    p.add_argument("--install-peers", action="store_true",
                   help="apt-get install docker.io and podman first")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated subset of kade,docker,podman")
    p.add_argument("--runs", type=int, default=runs, help=runs_help)
    p.add_argument("--out", type=Path, default=out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run kade, docker and podman side by side.")
    p.add_argument("--only", action="append", choices=BENCHMARKS,
                   help="run only this benchmark (repeatable)")
    add_common_args(p, 20, "timed runs of `run --rm` per engine", REPO / "docs" / "benchmarks.md")
    return p.parse_args(argv)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# the benchmarks of one runner: given the workspace and its engines, the report's sections
Benchmarks = Callable[[Workspace, list[Engine]], list[list[str]]]


def session(args: argparse.Namespace, argv: list[str], benchmarks: Benchmarks,
            title: str = "Benchmarks", intro: str = INTRO,
            dockerd_network: list[str] | None = None) -> int:
    """One run of a runner: engines with private state sharing busybox, the benchmarks,
    the report at args.out, and the cleanup whatever happens. Returns the exit code."""
    if os.geteuid() != 0:
        log("run as root: the peers' daemons and kade's runtime need it")
        return 2
    if args.install_peers:
        install_peers()
    # SIGINT too: a shell without job control starts background jobs with SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    started, load = datetime.datetime.now(datetime.UTC), os.getloadavg()
    names = [n for n in args.engines.split(",") if n]
    if not names or set(names) - set(ENGINES):
        log(f"--engines takes a comma-separated subset of {','.join(ENGINES)}")
        return 2
    ws = Workspace()
    if dockerd_network is not None:
        ws.dockerd_network = dockerd_network
    try:
        engines = [make_engine(name, ws) for name in names]
        image_how = share_busybox(ws, engines)
        sections = benchmarks(ws, engines)
        text = write_report(args.out, engines, image_how, sections, started, load, argv,
                            title, intro)
        print(text)
        log(f"wrote {args.out}")
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ws.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    wanted = args.only or list(BENCHMARKS)

    def benchmarks(ws: Workspace, engines: list[Engine]) -> list[list[str]]:
        sections = []
        if "run" in wanted:
            sections.append(report_run(bench_run(engines, args.runs), args.runs))
        if "memory" in wanted:
            results = run_per_engine(engines, "memory", lambda e: bench_memory(ws, e, 50))
            sections.append(report_memory(results, 50))
        if "list" in wanted:
            sections.append(report_list(bench_list(ws, engines, 100, 50), 100))
        return sections

    return session(args, argv, benchmarks)


if __name__ == "__main__":
    sys.exit(main())
