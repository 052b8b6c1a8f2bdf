"""start, stop, restart, kill, pause, unpause, wait, rm, rename, container prune."""

from __future__ import annotations

import os

from kade.cli.common import confirm, each
from kade.cli.errmap import ArgParser


def main(ctx, verb: str, args: list[str]) -> int:
    handler = {"start": _start, "stop": _stop, "restart": _stop, "kill": _kill,
               "pause": _simple, "unpause": _simple, "wait": _wait, "rm": _rm,
               "rename": _rename, "container prune": _prune}[verb]
    return handler(ctx, verb, args)


def _containers_arg(p: ArgParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _start(ctx, verb, args):
    p = ArgParser("start", "kade start [OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-a", "--attach", action="store_true",
        help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    from kade.engine import lifecycle
    if ns.attach or ns.interactive:
        from kade.cli import attach as attach_mod
        from kade.util.terminal import window_size
        cid = engine.containers.resolve(ns.containers[0])
        record, _ = engine.containers.get(cid)
        tty = bool(record["Config"].get("Tty"))
        with attach_mod.terminal(tty and ns.interactive and os.isatty(0)):
            started = lifecycle.start(engine, cid, {
                "stdin": ns.interactive, "tty": tty,
                "size": window_size() if tty else None})
            if started.report_fd < 0:
                return 0
            with attach_mod.forward_signals(started, tty, True):
                return started.wait_exit()
    return each(ns.containers, lambda ref: (
        lifecycle.start(engine, engine.containers.resolve(ref)), ref)[1])


def _stop(ctx, verb, args):
    """stop and restart: -s sends its signal instead of the container's stop signal
    (docker 23's flag; 20.10 has only -t), SIGKILL follows after the timeout."""
    p = ArgParser(verb, f"kade {verb} [OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time",
                   help="Seconds to wait for stop before killing "
                        + ("it" if verb == "stop" else "the container"))
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    from kade.engine import lifecycle
    from kade.engine.signals import parse_signal
    sig = None if ns.signal is None else parse_signal(ns.signal)
    fn = lifecycle.stop if verb == "stop" else lifecycle.restart
    return each(ns.containers, lambda ref: (
        fn(engine, engine.containers.resolve(ref), ns.time, sig), ref)[1])


def _kill(ctx, verb, args):
    p = ArgParser("kill", "kade kill [OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    from kade.engine import lifecycle
    from kade.engine.signals import parse_signal
    sig = parse_signal(ns.signal)

    def one(ref: str) -> str:
        lifecycle.kill(engine, engine.containers.resolve(ref), sig)
        return ref
    return each(ns.containers, one)


def _simple(ctx, verb, args):
    p = ArgParser(verb, f"kade {verb} CONTAINER [CONTAINER...]")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    from kade.engine import lifecycle
    fn = getattr(lifecycle, verb)
    return each(ns.containers, lambda ref: (fn(engine, engine.containers.resolve(ref)), ref)[1])


def _wait(ctx, verb, args):
    p = ArgParser("wait", "kade wait CONTAINER [CONTAINER...]")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    from kade.engine import lifecycle
    return each(ns.containers, lambda ref: lifecycle.wait(engine, engine.containers.resolve(ref)))


def _rm(ctx, verb, args):
    p = ArgParser("rm", "kade rm [OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-f", "--force", action="store_true",
        help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true",
        help="Remove anonymous volumes associated with the container")
    p.add_argument("-l", "--link", action="store_true", help="Remove the specified link")
    _containers_arg(p)
    ns = p.parse_args(args)
    engine = ctx.engine
    return each(ns.containers, lambda ref: (
        engine.containers.remove(ref, force=ns.force, volumes=ns.volumes), ref)[1])


def _rename(ctx, verb, args):
    p = ArgParser("rename", "kade rename CONTAINER NEW_NAME")
    p.add_argument("container")
    p.add_argument("new_name")
    ns = p.parse_args(args)
    ctx.engine.containers.rename(ns.container, ns.new_name)
    return 0


def _prune(ctx, verb, args):
    p = ArgParser("container prune", "kade container prune [OPTIONS]")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", metavar="filter", action="append", default=[],
        help="Provide filter values (e.g. 'until=<timestamp>')")
    ns = p.parse_args(args)
    from kade.engine import prune
    flt = prune.Filter(ns.filter)  # a bad filter fails before the question
    if not confirm("WARNING! This will remove all stopped containers.", ns.force):
        return 0
    removed, space = prune.containers(ctx.engine, flt)
    from kade.util.units import human_size
    if removed:
        print("Deleted Containers:\n" + "\n".join(removed) + "\n")
    print(f"Total reclaimed space: {human_size(space)}")
    return 0
