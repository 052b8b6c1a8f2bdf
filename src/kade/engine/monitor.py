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
"""

from __future__ import annotations

import _socket
import os
import signal
import sys
import threading
import time

from kade.engine.monitorclient import LOCK, SOCKET, encode, sock_path
from kade.errors import CommandNotFound, CommandNotInvocable, KadeError, NotFound

RESTART_BACKOFF_MAX = 60.0
IDLE_EXIT = float(os.environ.get("KADE_MONITOR_IDLE", "300"))

class Supervisor:
    def __init__(self, root: str, driver: str):
        self.root, self.driver = root, driver
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.in_flight = 0  # accepted connections not yet answered
        self.socket_id = (0, 0)  # (dev, inode) of the socket file we bound
        self._engine = None
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
        lock_fd = os.open(os.path.join(self.root, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                          0o600)
        if not _lock(lock_fd, fcntl, wait=5.0):
            _log("another supervisor holds the lock; exiting")
            return 0
        _quiet_process()
        _one_malloc_arena()
        import faulthandler
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks into monitor.log
        listener = self._listen()
        _log("serving")
        _warm_up(self.engine.runtime.seccomp_cache)
        while self._keep_running():
            try:
                fd, _ = listener._accept()  # socket.socket.accept, without the socket module
            except TimeoutError:
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
                return _close_all(fds)
            return engine.containers.create(opts)
        except KadeError as e:
            _send(conn.fileno(), {"error": str(e), "kind": type(e).__name__})
        except Exception as e:  # noqa: BLE001 - a bad request must not end the supervisor
            _send(conn.fileno(), {"error": f"create failed: {e}", "kind": "KadeError"})
            _debug_traceback()
        return _close_all(fds)

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
            Monitor(self.engine, cid, conn.fileno(), attach, fds).run()
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


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor {os.getpid()}: {msg}\n")
    sys.stderr.flush()


def _lock(fd: int, fcntl, wait: float) -> bool:
    """Take the root's supervisor lock, waiting a little for one that is exiting."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)


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


# --- one container -------------------------------------------------------------
class Monitor:
    """Runs one container to its end (and through its restarts), in its own thread."""

    def __init__(self, engine, cid: str, report_fd: int, attach: dict | None,
                 attach_fds: list[int] = ()):
        self.engine = engine  # shared with the other monitors of this supervisor
        self.cid = cid
        self.report = report_fd
        self.attach = attach
        self.attach_fds = tuple(attach_fds) if attach else ()
        self.reported = False
        self.auto_remove = False
        self.held: dict | None = None  # a failed start of a --rm container, told once gone

    def run(self) -> int:
        engine, cid = self.engine, self.cid
        record, _ = engine.containers.get(cid)
        self.auto_remove = bool(record["HostConfig"].get("AutoRemove"))
        restarts = record.get("RestartCount", 0)
        while True:
            code = self._run_once(record)
            if code is None or not self._restart(record, code, restarts):
                break
            restarts += 1
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
        try:
            if external:
                from kade.engine import external as ext
                waited, pid = ext.run(engine, external, cid, prepared.bundle,
                                      prepared.rootfs_mounts, stdio.child_fds())
                stdio.close_child_ends()
                pidfd = os.pidfd_open(waited)
            else:
                pid = waited = engine.runtime.create(
                    cid, prepared.bundle, spec=prepared.spec, stdio=stdio.child_fds(),
                    console_socket=stdio.console_socket, rootfs_mounts=prepared.rootfs_mounts)
                stdio.close_child_ends()
                stdio.take_console(pid)
                pidfd = os.pidfd_open(pid)
                engine.runtime.start(cid)
        except KadeError as e:
            stdio.close()
            self._failed_start(e)
            return None
        del prepared  # its spec (~16 KB) is not needed while the container runs, for days
        lifecycle.mark_running(engine, cid, pid, record)
        if not self.reported:
            _send(self.report, {"started": {"pid": pid, "pty": stdio.pty_name, "cid": cid}})
            self.reported = True
        from kade.engine.health import HealthChecker
        checker = HealthChecker(engine, cid, record["Config"].get("Healthcheck") or {})
        checker.start()
        stdio.pump(pidfd)
        checker.stop()
        _, status = os.waitpid(waited, 0)
        os.close(pidfd)
        stdio.close()
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        oom_killed = not external and _oom_killed(engine, cid)  # before its cgroup goes
        try:
            if external:
                from kade.engine import external as ext
                ext.delete(engine, external, cid)
            elif not self.auto_remove:  # else containers.purge does it, after the reply
                engine.runtime.delete(cid, force=True)
        except KadeError:
            pass
        lifecycle.mark_exited(engine, cid, code, oom_killed)  # the record may be renamed by now
        return code

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
