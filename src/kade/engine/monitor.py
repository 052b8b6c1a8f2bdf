"""Container monitors, all in one supervisor process per Kade root.

No daemon to start by hand: the first `kade` command that starts a container
forks the supervisor (kade.engine.monitorclient.connect), and it exits by itself once no
container has run for a while. It listens on `<root>/monitor.sock`; a client
sends one request, with its terminal's fds attached (SCM_RIGHTS) when it
attaches:

    {"op": "start", "cid": ..., "attach": {"stdin": bool, "tty": bool,
                                            "size": (rows, cols) | None} | None}
    {"op": "run", "opts": CreateOptions.__dict__, "attach": ...}

and reads messages back: {"started": {...}} or {"error": ..., "kind": ...}, then
{"exit": code} for attached runs. Each is one frame of monitorclient's wire format.
One thread per container (a `Monitor`) is the parent of the container's init: it
pumps its output into the json-file log and the attached terminal, waits for it,
records the exit, applies the restart policy and removes --rm containers.

Why one process: a Python process per container costs ~12 MB PSS; shared, the
supervisor costs a fraction of a MB per container, and it is warm (imports,
seccomp cache) for every start after the first.

Invariant: the supervisor is forked before the forking process opens SQLite
(Engine.close_handles): a connection carried across fork() loses writes.

The supervisor is two processes (kade.engine.keeper draws them): this module is the
worker; a tiny keeper above it outlives it, holds the containers' output pipes and
reaps their inits while no worker runs, and starts the next worker, which re-adopts
every running container (`Supervisor.adopt_all`). What is exact and what is not:
- a worker killed: nothing lost; no log line lost or doubled (logs.Journal), exit
  codes exact (the keeper reaps), restart policies and health checks resume; lines
  written meanwhile are stamped when the next worker reads them (~1 s late);
- the keeper killed: its worker becomes the keeper (`become_keeper`, execve: same
  pid, so still the inits' parent) and starts a worker: nothing lost, but attached
  clients lose their stream (the container goes on, detached);
- both killed: the containers' output pipes have no reader left, so a container
  writing gets EPIPE/SIGPIPE; the next worker reopens the pipes of those still
  running through /proc/<pid>/fd (not a -t container's pty); the exit code of an init
  that exited meanwhile (host init reaped it) is lost: 255, State.Error says so;
- a -t container's output is read, not spliced: a worker killed between the read
  and the journal write loses that read; a --runtime container's exit is reaped
  by its runtime process, so if it exits while no worker runs its code is 255.
"""

from __future__ import annotations

import _socket
import os
import signal
import sys
import threading
import time

from kade.engine import keeper as _keeper
from kade.engine.monitorclient import LOCK, LOG, SOCKET, encode, sock_path
from kade.errors import CommandNotFound, CommandNotInvocable, KadeError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kade.engine.core import Engine

RESTART_BACKOFF_MAX = 60.0
IDLE_EXIT = float(os.environ.get("KADE_MONITOR_IDLE", "300"))

class Supervisor:
    """The worker half of the root's supervisor (the keeper is kade.engine.keeper)."""

    def __init__(self, root: str, driver: str, link_fd: int | None = None):
        self.root, self.driver = root, driver
        self.link_fd = link_fd
        self.link: KeeperLink | None = None
        self.root_id = _keeper.root_id(root)
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.in_flight = 0  # accepted connections not yet answered
        self.socket_id = (0, 0)  # (dev, inode) of the socket file we bound
        self._engine: Engine | None = None
        self.last_activity = time.monotonic()

    @property
    def engine(self):
        """One Engine (one SQLite connection, locked) for every monitor thread."""
        with self.lock:
            if self._engine is None:
                from kade.engine.core import Engine
                self._engine = Engine(self.root, self.driver)
            return self._engine

    def serve(self) -> int:
        import fcntl
        lock_fd = os.open(os.path.join(self.root, _keeper.WORKER_LOCK),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not _lock(lock_fd, fcntl, wait=5.0):
            _log("another supervisor's worker holds the lock; exiting")
            return 0
        _keeper.set_title(f"kade-supervisor-worker --root {self.root}", "kade-worker")
        _quiet_process()
        _one_malloc_arena()
        import faulthandler
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks into monitor.log
        held = {}
        if self.link_fd is not None:
            self.link = KeeperLink(self.link_fd, self.become_keeper)
            held = self.link.hello()
        listener = self._listen()
        _log("serving")
        self.adopt_all(held)
        threading.Thread(target=_reconcile_networks, args=(self.engine,), daemon=True).start()
        _warm_up(self.engine.runtime.seccomp_cache)
        while self._keep_running():
            try:
                # socket.socket.accept, without the socket module: typeshed knows only the
                # public method, _socket.socket has the private one CPython builds it on
                fd, _ = listener._accept()  # type: ignore[attr-defined]
            except TimeoutError:
                if _keeper.root_id(self.root) != self.root_id:
                    _log("root directory removed: exiting")
                    return 0
                if not self._owns_socket():  # removed under us: serve a new one
                    listener.close()
                    listener = self._listen()
                continue
            with self.lock:
                self.in_flight += 1
                self.last_activity = time.monotonic()
            conn = _socket.socket(fileno=fd)
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()
        if self._owns_socket():  # never another supervisor's socket at the same path
            os.unlink(os.path.join(self.root, SOCKET))
        listener.close()
        _log("idle: exiting")
        return 0

    def _owns_socket(self) -> bool:
        try:
            st = os.stat(os.path.join(self.root, SOCKET))
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self.socket_id

    def _listen(self) -> _socket.socket:
        path = os.path.join(self.root, SOCKET)
        if os.path.exists(path):
            os.unlink(path)  # stale: we hold the lock, so nobody serves it
        # _socket, not socket: socket adds enum, selectors and array to every supervisor
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            listener.bind(sock_path(self.root))
        finally:
            os.umask(old)
        listener.listen(64)
        listener.settimeout(1.0)
        st = os.stat(path)
        self.socket_id = (st.st_dev, st.st_ino)
        return listener

    def _keep_running(self) -> bool:
        with self.lock:
            busy = bool(self.active) or self.in_flight > 0
        return busy or time.monotonic() - self.last_activity < IDLE_EXIT

    def _serve_conn(self, conn: _socket.socket) -> None:
        try:
            self._answer(conn)
        finally:
            conn.close()
            with self.lock:
                self.in_flight -= 1

    def _answer(self, conn: _socket.socket) -> None:
        try:
            msg, fds = _read_request(conn)
        except (OSError, ValueError, EOFError, TypeError):
            return
        if msg.get("op") == "shutdown":
            with self.lock:
                idle = not self.active and self.in_flight == 1  # only this request
            if idle:
                self.last_activity = -IDLE_EXIT
            conn.sendall(encode({"ok": idle}))
        elif msg.get("op") == "adopt":
            conn.sendall(encode({"adopted": self.adopt_all({})}))
        elif msg.get("op") == "network":
            conn.sendall(encode(self._network(msg)))
        elif msg.get("op") == "start":
            self._monitor(conn, msg["cid"], msg.get("attach"), fds)
        elif msg.get("op") == "run":
            cid = self._create(conn, msg["opts"], fds)
            if cid:
                self._monitor(conn, cid, msg.get("attach"), fds)

    def _create(self, conn: _socket.socket, options: dict, fds: list[int]) -> str | None:
        """engine.containers.create for the client: the same call `kade create` makes."""
        from kade.engine.options import CreateOptions
        engine = self.engine
        try:
            opts = CreateOptions(**options)
            if engine.images.try_resolve(opts.image) is None:
                _send(conn.fileno(), {"error": opts.image, "kind": "NeedPull"})
                _close_all(fds)
                return None
            return engine.containers.create(opts)
        except KadeError as e:
            _send(conn.fileno(), {"error": str(e), "kind": type(e).__name__})
        except Exception as e:  # noqa: BLE001 - a bad request must not end the supervisor
            _send(conn.fileno(), {"error": f"create failed: {e}", "kind": "KadeError"})
            _debug_traceback()
        _close_all(fds)
        return None

    def _monitor(self, conn: _socket.socket, cid: str, attach: dict | None,
                 fds: list[int]) -> None:
        with self.lock:
            if cid in self.active:
                _send(conn.fileno(), {"error": f"container {cid} is already starting",
                                      "kind": "Conflict"})
                _close_all(fds)
                return
            self.active.add(cid)
        try:
            Monitor(self.engine, cid, conn.fileno(), attach, fds, link=self.link).run()
        except NotFound:
            pass  # removed (rm -f) while we were finishing it: nothing left to record
        except BaseException as e:  # noqa: BLE001 - a monitor must not take the others down
            _send(conn.fileno(), {"error": f"monitor failed: {e}", "kind": "KadeError"})
            _debug_traceback()
        finally:
            for fd in fds:
                os.close(fd)
            with self.lock:
                self.active.discard(cid)
            self.last_activity = time.monotonic()


    def _network(self, msg: dict) -> dict:
        """`network connect|disconnect` of a running container: here, where its DNS is."""
        from kade.engine import endpoints
        fn = endpoints.connect_running if msg["action"] == "connect" else \
            endpoints.disconnect_running
        try:
            fn(self.engine, msg["cid"], msg["network"])
            return {"ok": True}
        except KadeError as e:
            return {"error": str(e), "kind": type(e).__name__}
        except Exception as e:  # noqa: BLE001 - a bad request must not end the supervisor
            _debug_traceback()
            return {"error": f"network {msg['action']} failed: {e}", "kind": "KadeError"}

    # --- re-adoption -----------------------------------------------------------------
    def adopt_all(self, held: dict) -> list[str]:
        """Take over every container the store says is running (or restarting) that
        no live supervisor watches: a previous worker died. held: what the keeper
        gave back (cid -> {name: fd}); the rest is reopened through /proc."""
        from kade.engine.procs import pid_alive
        adopted = []
        for record, state in self.engine.db.containers():
            cid = record["Id"]
            fds = held.pop(cid, None) or {}
            # a worker that turned keeper is our parent now, and watches nothing
            watched = state.get("MonitorPid", 0) != os.getppid() and \
                pid_alive(state.get("MonitorPid", 0), state.get("MonitorStart"))
            if state["Status"] not in ("running", "paused", "restarting") or watched:
                _close_all(list(fds.values()))
                continue
            with self.lock:
                if cid in self.active:
                    _close_all(list(fds.values()))
                    continue
                self.active.add(cid)
            adopted.append(cid)
            threading.Thread(target=self._adopt, args=(cid, fds), daemon=True).start()
        for fds in held.values():  # containers the store no longer has
            _close_all(list(fds.values()))
        if adopted:
            _log(f"re-adopting {len(adopted)} container(s)")
        return adopted

    def _adopt(self, cid: str, fds: dict) -> None:
        try:
            Monitor(self.engine, cid, -1, None, link=self.link).run(adopt=fds)
        except NotFound:
            pass
        except BaseException:  # noqa: BLE001 - a monitor must not take the others down
            _debug_traceback()
        finally:
            with self.lock:
                self.active.discard(cid)
            self.last_activity = time.monotonic()

    def become_keeper(self) -> None:
        """The keeper died and this worker lives: it becomes the keeper (execve keeps
        its pid, so the inits stay its children and their exit codes stay exact),
        and that keeper starts a new worker, which re-adopts everything. Attached
        clients lose their stream, as on a worker's death."""
        import fcntl
        fd = os.open(os.path.join(self.root, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        if not _lock(fd, fcntl, wait=1.0):
            _log("keeper lost, and another holds the lock: going on without one")
            os.close(fd)
            return
        _log("keeper lost: this worker becomes the keeper")
        _subreaper()
        held = []
        for cid, named in list(KeeperLink.holding.items()):
            for name, hfd in named.items():
                os.set_inheritable(hfd, True)
                held.append(f"{cid}/{name}/{hfd}")
        os.set_inheritable(fd, True)
        argv = _keeper.command(self.root, self.driver, fd, "-", "-", ",".join(held))
        os.execv(argv[0], argv)


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor {os.getpid()}: {msg}\n")
    sys.stderr.flush()


def _lock(fd: int, fcntl, wait: float, unless=None) -> bool:
    """Take the root's supervisor lock, waiting a little for one that is exiting
    (not for one that serves: `unless` says so)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline or (unless is not None and unless()):
                return False
            time.sleep(0.01)


def _serving(root: str) -> bool:
    from kade.engine.monitorclient import _try_connect
    sock = _try_connect(sock_path(root))
    if sock is not None:
        sock.close()
    return sock is not None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    fds.clear()


def _read_request(conn: _socket.socket) -> tuple[dict, list[int]]:
    """One request frame and the fds that came with its first bytes."""
    from kade.engine.monitorclient import Reader
    data, fds = _recv_fds(conn, 65536, 3)
    try:
        msg = Reader(conn.fileno(), data).read()
    except BaseException:
        _close_all(fds)
        raise
    if msg is None:
        _close_all(fds)
        raise ValueError("the client went away mid-request")
    return msg, list(fds)


def _recv_fds(conn: _socket.socket, size: int, most: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds: data, and the fds (SCM_RIGHTS) that came with it."""
    data, ancillary, _, _ = conn.recvmsg(size, _socket.CMSG_LEN(most * 4))
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(payload) - len(payload) % 4, 4)]
    return data, fds


def log_to(path: str) -> None:
    """stdin and stdout to /dev/null, stderr to the log: the client's pipes must not
    stay open in the supervisor, or a caller reading them to EOF would hang."""
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _quiet_process() -> None:
    os.chdir("/")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTTOU, signal.SIGTTIN,
                signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)


def _one_malloc_arena() -> None:
    """glibc gives each thread that allocates an arena of its own, up to 8 per core,
    ~150 KB each once touched: ~2.4 MB for the monitors' threads. They would allocate
    under the GIL anyway, one at a time, so one shared arena costs nothing."""
    import ctypes
    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX (malloc.h)
    except (AttributeError, OSError):
        pass  # not glibc


def _warm_up(seccomp_cache: str) -> None:
    """What every container start needs, imported and cached once."""
    from kade.engine import lifecycle, logs, spec  # noqa: F401
    from kade.oci import defaults
    from kade.runtime import seccomp
    try:
        seccomp.prepare(defaults.default_seccomp(defaults.DEFAULT_CAPS), seccomp_cache)
    except Exception:  # noqa: BLE001 - only a cache warm-up; a real start reports
        pass


def _debug_traceback() -> None:
    import traceback
    traceback.print_exc()  # into monitor.log


def lifecycle_mark_exited(engine, cid: str, code: int, oom_killed: bool, error: str) -> None:
    from kade.engine import lifecycle
    lifecycle.mark_exited(engine, cid, code, oom_killed)  # the record may be renamed by now
    if error:
        engine.db.update_state(cid, {"Error": error})


def lifecycle_external(record: dict):
    from kade.engine import lifecycle
    return lifecycle.external_runtime(record)


def _clear_stale_runtime_state(engine, cid: str) -> None:
    """Runtime state a dead supervisor left for this container (its init is gone):
    without this, the start would fail with 'container already exists'."""
    if os.path.isdir(os.path.join(engine.runtime.state_root, cid)):
        try:
            engine.runtime.delete(cid, force=True)
        except KadeError:
            pass


def _begin_networks(engine, cid: str, record: dict, plan) -> None:
    from kade.engine import endpoints
    endpoints.begin(engine, cid, record, plan)


def _join_networks(engine, cid: str, plan, runtime) -> None:
    """Wait for the container's interfaces, DNS and ports (made in a thread while the
    runtime made the init); a failure kills the init (the start fails, docker's way)."""
    from kade.engine import endpoints
    try:
        endpoints.finish(plan)
    except BaseException as e:
        if runtime is not None:
            try:
                runtime.delete(cid, force=True)
            except KadeError:
                pass
        if isinstance(e, KadeError):
            raise
        _debug_traceback()
        raise KadeError(f"cannot set up the container's network: {e}") from None


def _release_networks(engine, cid: str, exited: bool = False) -> None:
    from kade.engine import endpoints
    try:
        endpoints.release(engine, cid, exited)
    except Exception:  # noqa: BLE001 - what stays is reconcile's to clean
        _debug_traceback()


def _readopt_networks(engine, cid: str, record: dict, pid: int) -> None:
    from kade.engine import endpoints
    try:
        endpoints.readopt(engine, cid, record, pid)
    except Exception:  # noqa: BLE001 - the container runs on without name resolution
        _debug_traceback()


def _reconcile_networks(engine) -> None:
    """What a killed process left of networks (kade.engine.networks.reconcile)."""
    try:
        if engine.db.q1("SELECT 1 FROM networks LIMIT 1") is not None:
            engine.networks.reconcile()
    except Exception:  # noqa: BLE001 - prune does it again
        _debug_traceback()


def _pidfd_of(pid: int, start) -> int | None:
    """A pidfd of the container's init if it is still that process (even a zombie)."""
    from kade.engine.procs import pid_start
    if pid <= 0:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if start is not None and pid_start(pid) != start:
        os.close(pidfd)
        return None
    return pidfd


def _reopen_output(record: dict, pid: int, held: dict) -> dict:
    """Read ends of the container's output pipes the keeper did not hold (it died
    too): /proc/<pid>/fd/1 opened for reading is a new read end of the very pipe. A
    pty's master cannot be had that way: a -t container's output is then lost."""
    held = dict(held)
    if "stdout" in held or record["Config"].get("Tty"):
        return held
    for num, stream in ((1, "stdout"), (2, "stderr")):
        try:
            fd = os.open(f"/proc/{pid}/fd/{num}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        import stat
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            held[stream] = fd
        else:
            os.close(fd)
    return held


def _adopted_stdio(record: dict, held: dict):
    from kade.engine import lifecycle
    out = {k: v for k, v in held.items() if not k.endswith(".journal")}
    _close_all([v for k, v in held.items() if k.endswith(".journal")])
    return lifecycle.Stdio(record, None, (), adopt=out)


def _oom_killed(engine, cid: str) -> bool:
    try:
        return engine.runtime.oom_killed(cid)
    except KadeError:
        return False


def _send(fd: int, msg: dict) -> None:
    try:
        os.write(fd, encode(msg))
    except OSError:
        pass  # the caller went away; the container goes on


# --- the keeper's side ------------------------------------------------------------
class KeeperLink:
    """The worker's end of the link to its keeper (protocol: kade.engine.keeper)."""

    holding: dict = {}  # cid -> {name: fd}: this worker's fds the keeper holds copies of

    def __init__(self, fd: int, on_lost):
        self.sock = _socket.socket(fileno=fd)
        self.on_lost = on_lost
        self.send_lock = threading.Lock()
        self.cond = threading.Condition()
        self.exits: dict = {}  # pid -> (start, code), of inits the keeper reaped
        self.alive = True

    def hello(self) -> dict:
        """Everything the keeper holds (cid -> {name: fd}), and its exit records."""
        held: dict = {}
        _keeper.send(self.sock, {"hello": True})
        while True:
            msg, fds = _keeper.recv(self.sock)
            if msg is None:
                self.alive = False
                _close_all(fds)
                return held
            if "held" in msg:
                held[msg["held"]] = dict(zip(msg["names"], fds))
            elif "ready" in msg:
                break
            else:
                self._note(msg)
        threading.Thread(target=self._read, daemon=True).start()
        return held

    def _note(self, msg: dict) -> None:
        with self.cond:
            for pid, start, code in msg.get("exits") or [msg.get("exit") or (0, 0, 0)]:
                self.exits[pid] = (start, code)
            self.cond.notify_all()

    def _read(self) -> None:
        while True:
            try:
                msg, fds = _keeper.recv(self.sock)
            except OSError:
                msg, fds = None, []
            _close_all(fds)
            if msg is None:
                break
            self._note(msg)
        with self.cond:
            self.alive = False
            self.cond.notify_all()
        self.on_lost()

    def hold(self, cid: str, named: dict) -> None:
        if not self.alive or not named:
            return
        KeeperLink.holding[cid] = dict(named)
        with self.send_lock:
            try:
                _keeper.send(self.sock, {"hold": cid, "names": list(named)}, list(named.values()))
            except OSError:
                pass

    def drop(self, cid: str) -> None:
        if KeeperLink.holding.pop(cid, None) is None or not self.alive:
            return
        with self.send_lock:
            try:
                _keeper.send(self.sock, {"drop": cid})
            except OSError:
                pass

    def exit_of(self, pid: int, start, wait: float) -> int | None:
        """The exit code the keeper reaped for pid (started at `start`), if any."""
        def known():
            found = self.exits.get(pid)
            return found is not None and (None in (start, found[0]) or found[0] == start)
        with self.cond:
            self.cond.wait_for(lambda: known() or not self.alive, wait)
            return self.exits[pid][1] if known() else None


def _subreaper() -> None:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def spawn(root: str, driver: str) -> int:
    """In a child of the first client: take the root's lock, fork the worker, and
    become the keeper (exec). Returns only in the worker, or if another has the lock."""
    import fcntl
    log_to(os.path.join(root, LOG))
    fd = os.open(os.path.join(root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not _lock(fd, fcntl, wait=5.0, unless=lambda: _serving(root)):
        return 0  # another serves (or is exiting: the client tries again)
    _subreaper()  # before the fork and the exec: it survives execve
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        os.close(fd)
        ours.close()
        return Supervisor(root, driver, theirs.detach()).serve()
    theirs.close()
    os.set_inheritable(fd, True)
    os.set_inheritable(ours.fileno(), True)
    argv = _keeper.command(root, driver, fd, pid, ours.fileno())
    os.execv(argv[0], argv)


def worker_main() -> None:
    """A worker the keeper started: python -c ... root driver link_fd."""
    root, driver, link = sys.argv[1:4]
    sys.exit(Supervisor(root, driver, int(link)).serve())


# --- one container -------------------------------------------------------------
class Monitor:
    """Runs one container to its end (and through its restarts), in its own thread."""

    def __init__(self, engine, cid: str, report_fd: int, attach: dict | None,
                 attach_fds: list[int] | tuple[int, ...] = (), link: KeeperLink | None = None):
        self.engine = engine  # shared with the other monitors of this supervisor
        self.link = link
        self.adopting = False  # watching a container another worker started
        self.cid = cid
        self.report = report_fd
        self.attach = attach
        self.attach_fds = tuple(attach_fds) if attach else ()
        self.reported = False
        self.auto_remove = False
        self.held: dict | None = None  # a failed start of a --rm container, told once gone

    def run(self, adopt: dict | None = None) -> int:
        """adopt: take over the running container a dead worker left (the fds the
        keeper held for it) rather than start it."""
        engine, cid = self.engine, self.cid
        record = engine.db.container(cid)[0] if adopt is not None else \
            engine.containers.get(cid)[0]
        self.auto_remove = bool(record["HostConfig"].get("AutoRemove"))
        self.reported = adopt is not None
        restarts = record.get("RestartCount", 0)
        code = self._adopt(record, adopt) if adopt is not None else self._run_once(record)
        while code is not None and self._restart(record, code, restarts):
            restarts += 1
            code = self._run_once(record)
        final = engine.db.container(cid)[1]
        if not self.auto_remove:
            _send(self.report, {"exit": final.get("ExitCode", 0)})
            return 0
        # docker's client returns from `run --rm` once the container is removed: the
        # caller hears the exit code as soon as no reader can see the container any
        # more, and the files, runtime state and cgroups go while it exits
        layer = engine.containers.unlist(cid, record)
        if self.held:
            _send(self.report, self.held)
        _send(self.report, {"exit": final.get("ExitCode", 0)})
        engine.containers.purge(cid, layer)
        return 0

    def _restart(self, record: dict, code: int, restarts: int) -> bool:
        from kade.engine import lifecycle
        engine, cid = self.engine, self.cid
        if not lifecycle.should_restart(record, engine.db.container(cid)[1], code, restarts):
            return False
        record["RestartCount"] = restarts + 1
        engine.db.save_record(cid, record)
        engine.db.update_state(cid, {"Status": "restarting", "Restarting": True})
        time.sleep(min(0.1 * 2 ** restarts, RESTART_BACKOFF_MAX))
        if engine.db.container(cid)[1].get("ManualStop"):  # stopped during the back-off
            engine.db.update_state(cid, {"Status": "exited", "Restarting": False})
            return False
        return True

    def _run_once(self, record: dict) -> int | None:
        from kade.engine import lifecycle
        engine, cid = self.engine, self.cid
        try:
            prepared = lifecycle.prepare_run(engine, cid, record)
        except KadeError as e:
            self._failed_start(e)
            return None
        size = (self.attach or {}).get("size")
        if size and record["Config"].get("Tty"):  # the attached terminal's, from the start
            prepared.spec["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
        stdio = lifecycle.Stdio(record, self.attach, self.attach_fds)
        external = lifecycle.external_runtime(record)
        if not external:
            _clear_stale_runtime_state(engine, cid)
        _begin_networks(engine, cid, record, prepared.net)  # in parallel with the create
        try:
            if external:
                from kade.engine import external as ext
                _join_networks(engine, cid, prepared.net, None)  # before any process runs
                waited, pid = ext.run(engine, external, cid, prepared.bundle,
                                      prepared.rootfs_mounts, stdio.pipe_fds())
                stdio.close_child_ends()
                pidfd = os.pidfd_open(waited)
            else:
                pid = waited = engine.runtime.create(
                    cid, prepared.bundle, spec=prepared.spec, stdio=stdio.child_fds(),
                    console_socket=stdio.console_socket, rootfs_mounts=prepared.rootfs_mounts)
                stdio.close_child_ends()
                stdio.take_console(pid)
                pidfd = os.pidfd_open(pid)
                _join_networks(engine, cid, prepared.net, engine.runtime)
                engine.runtime.start(cid)
        except KadeError as e:
            prepared.net.close()
            stdio.close()
            _release_networks(engine, cid)
            self._failed_start(e)
            return None
        finally:
            prepared.net.close()  # the init is in it: the netns lives as long as it does
        del prepared  # its spec (~16 KB) is not needed while the container runs, for days
        lifecycle.mark_running(engine, cid, pid, record)
        if not self.reported:
            _send(self.report, {"started": {"pid": pid, "pty": stdio.pty_name, "cid": cid}})
            self.reported = True
        if self.link is not None:
            self.link.hold(cid, stdio.held())
        self._watch(record, pidfd, stdio)
        # not reaped yet: if this worker dies before the exit is recorded, the keeper
        # (the subreaper) reaps the zombie and keeps its status for the next worker
        info = os.waitid(os.P_PID, waited, os.WEXITED | os.WNOWAIT)
        assert info is not None  # None is only WNOHANG's answer
        status = info.si_status if info.si_code == os.CLD_EXITED else 128 + info.si_status
        del info
        return self._exited(record, status, external, reap=waited)

    def _watch(self, record: dict, pidfd: int, stdio) -> None:
        from kade.engine.health import HealthChecker
        checker = HealthChecker(self.engine, self.cid,
                                record["Config"].get("Healthcheck") or {})
        checker.start(resume=self.adopting)
        self.adopting = False
        stdio.pump(pidfd)
        checker.stop()
        os.close(pidfd)
        stdio.close()
        if self.link is not None:
            self.link.drop(self.cid)

    def _exited(self, record: dict, code: int, external, reap: int = 0,
                error: str = "") -> int:
        engine, cid = self.engine, self.cid
        oom_killed = not external and _oom_killed(engine, cid)  # before its cgroup goes
        _release_networks(engine, cid, exited=True)
        try:
            if external:
                from kade.engine import external as ext
                ext.delete(engine, external, cid)
            elif not self.auto_remove:  # else containers.purge does it, after the reply
                engine.runtime.delete(cid, force=True)
        except KadeError:
            pass
        lifecycle_mark_exited(engine, cid, code, oom_killed, error)
        if reap:
            os.waitpid(reap, 0)
        return code

    def _adopt(self, record: dict, held: dict) -> int | None:
        """Watch a container a dead worker started: its init is the keeper's child
        now (or init's, if the keeper died too), so its exit code comes from the
        keeper. Returns the exit code, as _run_once."""
        engine, cid = self.engine, self.cid
        state = engine.db.container(cid)[1]
        if state["Status"] == "restarting":  # died during the back-off: resume it
            return state.get("ExitCode", 0)
        pid, start = state.get("Pid", 0), state.get("PidStart")
        pidfd = _pidfd_of(pid, start)
        held = _reopen_output(record, pid, held) if pidfd is not None else held
        stdio = _adopted_stdio(record, held)
        if pidfd is not None:
            from kade.engine.procs import pid_start
            engine.db.update_state(cid, {"MonitorPid": os.getpid(),
                                         "MonitorStart": pid_start(os.getpid())})
            if self.link is not None:
                self.link.hold(cid, stdio.held())
            _readopt_networks(engine, cid, record, pid)
            self.adopting = True
            self._watch(record, pidfd, stdio)
        else:
            stdio.close()
            if self.link is not None:
                self.link.drop(cid)
        code = self.link.exit_of(pid, start, 2.0) if self.link is not None else None
        if code is None:  # docker's code for a task whose exit status was lost
            return self._exited(record, 255, lifecycle_external(record),
                                error="exit code lost: no supervisor ran when it exited")
        return self._exited(record, code, lifecycle_external(record))

    def _failed_start(self, e: KadeError) -> None:
        # as docker: a container that never ran stays "created", its error and an exit
        # code kept (127 not found, 126 not invocable, 128 any other failure)
        code = 127 if isinstance(e, CommandNotFound) else (
            126 if isinstance(e, CommandNotInvocable) else 128)
        self.engine.db.update_state(self.cid, {"Status": "created", "Running": False,
                                               "ExitCode": code, "Error": str(e)})
        if not self.reported:
            msg = {"error": str(e), "kind": type(e).__name__}
            if self.auto_remove:
                self.held = msg  # told once the container is gone (see run)
            else:
                _send(self.report, msg)
            self.reported = True
