"""Starting, stopping, signalling and waiting for containers."""

from __future__ import annotations

import os
import time

from kade.errors import Conflict, FailedPrecondition

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from kade.util.pipes import Feed

# `kade run` imports this module for run() alone: everything else imports what it
# needs when called (json, signal and the container store cost ~15 ms together)

INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init",
                   "/usr/libexec/docker/docker-init")


# --- what the monitor needs to run a container -----------------------------------
class Prepared:
    __slots__ = ("bundle", "spec", "rootfs_mounts", "net")

    def __init__(self, bundle: str, spec: dict, rootfs_mounts: list, net=None):
        self.bundle, self.spec, self.rootfs_mounts = bundle, spec, rootfs_mounts
        self.net = net  # kade.engine.endpoints.Plan: what join() puts in the netns


def prepare_run(engine, cid: str, record: dict) -> Prepared:
    import json
    from kade.engine import spec as specmod
    from kade.snapshots import read_file
    from kade.volumes import PlannedMount
    bundle = engine.containers.bundle(cid)
    snaps = engine.snapshots
    volume_mounts = [PlannedMount.from_json(m).oci()
                     for m in record.get("Private", {}).get("VolumeMounts", [])]
    init_path = _init_binary() if record["HostConfig"].get("Init") else None
    from kade.engine import endpoints
    net = endpoints.plan(engine, cid, record)  # leases, /etc/hosts, netns: before the init
    try:
        spec = specmod.build(record, passwd=read_file(snaps, cid, "/etc/passwd"),
                             group=read_file(snaps, cid, "/etc/group"),
                             volume_mounts=volume_mounts, init_path=init_path,
                             netns_path=net.netns_path)
    except BaseException:
        net.close()
        engine.db.release(cid)
        raise
    # compact: with indent json falls back to its pure-Python encoder (~1.5 ms here)
    specmod.ensure_file(os.path.join(bundle, "config.json"), json.dumps(spec))
    throwaway = bool(record["HostConfig"].get("AutoRemove"))
    rootfs = [_at_root(m, throwaway) for m in snaps.mounts(cid)]
    return Prepared(bundle, spec, rootfs, net)


def _at_root(mount, throwaway: bool):
    """The layer's mount at the container's root. An --rm container's layer is thrown
    away at exit, so its overlay is `volatile`: unmounting it then skips the syncfs
    of the host filesystem under it, which every exit otherwise waits for (~1 ms
    here, more when the host has dirty pages). A crash leaves such a layer
    unmountable, and nothing would mount it again anyway."""
    options = mount.options
    if throwaway and mount.type == "overlay" and _overlay_volatile():
        options += ("volatile",)
    return mount._replace(target="/", options=options)


_VOLATILE: list[bool] = []


def _overlay_volatile() -> bool:
    """overlayfs takes `volatile` since Linux 5.10."""
    if not _VOLATILE:
        release = os.uname().release.split(".")
        try:
            _VOLATILE.append((int(release[0]), int(release[1].split("-")[0])) >= (5, 10))
        except (IndexError, ValueError):
            _VOLATILE.append(False)
    return _VOLATILE[0]


def _init_binary() -> str:
    for path in INIT_CANDIDATES:
        if os.path.exists(path):
            return path
    raise FailedPrecondition("--init needs a static init on the host: apt-get install tini")


def external_runtime(record: dict) -> str | None:
    """The path of the container's OCI runtime when it is not Kade's own."""
    runtime = record["HostConfig"].get("Runtime") or "kade"
    return None if runtime == "kade" else runtime


# --- state transitions, written by the monitor -----------------------------------
def mark_running(engine, cid: str, pid: int, record: dict | None = None) -> None:
    from kade.engine.procs import pid_start
    from kade.util.ids import now_rfc3339
    engine.db.update_state(cid, {
        "Status": "running", "Running": True, "Paused": False, "Restarting": False,
        "Pid": pid, "PidStart": pid_start(pid), "ExitCode": 0, "Error": "", "OOMKilled": False,
        "StartedAt": now_rfc3339(), "FinishedAt": "0001-01-01T00:00:00Z",
        "MonitorPid": os.getpid(), "MonitorStart": pid_start(os.getpid())})
    engine.emit("container", "start", cid, record=record)


def mark_exited(engine, cid: str, code: int, oom_killed: bool = False) -> None:
    """oom_killed: the kernel's OOM killer killed a process of it (State.OOMKilled;
    docker also sends an "oom" event, before "die")."""
    from kade.util.ids import now_rfc3339
    engine.db.update_state(cid, {"Status": "exited", "Running": False, "Paused": False,
                                 "Restarting": False, "Pid": 0, "ExitCode": code,
                                 "OOMKilled": oom_killed, "FinishedAt": now_rfc3339()})
    if oom_killed:
        engine.emit("container", "oom", cid)
    engine.emit("container", "die", cid, {"exitCode": str(code)})


def should_restart(record: dict, state: dict, code: int, restarts: int) -> bool:
    policy = record["HostConfig"].get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if state.get("ManualStop") or name == "no":
        return False
    if name == "on-failure":
        limit = policy.get("MaximumRetryCount") or 0
        return code != 0 and (limit == 0 or restarts < limit)
    return name in ("always", "unless-stopped")


# --- the container's stdio, seen from the monitor ---------------------------------
class Stdio:
    """Pipes (or a pty) between the container and the monitor, the log and a terminal.

    Invariant: the container's fds 0, 1 and 2 are pipes made here or its own pty's
    slave, never the client's fds: the pump copies to and from those (issue 9)."""

    def __init__(self, record: dict, attach: dict | None, attach_fds: tuple = (),
                 adopt: dict | None = None):
        """adopt: the output fds of a running container (stream -> fd) that a new
        supervisor takes over, instead of new pipes."""
        from kade.engine.logs import Journal
        cfg = record["Config"]
        self.tty = bool(cfg.get("Tty"))
        self.attach = attach or {}
        # the attached client's stdin, stdout, stderr (received over the socket)
        self.term_in, self.term_out, self.term_err = attach_fds if attach else (-1, -1, -1)
        keep_log = not (record["HostConfig"].get("AutoRemove") and attach)
        bundle = os.path.dirname(record["LogPath"])
        self.journal = Journal(bundle, record["LogPath"], fresh=adopt is None) \
            if keep_log else None
        self.console_socket: int | None = None  # the runtime sends the pty master here
        self.master = -1
        self.pty_name: str | None = None
        self._console: _socket.socket | None = None
        self._child: list[int] = []
        self._parent: dict[int, str] = {}
        self._stdin_w: int | None = None
        self.feed: Feed | None = None  # the client's stdin into the container's
        if adopt is not None:
            self._stdin = self._stdout = self._stderr = None
            self._parent = {fd: stream for stream, fd in adopt.items()}
            self.master = adopt.get("stdout", -1) if self.tty else -1
        elif self.tty:
            # the pty is made inside the container (its /dev/pts/0, as in docker)
            from kade.runtime import console_pair
            self._console, self.console_socket = console_pair()
            self._child.append(self.console_socket)
            self._stdin = self._stdout = self._stderr = None
        else:
            self._stdin = self._stdin_fd(cfg)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self._parent.update({out_r: "stdout", err_r: "stderr"})
            self._child += [out_w, err_w]
            self._stdout, self._stderr = out_w, err_w

    def _stdin_fd(self, cfg: dict) -> int:
        """Always a pipe of the container's own: given the client's stdin itself, it
        could reopen it through /proc/self/fd/0 in any mode (issue 9)."""
        r, w = os.pipe()
        self._child.append(r)
        if cfg.get("OpenStdin") and self.attach.get("stdin"):
            from kade.util.pipes import Feed
            self.feed = Feed(self.term_in, w)  # the pump copies the client's input in
        elif cfg.get("OpenStdin"):
            self._stdin_w = w  # keep it open: the process waits for input, as in docker -di
        else:
            os.close(w)
        return r

    def child_fds(self) -> tuple[int | None, int | None, int | None]:
        return self._stdin, self._stdout, self._stderr

    def pipe_fds(self) -> tuple[int, int, int]:
        """child_fds, which are pipes unless a terminal's are made in the container
        (which external runtimes refuse: kade.engine.external.check)."""
        i, o, e = self.child_fds()
        if i is None or o is None or e is None:
            raise FailedPrecondition("a container with a terminal has no stdio pipes")
        return i, o, e

    def take_console(self, pid: int) -> None:
        """Once the runtime has made the container's pty: keep its master, and name its
        slave by a path any root process on the host can open (for the window size)."""
        if self._console is None:
            return
        from kade.runtime import receive_console
        console, self._console = self._console, None
        self.master, name = receive_console(console)
        self._parent[self.master] = "stdout"
        self.pty_name = f"/proc/{pid}/root{name}"
        if self.attach.get("stdin"):  # typed input, through a copy the pump polls apart
            from kade.util.pipes import Feed
            self.feed = Feed(self.term_in, os.dup(self.master))

    def close_child_ends(self) -> None:
        for fd in self._child:
            os.close(fd)
        self._child = []

    def pump(self, pidfd: int) -> None:
        import select

        from kade.util.pipes import rewatch
        poller = select.poll()
        live = dict(self._parent)
        for fd in live:
            poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        fed = rewatch(poller, (-1, 0), self.feed)  # what the stdin feed waits for
        exited = False
        while live or not exited:  # a container that closed its output may still read
            for fd, _ in poller.poll(100 if exited else None):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                    if self.feed is not None:  # nothing of the client's is read any more
                        self.feed.close()
                        fed = rewatch(poller, fed, self.feed)
                elif self.feed is not None and fd == fed[0]:
                    self.feed.step()
                    fed = rewatch(poller, fed, self.feed)
                elif fd in live and not self._copy(fd, live[fd]):
                    poller.unregister(fd)
                    del live[fd]
            if exited and not self._drain(live):
                break

    def held(self) -> dict:
        """What the keeper holds for this container: its output's read ends (or pty
        master) and their journals (names: see kade.engine.keeper)."""
        out = {stream: fd for fd, stream in self._parent.items()}
        if self.journal is not None:
            out.update({f"{s}.journal": self.journal.fds[s] for s in out})
        return out

    def _copy(self, fd: int, stream: str) -> bool:
        if self.journal is not None:
            data = self.journal.take(stream, fd, bool(self.attach))
            if data is None:
                return False
        else:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            except OSError:  # EIO: the pty's last slave closed
                data = b""
            if not data:
                return False
        if self.attach and data:
            _write_all(self.term_out if stream == "stdout" or self.tty else self.term_err, data)
        return True

    def _drain(self, live: dict) -> bool:
        """After the init exited: read what is left without blocking; False when done."""
        for fd in list(live):
            os.set_blocking(fd, False)
            try:
                while self._copy(fd, live[fd]):
                    if not self._pending(fd):
                        break
            except BlockingIOError:
                continue
            del live[fd]
        return False

    @staticmethod
    def _pending(fd: int) -> bool:
        import select
        return bool(select.select([fd], [], [], 0)[0])

    def close(self) -> None:
        self.close_child_ends()
        if self.feed is not None:
            self.feed.close()
        if self._console is not None:
            self._console.close()
            self._console = None
        for fd in list(self._parent) + ([self._stdin_w] if self._stdin_w else []):
            try:
                os.close(fd)
            except OSError:
                pass
        self._parent = {}
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def _write_all(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass  # the terminal went away; the log still has it


# --- verbs -----------------------------------------------------------------------
def start(engine, cid: str, attach: dict | None = None,
          fds: tuple[int, int, int] = (0, 1, 2)):
    """Start through the root's supervisor; `attach` hands it `fds` (default: this
    process's stdio; the API's pipes) to copy the container's stdio to and from.
    Returns a monitorclient.Started."""
    from kade.engine import monitorclient
    state = engine.containers.state(cid)
    if state["Status"] == "paused":
        raise Conflict("cannot start a paused container, try unpause instead")
    if state["Running"]:
        return monitorclient.Started(None, {"pid": state["Pid"]})
    engine.db.update_state(cid, {"ManualStop": False})
    return monitorclient.answer(monitorclient.request_start(engine, cid, attach, fds),
                                attach)


def run(engine, opts, attach: dict | None):
    """Create and start in the root's supervisor (warm: imports, caches, store
    open), the fast path of `kade run`. None when the image is not local: the
    caller pulls, then creates and starts the usual way."""
    from kade.engine import monitorclient
    try:
        return monitorclient.answer(monitorclient.request_run(engine, opts, attach), attach)
    except monitorclient.NeedPull:
        return None


def kill(engine, cid: str, sig: int = 9, *, wait: bool = False, manual: bool = False) -> None:
    state = engine.containers.state(cid)
    if not state["Running"]:
        raise Conflict(f"cannot kill container: {cid}: container {cid} is not running")
    if manual:
        engine.db.update_state(cid, {"ManualStop": True})
    pid = state["Pid"]
    _signal_pid(pid, sig)
    if state["Status"] == "paused":
        _freeze(engine, cid, False)
        engine.db.update_state(cid, {"Status": "running", "Paused": False})
    engine.emit("container", "kill", cid, {"signal": str(sig)})
    if wait:
        _wait_gone(pid, None)
        wait_stopped(engine, cid, None)


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float | None) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        from kade.engine.monitorclient import poll_readable
        return bool(poll_readable([fd], timeout))
    finally:
        os.close(fd)


def wait_stopped(engine, cid: str, timeout: float | None) -> dict:
    """Wait until the monitor has recorded that the container is not running."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = engine.containers.state(cid)
        if not state["Running"] and state["Status"] != "restarting":
            return state
        if deadline is not None and time.monotonic() > deadline:
            return state
        time.sleep(0.005)


def stop(engine, cid: str, timeout: int | None = None, signal: int | None = None) -> None:
    """`signal` (docker's `stop -s`) replaces the container's stop signal; SIGKILL
    follows it after `timeout` seconds all the same."""
    record, state = engine.containers.get(cid)
    if not state["Running"] and state["Status"] != "restarting":
        return
    engine.db.update_state(cid, {"ManualStop": True})
    if timeout is None:
        timeout = record["Config"].get("StopTimeout", 10)
    from kade.engine.signals import parse_signal
    sig = signal or parse_signal(record["Config"].get("StopSignal") or "SIGTERM")
    pid = state["Pid"]
    if pid:
        _signal_pid(pid, sig)
        if state["Status"] == "paused":
            _freeze(engine, cid, False)
        if not _wait_gone(pid, timeout):
            _signal_pid(pid, 9)
            _wait_gone(pid, None)
    wait_stopped(engine, cid, None)
    engine.emit("container", "stop", cid)


def restart(engine, cid: str, timeout: int | None = None,
            signal: int | None = None) -> None:
    stop(engine, cid, timeout, signal)
    start(engine, cid)
    engine.emit("container", "restart", cid)


def pause(engine, cid: str) -> None:
    state = engine.containers.state(cid)
    if not state["Running"]:
        raise Conflict(f"container {cid} is not running")
    if state["Paused"]:
        raise Conflict(f"container {cid} is already paused")
    _freeze(engine, cid, True)
    engine.db.update_state(cid, {"Status": "paused", "Paused": True})
    engine.emit("container", "pause", cid)


def unpause(engine, cid: str) -> None:
    state = engine.containers.state(cid)
    if not state["Paused"]:
        raise Conflict(f"container {cid} is not paused")
    _freeze(engine, cid, False)
    engine.db.update_state(cid, {"Status": "running", "Paused": False})
    engine.emit("container", "unpause", cid)


def thaw(engine, cid: str) -> None:
    """Resume a container's cgroup whatever the store says (a dead commit's freeze)."""
    _freeze(engine, cid, False)


def _freeze(engine, cid: str, pause: bool) -> None:
    record, _ = engine.containers.get(cid)
    runtime = external_runtime(record)
    if runtime:
        from kade.engine import external
        external.freeze(engine, runtime, cid, pause)
    elif pause:
        engine.runtime.pause(cid)
    else:
        engine.runtime.resume(cid)


def wait(engine, cid: str) -> int:
    state = engine.containers.state(cid)
    if state["Running"] or state["Status"] == "restarting":
        state = wait_stopped(engine, cid, None)
    return int(state.get("ExitCode", 0))
