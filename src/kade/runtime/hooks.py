"""OCI hooks: the bundle author's programs, run at fixed moments of the lifecycle.

When and where each kind runs (runtime-spec config.md "POSIX-platform Hooks",
runtime.md "Lifecycle"; runc 1.1.5 is the reference for the moments):

    prestart, createRuntime   create: by the caller (the runtime namespace), while the
                              init waits after its mounts and before pivot_root
                              (process.spawn_init's HOOKS round trip); pid as the
                              caller sees it
    createContainer           create: by the init itself, in the container's
                              namespaces, right after those, before pivot_root, with
                              the rootfs as its cwd; path resolved on the host
    startContainer            start: before the fifo is released, as a process exec'd
                              into the created container (process.spawn_exec: its
                              namespaces, root, cgroup and user, the sealed trampoline),
                              so its path resolves in the container
    poststart                 start: by the caller once the user's process runs
    poststop                  delete: by the caller once the container is gone

A failed prestart, createRuntime, createContainer or startContainer hook fails the
operation and the container is destroyed; a failed poststart or poststop hook is only
a warning. Each hook gets the container's state (runc's specs.State: pid and
annotations omitted when empty) on a pipe as stdin; its stdout and stderr are
captured and quoted in the error, as runc does, so a hook never gets a descriptor of
the caller's but those three pipes. A hook past its timeout is killed (SIGKILL).

The hooks are trusted as runc trusts them: config.json is the bundle author's, and
whoever may write it already decides what the container is.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable

from kade import errors
from kade.util.escape import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from kade.util.namedtuple import NamedTuple

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
_QUOTED_OUTPUT = 200          # characters of a failed hook's stdout/stderr in the error


class Hook(NamedTuple):
    path: str
    args: tuple[str, ...]
    env: tuple[str, ...] | None = None     # None: the runtime's own environment (runc)
    timeout: float | None = None


def parse(spec: dict) -> dict[str, tuple[Hook, ...]]:
    """spec["hooks"] -> kind -> hooks, every kind present (empty when none)."""
    given = spec.get("hooks") or {}
    if not isinstance(given, dict):
        raise errors.InvalidArgument("hooks must be an object")
    unknown = sorted(set(given) - set(KINDS))
    if unknown:
        raise errors.InvalidArgument(f'hook kind "{escape(unknown[0])}" is not valid')
    return {kind: tuple(parse_hook(kind, h) for h in given.get(kind) or ()) for kind in KINDS}


def parse_hook(kind: str, h: dict) -> Hook:
    path = h.get("path") if isinstance(h, dict) else None
    if not isinstance(path, str) or not path.startswith("/"):
        raise errors.InvalidArgument(f'{kind} hook path "{escape(str(path))}" is not absolute')
    timeout = h.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or timeout <= 0):
        raise errors.InvalidArgument(f'{kind} hook "{escape(path)}": timeout '
                                     f'"{escape(str(timeout))}" must be a positive integer')
    env = h.get("env")
    return Hook(path, tuple(str(a) for a in h.get("args") or ()) or (path,),
                None if env is None else tuple(str(e) for e in env), timeout)


def state(oci_version: str, id: str, status: str, pid: int, bundle: str,
          annotations: dict[str, str]) -> bytes:
    """The state a hook reads on stdin."""
    found: dict = {"ociVersion": oci_version, "id": id, "status": status}
    if pid:
        found["pid"] = pid
    found["bundle"] = bundle
    if annotations:
        found["annotations"] = annotations
    return json.dumps(found).encode()


def run_all(kind: str, hooks: Iterable[Hook], state: bytes) -> None:
    """Run hooks in order; the first failure is raised and the rest are skipped."""
    for i, hook in enumerate(hooks):
        run(kind, i, hook, state)


def run_warning(kind: str, hooks: Iterable[Hook], state: bytes,
                warn: Callable[[str], None]) -> None:
    """Run every hook; failures are warnings (poststart, poststop)."""
    for i, hook in enumerate(hooks):
        try:
            run(kind, i, hook, state)
        except errors.KadeError as e:
            warn(str(e))


def run(kind: str, index: int, hook: Hook, state: bytes) -> None:
    """One hook in this process's namespaces, with state on stdin."""
    env = None if hook.env is None else _environ(hook.env)
    try:
        proc = subprocess.Popen(hook.args, executable=hook.path, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
    except OSError as e:
        raise failed(kind, index, hook, os.strerror(e.errno or 0).lower()) from None
    try:
        out, err = proc.communicate(state, timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise timed_out(kind, index, hook) from None
    if proc.returncode:
        raise failed(kind, index, hook, exit_status(proc.returncode), out, err)


def _environ(env: tuple[str, ...]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env if "=" in e)


def exit_status(code: int) -> str:
    """A hook's end as Go's os.ProcessState prints it (runc quotes that)."""
    return f"signal: {_signal_name(-code)}" if code < 0 else f"exit status {code}"


def _signal_name(number: int) -> str:
    import signal
    try:
        return signal.strsignal(number) or str(number)
    except ValueError:
        return str(number)


def failed(kind: str, index: int, hook: Hook, why: str, out: bytes = b"",
           err: bytes = b"") -> errors.FailedPrecondition:
    message = f'{kind} hook #{index} "{escape(hook.path)}" failed: {why}'
    for name, data in (("stdout", out), ("stderr", err)):
        text = data.decode(errors="replace").strip()
        if text:
            if len(text) > _QUOTED_OUTPUT:
                text = "..." + text[-_QUOTED_OUTPUT:]
            message += f', {name}: "{escape(text)}"'
    return errors.FailedPrecondition(message)


def timed_out(kind: str, index: int, hook: Hook) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        f'{kind} hook #{index} "{escape(hook.path)}" ran past its timeout of {hook.timeout}s '
        "and was killed")


def run_spawned(kind: str, index: int, hook: Hook, state: bytes,
                spawn: Callable[[tuple[int, int, int]], int]) -> None:
    """One hook started by spawn(stdio) (a process of the caller's own, e.g. exec'd
    into the container), with state on stdin and its output captured, as run does."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            pid = spawn((stdin_r, out_w, err_w))
        finally:
            for fd in (stdin_r, out_w, err_w):
                os.close(fd)
    except BaseException:
        for fd in (stdin_w, out_r, err_r):
            os.close(fd)
        raise
    try:
        code, out, err = _communicate(pid, stdin_w, out_r, err_r, state, hook.timeout)
    finally:
        os.close(out_r)
        os.close(err_r)
    if code is None:
        raise timed_out(kind, index, hook)
    if code:
        raise failed(kind, index, hook, exit_status(code), out, err)


def _communicate(pid: int, stdin: int, out: int, err: int, state: bytes,
                 timeout: float | None) -> tuple[int | None, bytes, bytes]:
    """Feed stdin (and close it), collect output until both pipes close, reap pid:
    (exit code as subprocess gives it, stdout, stderr); None when the timeout killed it."""
    import select
    import signal
    import time
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    os.set_blocking(stdin, False)
    poller = select.poll()
    for fd in (out, err, pidfd):
        poller.register(fd, select.POLLIN)
    poller.register(stdin, select.POLLOUT)
    collected = {out: b"", err: b""}
    pending, open_pipes, exited, killed = state, {out, err}, False, False
    try:
        while open_pipes or not exited:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            events = poller.poll(None if left is None else int(left * 1000) + 1)
            if not events and deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            for fd, _ in events:
                if fd == stdin:
                    pending = _feed(stdin, pending)
                    if not pending:
                        poller.unregister(stdin)
                        os.close(stdin)
                        stdin = -1
                elif fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif chunk := os.read(fd, 65536):
                    collected[fd] += chunk
                else:
                    open_pipes.discard(fd)
                    poller.unregister(fd)
    finally:
        if stdin >= 0:
            os.close(stdin)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
    if killed:
        return None, b"", b""
    code = os.waitstatus_to_exitcode(status)
    return code, collected[out], collected[err]


def _feed(fd: int, data: bytes) -> bytes:
    try:
        return data[os.write(fd, data):]
    except BrokenPipeError:
        return b""                   # the hook does not read its state: its business
