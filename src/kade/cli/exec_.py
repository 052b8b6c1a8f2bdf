"""`kade exec`: a new process in a running container's namespaces and cgroup."""

from __future__ import annotations

import os

from kade.cli.errmap import ArgParser


def main(ctx, verb: str, args: list[str]) -> int:
    p = ArgParser("exec", "kade exec [OPTIONS] CONTAINER COMMAND [ARG...]")
    p.add_argument("-d", "--detach", action="store_true",
        help="Detached mode: run command in the background")
    p.add_argument("-i", "--interactive", action="store_true",
        help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[],
        help="Read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--privileged", action="store_true",
        help="Give extended privileges to the command")
    p.add_argument("container")
    p.add_argument("command", nargs="...")
    ns = p.parse_args(args)
    if not ns.command:
        from kade.cli.errmap import UsageError
        raise UsageError('"kade exec" requires at least 2 arguments.')
    from kade.cli import attach as attach_mod
    from kade.cli.run import _env_files
    from kade.engine import execs
    engine = ctx.engine
    cid = engine.containers.resolve(ns.container)
    req = execs.ExecRequest(argv=ns.command, env=_env_files(ns.env_file) + ns.env,
                            workdir=ns.workdir, user=ns.user, privileged=ns.privileged,
                            tty=ns.tty, interactive=ns.interactive, detach=ns.detach)
    with attach_mod.terminal(ns.tty and ns.interactive and os.isatty(0)):
        return execs.run(engine, cid, req)
