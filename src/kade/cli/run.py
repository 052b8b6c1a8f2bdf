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
        a("-d", "--detach", action="store_true",
            help="Run container in background and print container ID")
        a("--sig-proxy", action="store_true", default=True,
          help="Proxy received signals to the process")
    a("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    a("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    a("--rm", action="store_true", help="Automatically remove the container when it exits")
    a("--name", help="Assign a name to the container")
    a("-e", "--env", action="append", default=[], help="Set environment variables")
    a("--env-file", action="append", default=[], help="Read in a file of environment variables")
    a("-w", "--workdir", help="Working directory inside the container")
    a("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    a("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    a("-h", "--hostname", help="Container host name")
    a("--init", action="store_true",
        help="Run an init inside the container that forwards signals and reaps processes")
    a("--read-only", action="store_true",
        help="Mount the container's root filesystem as read only")
    a("--cap-add", action="append", default=[], help="Add Linux capabilities")
    a("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    a("--privileged", action="store_true", help="Give extended privileges to this container")
    a("--security-opt", action="append", default=[], help="Security Options")
    a("--restart", default="no", help="Restart policy to apply when a container exits")
    a("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    a("--mount", metavar="mount", action="append", default=[],
      help="Attach a filesystem mount to the container")
    a("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    a("--network", "--net", metavar="network", help="Connect a container to a network")
    a("--ulimit", metavar="ulimit", action="append", default=[], help="Ulimit options")
    a("--stop-signal", help="Signal to stop a container")
    a("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    a("-l", "--label", action="append", default=[], help="Set meta data on a container")
    a("--pull", default="missing", choices=["always", "missing", "never"],
      help=f'Pull image before {"running" if verb == "run" else "creating"} '
      '("always"|"missing"|"never")')
    a("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping (host:ip)")
    a("--dns", action="append", default=[], metavar="list", help="Set custom DNS servers")
    a("--dns-search", action="append", default=[], metavar="list",
      help="Set custom DNS search domains")
    a("--dns-option", action="append", default=[], metavar="list", help="Set DNS options")
    a("--network-alias", "--net-alias", action="append", default=[], metavar="list",
      help="Add network-scoped alias for the container")
    a("--ip", metavar="string", help="IPv4 address (e.g., 172.30.100.104)")
    a("--ip6", metavar="string", help="IPv6 address (e.g., 2001:db8::33)")
    a("--mac-address", metavar="string", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)")
    a("--link", action="append", default=[], metavar="list",
      help="Add link to another container")
    a("-p", "--publish", action="append", default=[], metavar="list",
      help="Publish a container's port(s) to the host")
    a("-P", "--publish-all", action="store_true",
      help="Publish all exposed ports to random ports")
    a("--expose", action="append", default=[], metavar="list",
      help="Expose a port or a range of ports")
    a("-m", "--memory", metavar="bytes", help="Memory limit")
    a("--memory-swap", metavar="bytes",
      help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    a("--cpus", metavar="decimal", help="Number of CPUs")
    a("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)")
    a("--pids-limit", type=int, default=0, help="Tune container pids limit (set -1 for unlimited)")
    a("--device", action="append", default=[], help="Add a host device to the container")
    a("--device-cgroup-rule", action="append", default=[],
      help="Add a rule to the cgroup allowed devices list")
    a("--runtime", help="Runtime to use for this container")
    a("--health-cmd", help="Command to run to check health")
    a("--health-interval", metavar="duration",
      help="Time between running the check (ms|s|m|h) (default 0s)")
    a("--health-timeout", metavar="duration",
      help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    a("--health-retries", type=int, help="Consecutive failures needed to report unhealthy")
    a("--health-start-period", metavar="duration",
      help="Start period for the container to initialize before starting health-retries "
           "countdown (ms|s|m|h) (default 0s)")
    a("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    a("-q", "--quiet", action="store_true", help="Suppress the pull output")
    a("--platform", help="Set platform if server is multi-platform capable")
    a("image")
    a("command", nargs="...")
    return p


def _help_exit(args: list[str]) -> bool:
    for arg in args:
        if arg == "--help":  # -h is --hostname, as in docker
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
            raise InvalidArgument(f"open {path}: {(e.strerror or str(e)).lower()}") from None
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
    h: dict = {"Test": ["CMD-SHELL", ns.health_cmd]}
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
        security_opt=ns.security_opt, restart=ns.restart, mounts=mounts,
        network=ns.network or "default",
        ulimits=ns.ulimit, stop_signal=ns.stop_signal, stop_timeout=ns.stop_timeout,
        add_hosts=ns.add_host, dns=ns.dns, dns_search=ns.dns_search,
        dns_options=ns.dns_option, network_aliases=ns.network_alias, ip=ns.ip, ip6=ns.ip6,
        mac_address=ns.mac_address, links=ns.link, publish=ns.publish,
        publish_all=ns.publish_all, expose=ns.expose, memory=memory, memory_swap=swap,
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
    with attach_mod.forward_signals(started, opts.tty, ns.sig_proxy):
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
