"""`kade run --runtime PATH`: the same bundle under another OCI runtime (runc, crun).

The runtime's own `run` verb does create, start and wait. It is exec'd from a
child that first takes a private mount namespace and mounts the container's
layers on `<bundle>/rootfs`: the runtime sees its rootfs, and the host never
gets a mount that a crash could leave behind. Signals go to the container's
init, whose pid the runtime writes to a pid file.
"""

from __future__ import annotations

import os
import subprocess
import time

from kade.errors import InvalidArgument, KadeError


def state_root(engine) -> str:
    return os.path.join(engine.root, "runtime-external")


def check(path: str, tty: bool) -> str:
    """The runtime's absolute path: an absolute path, or a name found on PATH."""
    if not os.path.isabs(path):
        import shutil
        path = shutil.which(path) or path
    if not os.path.isabs(path) or not os.access(path, os.X_OK):
        raise InvalidArgument(f'unknown or invalid runtime name: {path}')
    if tty:
        raise InvalidArgument(f'-t is not supported with --runtime "{path}" yet')
    return path


def run(engine, runtime: str, cid: str, bundle: str, rootfs_mounts: list,
        stdio: tuple[int, int, int]) -> tuple[int, int]:
    """Start the container; returns (pid of the runtime process, pid of the init)."""
    os.makedirs(state_root(engine), exist_ok=True)
    pid_file = os.path.join(bundle, "external.pid")
    if os.path.exists(pid_file):
        os.unlink(pid_file)
    argv = [runtime, "--root", state_root(engine), "run", "--bundle", bundle,
            "--pid-file", pid_file, cid]
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            _exec_in_private_mounts(argv, os.path.join(bundle, "rootfs"), rootfs_mounts, stdio)
        finally:
            os._exit(127)
    init, status = _wait_for_pid(pid_file, child)
    if init is None:
        code = os.waitstatus_to_exitcode(status) if status is not None else -1
        raise KadeError(f'runtime "{runtime}" failed to start the container (exit {code}); '
                        "its message is in the container's log")
    return child, init


def _exec_in_private_mounts(argv: list[str], rootfs: str, mounts: list, stdio) -> None:
    from kade.runtime import linux, rootfs as rootfs_mod
    sc = linux.Syscalls()
    sc.unshare(linux.CLONE_NEWNS)
    sc.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    for m in mounts:
        entry = rootfs_mod.entry_from_mount(m)
        if entry.is_bind:
            sc.mount(m.source, rootfs, None, linux.MS_BIND | linux.MS_REC)
        else:
            sc.mount(m.source or m.type, rootfs, m.type, entry.flags, entry.data or None)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    os.closerange(3, 1024)
    os.execv(argv[0], argv)


def _wait_for_pid(pid_file: str, child: int) -> tuple[int | None, int | None]:
    """(init pid, None) once the runtime wrote it; (None, wait status) if it died first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(pid_file) as f:
                text = f.read().strip()
            if text:
                return int(text), None
        except FileNotFoundError:
            pass
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return None, status
        time.sleep(0.001)
    os.kill(child, 9)
    return None, os.waitpid(child, 0)[1]


def freeze(engine, runtime: str, cid: str, pause: bool) -> None:
    proc = subprocess.run([runtime, "--root", state_root(engine),
                           "pause" if pause else "resume", cid], capture_output=True, text=True)
    if proc.returncode:
        raise KadeError(f"{runtime}: {proc.stderr.strip()}")


def delete(engine, runtime: str, cid: str) -> None:
    subprocess.run([runtime, "--root", state_root(engine), "delete", "--force", cid],
                   capture_output=True)


def exec_argv(engine, runtime: str, cid: str, proc: dict, tty: bool, detach: bool,
              pid_file: str | None = None) -> list[str]:
    argv = [runtime, "--root", state_root(engine), "exec"]
    if pid_file:
        argv += ["--pid-file", pid_file]
    if tty:
        argv.append("--tty")
    if detach:
        argv.append("--detach")
    user = proc.get("user") or {}
    argv += ["--user", f"{user.get('uid', 0)}:{user.get('gid', 0)}", "--cwd",
             proc.get("cwd") or "/"]
    for item in proc.get("env") or []:
        argv += ["--env", item]
    return argv + [cid] + list(proc["args"])
