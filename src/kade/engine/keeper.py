"""The keeper: the half of a root's supervisor that nothing may kill in passing.

    kade-supervisor --root R            the keeper (this file, as a top-level module
    │                                   of python -I -S; `ps` shows the title)
    │   holds <root>/monitor.lock, is the child subreaper of everything below it
    └─ kade-supervisor-worker --root R  the worker (kade.engine.monitor.Supervisor):
       │                                serves monitor.sock, pumps logs, health checks,
       │                                restart policies; holds monitor.worker.lock
       └─ container inits               its children while it lives

The worker is where the work (and so the bugs and the memory) is; the keeper only
keeps what must outlive it. For every container the worker sends the keeper copies
of the read ends of its output pipes (or its pty master) and of its log journals
(kade.engine.logs.Journal), over the link (a SOCK_SEQPACKET socketpair, one marshal
dict per message, fds by SCM_RIGHTS); the keeper holds them and does nothing else
while the worker lives. When the worker dies:

- the keeper splices whatever the containers write into their journals (their
  pipes keep a reader: no SIGPIPE, no blocked write), and discards the output of
  containers that keep no log;
- the kernel reparents the inits to the keeper (PR_SET_CHILD_SUBREAPER, set before
  this file was exec'd: the flag survives execve); it reaps them and keeps each exit
  status, keyed by pid and start time (no pid reuse can fool it);
- it starts a new worker at once (backing off if workers keep dying), which sends
  "hello" and gets back every held fd and every exit status, then re-adopts the
  running containers (kade.engine.monitor.Supervisor.adopt_all).

Link messages, worker -> keeper: {"hello"}, {"hold": cid, "names": [...]} + fds,
{"drop": cid}; keeper -> worker: {"held": cid, "names": [...]} + fds, {"exit": [pid,
start, code]} for every child it reaps but the worker, {"ready"} after the hello's.

A worker that exits with 0 meant it (idle, `system monitor stop`, root removed): the
keeper exits with it unless it still holds a container. A keeper whose root directory
was removed exits too. Imports: what a bare interpreter has (the keeper's memory is
part of every container's cost; see docs/benchmarks.md).
"""

import _socket
import marshal
import os
import select
import signal
import sys
import time

LOCK = "monitor.lock"
WORKER_LOCK = "monitor.worker.lock"
EXITS_KEPT = 4096
BACKOFF_MAX = 30.0
_MSG = 65536


# --- shared with the worker --------------------------------------------------------
def set_title(title: str, comm: str = "kade-supervisor") -> None:
    """What `ps` shows: argv's memory rewritten in place (as setproctitle does), so
    /proc/self/cmdline is the title; cut to the length of the original argv."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (proc(5))
        text = title.encode()[:end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(text + b"\0" * (end - start - len(text)))
        with open("/proc/self/comm", "w") as f:
            f.write(comm[:15])
    except (OSError, IndexError, ValueError):
        pass  # cosmetic only


def root_id(root: str):
    try:
        st = os.stat(root)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def send(sock, msg: dict, fds=()) -> None:
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
            b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds))] if fds else []
    sock.sendmsg([marshal.dumps(msg, 4)], anc)


def recv(sock, most: int = 16):
    """(message, fds) or (None, []) at the end of the link."""
    data, anc, _, _ = sock.recvmsg(_MSG, _socket.CMSG_LEN(most * 4), _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, payload in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(payload) - len(payload) % 4, 4)]
    if not data:
        return None, fds
    return marshal.loads(data), fds


def pid_start(pid: int):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# --- the keeper ----------------------------------------------------------------------
class Keeper:
    def __init__(self, root: str, driver: str, src: str):
        self.root, self.driver, self.src = root, driver, src
        self.root_id = root_id(root)
        self.held: dict = {}  # cid -> [(name, fd)]
        self.exits: dict = {}  # pid -> (start, code), of children not the worker
        self.worker = 0
        self.link: _socket.socket | None = None  # to the worker, while one runs
        self.draining: dict = {}  # pipe fd -> journal fd or -1 (discard), no worker
        self.next_start = 0.0
        self.backoff = 0.0
        self.started_at = 0.0
        self.stopping = False
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)

    def run(self) -> int:
        while True:
            if not self.worker and not self.stopping and time.monotonic() >= self.next_start:
                self.start_worker()
            if self.stopping and not self.worker:
                return 0
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            if self.link is not None:
                poller.register(self.link.fileno(), select.POLLIN)
            for fd in self.draining:
                poller.register(fd, select.POLLIN)
            for fd, ev in poller.poll(self._timeout()):
                if fd == self.wake_r:
                    self._reap()
                elif self.link is not None and fd == self.link.fileno():
                    self._on_link()
                elif fd in self.draining:
                    self._drain(fd, ev)
            if root_id(self.root) != self.root_id and not self.stopping:
                self._root_gone()

    def _timeout(self) -> int:
        if not self.worker and not self.stopping:
            return max(0, int((self.next_start - time.monotonic()) * 1000))
        return 1000

    def _root_gone(self) -> None:
        self.stopping = True
        _log(self.root, "root directory removed: exiting")
        if self.worker:
            os.kill(self.worker, signal.SIGKILL)  # it cannot work without a root either

    # --- the worker --------------------------------------------------------------------
    def adopt_worker(self, pid: int, link_fd: int) -> None:
        self.worker = pid
        self.started_at = time.monotonic()
        self.link = _socket.socket(fileno=link_fd)
        os.set_inheritable(link_fd, False)

    def start_worker(self) -> None:
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        code = (f"import sys; sys.path.insert(0, {self.src!r}); "
                "from kade.engine.monitor import worker_main; worker_main()")
        args = [sys.executable, "-c", code, self.root, self.driver, str(theirs.fileno()),
                " " * 64]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.set_inheritable(theirs.fileno(), True)
                os.execv(sys.executable, args)
            finally:
                os._exit(127)
        theirs.close()
        self.worker, self.link = pid, ours
        self.started_at = time.monotonic()

    def _worker_exited(self, status: int) -> None:
        self.worker = 0
        if self.link is not None:
            self.link.close()
            self.link = None
        clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if clean and not self.held:
            self.stopping = True
            return
        _log(self.root, f"worker exited ({exit_code(status)}): holding "
                        f"{len(self.held)} container(s), starting another")
        lived = time.monotonic() - self.started_at
        self.backoff = 0.0 if lived > 10 else min(max(self.backoff * 2, 0.1), BACKOFF_MAX)
        self.next_start = time.monotonic() + self.backoff
        self._drain_all()

    # --- the link --------------------------------------------------------------------
    def _on_link(self) -> None:
        link = self.link
        assert link is not None  # the loop polls it only while a worker runs
        try:
            msg, fds = recv(link)
        except OSError:
            msg, fds = None, []
        if msg is None:  # the worker is going; its exit status tells the rest
            link.close()
            self.link = None
            return
        if "hold" in msg:
            self._drop(msg["hold"])
            self.held[msg["hold"]] = list(zip(msg["names"], fds))
        elif "drop" in msg:
            self._drop(msg["drop"])
            _close(fds)
        elif "hello" in msg:
            self._hello()

    def _drop(self, cid: str) -> None:
        for _, fd in self.held.pop(cid, ()):
            self.draining.pop(fd, None)
            os.close(fd)

    def _hello(self) -> None:
        """A new worker: stop draining (it pumps from now on), hand over everything."""
        self.draining.clear()
        try:
            for cid, named in self.held.items():
                send(self.link, {"held": cid, "names": [n for n, _ in named]},
                     [fd for _, fd in named])
            items = list(self.exits.items())
            for i in range(0, len(items), 500):
                send(self.link, {"exits": [[p, s, c] for p, (s, c) in items[i:i + 500]]})
            send(self.link, {"ready": True})
        except OSError:
            pass  # it died already: its exit status comes next

    # --- without a worker: drain, reap ---------------------------------------------
    def _drain_all(self) -> None:
        self.draining.clear()
        for named in self.held.values():
            fds = dict(named)
            for stream in ("stdout", "stderr"):  # a pipe's read end, or a pty's master
                if stream in fds:
                    journal = fds.get(f"{stream}.journal", -1)
                    if journal >= 0:  # the worker writes at explicit offsets: append
                        os.lseek(journal, 0, os.SEEK_END)
                    self.draining[fds[stream]] = journal

    def _drain(self, fd: int, events: int) -> None:
        journal = self.draining[fd]
        try:
            if journal >= 0 and hasattr(os, "splice") and not _is_tty(fd):
                moved = os.splice(fd, journal, 1 << 16, flags=os.SPLICE_F_NONBLOCK)
            else:
                data = os.read(fd, 1 << 16)
                moved = len(data)
                if journal >= 0 and data:
                    os.write(journal, data)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's last slave closed
            moved = 0
        if not moved:
            del self.draining[fd]  # the container closed its output (or exited)

    def _reap(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            start = pid_start(pid)  # a zombie's stat is still there
            _, status = os.waitpid(pid, 0)
            if pid == self.worker:
                self._worker_exited(status)
                continue
            self.exits[pid] = (start, exit_code(status))
            if len(self.exits) > EXITS_KEPT:
                del self.exits[next(iter(self.exits))]
            if self.link is not None:
                try:
                    send(self.link, {"exit": [pid, start, exit_code(status)]})
                except OSError:
                    pass


def _is_tty(fd: int) -> bool:
    return os.isatty(fd)


def _close(fds) -> None:
    for fd in fds:
        os.close(fd)


def _log(root: str, msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} keeper {os.getpid()}: {msg}\n")
    sys.stderr.flush()


def main(argv) -> int:
    """argv: root driver lock_fd worker_pid link_fd [cid/name/fd,...] (the worker's
    pid and link are "-" when the keeper must start one; the held fds come from a
    worker that turned keeper, see kade.engine.monitor.Supervisor.become_keeper)."""
    root, driver, lock_fd, worker, link = argv[:5]
    set_title(f"kade-supervisor --root {root}")
    os.set_inheritable(int(lock_fd), False)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    keeper = Keeper(root, driver, src)
    if worker != "-":
        keeper.adopt_worker(int(worker), int(link))
    held = argv[5] if len(argv) > 5 else ""
    for item in filter(None, held.split(",")):
        cid, name, fd = item.split("/")
        os.set_inheritable(int(fd), False)
        keeper.held.setdefault(cid, []).append((name, int(fd)))
    if worker == "-":
        keeper._drain_all()
    _log(root, "keeping")
    return keeper.run()


def command(root: str, driver: str, lock_fd: int, worker: int | str, link: int | str,
            held: str = "") -> list[str]:
    """The argv that execs a keeper (it then renames itself)."""
    # imported, not run as a script: a script is compiled at every start (~0.8 MB of
    # heap kept for good), a module comes from its cached bytecode; its directory goes
    # last on the path, so that it shadows nothing
    code = (f"import sys; sys.path.append({os.path.dirname(os.path.abspath(__file__))!r}); "
            "import keeper; sys.exit(keeper.main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code, root, driver, str(lock_fd), str(worker),
            str(link), held, " " * 32]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
