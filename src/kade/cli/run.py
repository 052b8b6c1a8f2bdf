"""`kade run` and `kade create`: docker's flags, parsed into one CreateOptions."""

from __future__ import annotations

import os

from kade.cli.errmap import ArgParser

USAGE_RUN = "kade run [OPTIONS] IMAGE [COMMAND] [ARG...]"
USAGE_CREATE = "kade create [OPTIONS] IMAGE [COMMAND] [ARG...]"


def parser(verb: str) -> ArgParser:
    p = ArgParser(verb, USAGE_RUN if verb == "run" else USAGE_CREATE)
    a = p.add_argument
    if verb == "run":
        a("-d", "--detach", action="store_true")
        a("--sig-proxy", default="true")
    a("-i", "--interactive", action="store_true")
    a("-t", "--tty", action="store_true")
    a("--rm", action="store_true")
    a("--name")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-w", "--workdir")
    a("-u", "--user")
    a("--entrypoint")
    a("-h", "--hostname")
    a("--init", action="store_true")
    a("--read-only", action="store_true")
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--privileged", action="store_true")
    a("--security-opt", action="append", default=[])
    a("--restart", default="no")
    a("-v", "--volume", action="append", default=[])
    a("--mount", action="append", default=[])
    a("--tmpfs", action="append", default=[])
    a("--network", "--net", default="default")
    a("--ulimit", action="append", default=[])
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("-l", "--label", action="append", default=[])
    a("--pull", default="missing", choices=["always", "missing", "never"])
    a("--add-host", action="append", default=[])
    a("--dns", action="append", default=[])
    a("-m", "--memory")
    a("--memory-swap")
    a("--cpus")
    a("-c", "--cpu-shares", type=int, default=0)
    a("--pids-limit", type=int, default=0)
    a("--device", action="append", default=[])
    a("--device-cgroup-rule", action="append", default=[])
    a("--runtime")
    a("--health-cmd")
    a("--health-interval")
    a("--health-timeout")
    a("--health-retries", type=int)
    a("--health-start-period")
    a("--no-healthcheck", action="store_true")
    a("-q", "--quiet", action="store_true")
    a("--platform")
    a("image")
    a("command", nargs="...")
    return p


def _help_exit(args: list[str]) -> bool:
    for arg in args:
        if arg in ("-h", "--help"):
            return True
        if not arg.startswith("-"):
            return False
    return False


def _env_files(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            from kade.errors import InvalidArgument
            raise InvalidArgument(f"open {path}: {e.strerror.lower()}") from None
        out += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return out


def _split(text: str) -> list[str]:
    import shlex  # only with --entrypoint: it imports re
    return shlex.split(text)


def _client_env(items: list[str]) -> list[str]:
    """`-e NAME` passes this client's value (docker's CLI does it client-side too)."""
    out = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out


def _labels(items: list[str]) -> dict:
    return dict((i.partition("=")[0], i.partition("=")[2]) for i in items)


def _healthcheck(ns) -> dict | None:
    if ns.no_healthcheck:
        return {"Test": ["NONE"]}
    if not ns.health_cmd:
        return None
    from kade.util import units
    h = {"Test": ["CMD-SHELL", ns.health_cmd]}
    for key, value in (("Interval", ns.health_interval), ("Timeout", ns.health_timeout),
                       ("StartPeriod", ns.health_start_period)):
        if value:
            h[key] = int(units.parse_duration(value) * 1e9)
    if ns.health_retries:
        h["Retries"] = ns.health_retries
    return h


def _mounts(ns) -> list[dict]:
    if not (ns.volume or ns.mount or ns.tmpfs):
        return []
    from kade.volumes import parse_mount, parse_tmpfs, parse_volume
    return [parse_volume(v) for v in ns.volume] + [parse_mount(m) for m in ns.mount] + \
        [parse_tmpfs(t) for t in ns.tmpfs]


def _ram(text: str | None) -> int:
    if not text:
        return 0
    from kade.util import units
    return units.ram_in_bytes(text)


def _cpus(text: str | None) -> int:
    if not text:
        return 0
    from kade.util import units
    return units.parse_cpus(text)


def options_from(ns):
    """Flags -> CreateOptions; syntax checks only, every policy is the engine's.
    Parsers are imported only for flags that are given: this is every `kade run`."""
    from kade.engine.options import CreateOptions
    mounts = _mounts(ns)
    memory = _ram(ns.memory)
    swap = -1 if ns.memory_swap == "-1" else _ram(ns.memory_swap)
    return CreateOptions(
        image=ns.image, command=list(ns.command), name=ns.name,
        entrypoint=None if ns.entrypoint is None else (
            _split(ns.entrypoint) if ns.entrypoint else [""]),
        env=_client_env(_env_files(ns.env_file) + ns.env), workdir=ns.workdir, user=ns.user,
        hostname=ns.hostname, labels=_labels(ns.label), tty=ns.tty,
        interactive=ns.interactive, auto_remove=ns.rm, init=ns.init, read_only=ns.read_only,
        privileged=ns.privileged, cap_add=ns.cap_add, cap_drop=ns.cap_drop,
        security_opt=ns.security_opt, restart=ns.restart, mounts=mounts, network=ns.network,
        ulimits=ns.ulimit, stop_signal=ns.stop_signal, stop_timeout=ns.stop_timeout,
        add_hosts=ns.add_host, dns=ns.dns, memory=memory, memory_swap=swap,
        nano_cpus=_cpus(ns.cpus), cpu_shares=ns.cpu_shares,
        pids_limit=ns.pids_limit, healthcheck=_healthcheck(ns), pull=ns.pull,
        runtime=ns.runtime, devices=ns.device, device_cgroup_rules=ns.device_cgroup_rule)


def main(ctx, verb: str, args: list[str]) -> int:
    p = parser(verb)
    if _help_exit(args):
        p.print_help()
        return 0
    ns = p.parse_args(args)
    opts = options_from(ns)
    engine = ctx.engine
    if verb == "create":
        from kade.engine import run as engine_run
        engine_run.ensure_image(engine, opts.image, opts.pull, quiet=ns.quiet,
                                platform=ns.platform)
        print(engine.containers.create(opts))
        return 0
    return _run(engine, opts, ns)


def _run(engine, opts, ns) -> int:
    from kade.cli import attach as attach_mod
    from kade.engine import lifecycle
    attach = None if ns.detach else {"stdin": opts.interactive, "tty": opts.tty}
    if attach and opts.tty:
        from kade.util.terminal import window_size
        attach["size"] = window_size()
    raw = bool(attach) and opts.tty and opts.interactive and os.isatty(0)
    if opts.pull != "always":  # the warm supervisor creates and starts in one call
        with attach_mod.terminal(raw):
            started = lifecycle.run(engine, opts, attach)
            if started is not None:
                return _finish(started, opts, ns)
    from kade.engine import run as engine_run
    engine_run.ensure_image(engine, opts.image, opts.pull, quiet=ns.quiet, platform=ns.platform)
    cid = engine.containers.create(opts)
    with attach_mod.terminal(raw):
        return _finish(_start_or_cleanup(engine, cid, opts, attach), opts, ns)


def _finish(started, opts, ns) -> int:
    if ns.detach:
        print(started.cid)
        return 0
    from kade.cli import attach as attach_mod
    with attach_mod.forward_signals(started, opts.tty, ns.sig_proxy != "false"):
        return started.wait_exit()


def _start_or_cleanup(engine, cid, opts, attach):
    from kade.engine import lifecycle
    try:
        return lifecycle.start(engine, cid, attach)
    except BaseException:
        if opts.auto_remove:
            from kade.errors import NotFound
            try:
                engine.containers.remove(cid, force=True, volumes=True)
            except NotFound:
                pass  # the monitor removed it already
        raise
