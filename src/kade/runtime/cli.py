"""`kade runtime ...`: a runc-shaped command line over kade.runtime.Runtime.

    create --bundle DIR [--pid-file F] [--console-socket S] ID
    start ID                  state ID                 delete [--force] ID
    kill [--all] ID [SIG]     pause ID                 resume ID
    run --bundle DIR [--pid-file F] [--console-socket S] ID
                              create, start, wait, delete: returns the container's code
    exec [--cwd D] [--env K=V]... [--user UID[:GID]] [--console-socket S] [--detach]
         [--pid-file F] ID -- CMD...
    list [--format table|json]

Thin on purpose: parse, call the Runtime, print. Failures are raised as kade.errors
for the CLI's single error map; the return value is the exit code on success.
--console-socket follows runc: the container makes a pty in its own devpts and sends
its master over the unix socket (SCM_RIGHTS); the slave is its /dev/console and stdio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence

from kade import errors
from kade.runtime import Runtime, load_spec

Handler = Callable[[Runtime, argparse.Namespace], int]


def main(argv: list[str], state_root: str) -> int:
    args = _parser().parse_args(argv)
    return args.handler(Runtime(state_root), args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kade runtime", description="OCI runtime (runc-like)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=text)
        p.set_defaults(handler=handler)
        return p

    for name, handler, text in (("create", _create, "set up a container, ready to start"),
                                ("run", _run, "create, start, wait for and delete a container")):
        p = verb(name, handler, text)
        p.add_argument("--bundle", "-b", default=".", help="bundle directory (config.json)")
        p.add_argument("--pid-file", help="write the init's pid here")
        p.add_argument("--console-socket", help="unix socket to send the pty master to")
        p.add_argument("id")
    verb("start", _start, "let a created container run").add_argument("id")
    verb("state", _state, "print a container's state as JSON").add_argument("id")
    verb("pause", _pause, "freeze every process of a container").add_argument("id")
    verb("resume", _resume, "thaw a paused container").add_argument("id")
    p = verb("kill", _kill, "signal a container's init (or all its processes)")
    p.add_argument("--all", "-a", action="store_true")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="TERM")
    p = verb("delete", _delete, "remove a stopped container")
    p.add_argument("--force", "-f", action="store_true", help="kill it first if it runs")
    p.add_argument("id")
    p = verb("list", _list, "list containers")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    p = verb("exec", _exec, "run a command in a running container")
    p.add_argument("--cwd")
    p.add_argument("--env", "-e", action="append", default=[])
    p.add_argument("--user", "-u", help="UID[:GID]")
    p.add_argument("--console-socket")
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("id")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _create(rt: Runtime, args: argparse.Namespace) -> int:
    console = _console_from_socket(args.console_socket)
    try:
        rt.create(args.id, args.bundle, pid_file=args.pid_file, console_socket=console)
    finally:
        if console is not None:
            os.close(console)
    return 0


def _run(rt: Runtime, args: argparse.Namespace) -> int:
    console = _console_from_socket(args.console_socket)
    try:
        pid = rt.create(args.id, args.bundle, pid_file=args.pid_file, console_socket=console)
    finally:
        if console is not None:
            os.close(console)
    try:
        rt.start(args.id)
        return _wait_forwarding_signals(rt, args.id, pid)
    finally:
        rt.delete(args.id, force=True)


def _start(rt: Runtime, args: argparse.Namespace) -> int:
    rt.start(args.id)
    return 0


def _state(rt: Runtime, args: argparse.Namespace) -> int:
    print(json.dumps(rt.state(args.id), indent=2))
    return 0


def _pause(rt: Runtime, args: argparse.Namespace) -> int:
    rt.pause(args.id)
    return 0


def _resume(rt: Runtime, args: argparse.Namespace) -> int:
    rt.resume(args.id)
    return 0


def _kill(rt: Runtime, args: argparse.Namespace) -> int:
    rt.kill(args.id, parse_signal(args.signal), all=args.all)
    return 0


def _delete(rt: Runtime, args: argparse.Namespace) -> int:
    rt.delete(args.id, force=args.force)
    return 0


def _list(rt: Runtime, args: argparse.Namespace) -> int:
    states = rt.list()
    if args.format == "json":
        print(json.dumps(states, indent=2))
        return 0
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s.get("created", ""))
             for s in states]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths)) + "   " + row[4])
    return 0


def _exec(rt: Runtime, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise errors.InvalidArgument("exec needs a command: exec ID -- CMD...")
    process = exec_process(load_spec(rt.state(args.id)["bundle"]).get("process") or {},
                           command, cwd=args.cwd, env=args.env, user=args.user,
                           terminal=args.console_socket is not None)
    console = _console_from_socket(args.console_socket)
    try:
        pid = rt.exec(args.id, process, console_socket=console, detach=args.detach)
    finally:
        if console is not None:
            os.close(console)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(pid))
    if args.detach:
        return 0
    return _exit_code(os.waitpid(pid, 0)[1])


def exec_process(base: dict, command: list[str], *, cwd: str | None = None,
                 env: Sequence[str] = (), user: str | None = None,
                 terminal: bool = False) -> dict:
    """The process for `exec`: the container's own, with args and the overrides."""
    process = {**base, "args": list(command), "terminal": terminal,
               "env": list(base.get("env") or ()) + list(env)}
    if cwd:
        process["cwd"] = cwd
    if user:
        uid, _, gid = user.partition(":")
        try:
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        except ValueError:
            raise errors.InvalidArgument(f'user "{user}" is not UID[:GID]') from None
    return process


def parse_signal(text: str) -> int:
    """A signal as a number, or a name with or without SIG: 9, KILL, SIGKILL, kill."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise errors.InvalidArgument(f'signal "{text}" is not valid') from None


def _wait_forwarding_signals(rt: Runtime, id: str, pid: int) -> int:
    """Wait for the init; what this process is sent meanwhile goes to the container."""
    def forward(sig: int, _frame: object) -> None:
        with contextlib.suppress(errors.KadeError):   # it is exiting anyway
            rt.kill(id, sig)

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2)
    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        return _exit_code(os.waitpid(pid, 0)[1])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_code(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _console_from_socket(path: str | None) -> int | None:
    """runc's --console-socket: a connection to whoever listens on path; the container
    makes its pty in its own devpts and sends the master there (the caller closes the
    returned fd)."""
    if path is None:
        return None
    import _socket  # only here: most verbs never need it

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise errors.Unavailable(f'connect to the console socket "{path}": '
                                 f"{e.strerror or e}") from None
    return sock.detach()


def _standalone(argv: list[str]) -> int:
    """python -m kade.runtime.cli [--root DIR] VERB ...: without the kade CLI around it."""
    root = "/run/kade/runtime"
    if argv[:1] == ["--root"] and len(argv) > 1:
        root, argv = argv[1], argv[2:]
    try:
        return main(argv, root)
    except errors.KadeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_standalone(sys.argv[1:]))
