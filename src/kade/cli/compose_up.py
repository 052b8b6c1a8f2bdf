"""`kade compose up` and `down`, their progress display and the attached log view."""

from __future__ import annotations

import sys
import threading
from functools import partial

from kade.cli.errmap import ArgParser, Failed
from kade.compose.apply import Progress


class PlainProgress(Progress):
    """Lines as docker compose prints them without a terminal: ` Container x  Started`."""

    def __init__(self, out=None):
        self.out = out or sys.stderr
        self.lock = threading.Lock()

    def event(self, kind: str, name: str, status: str, done: bool = False) -> None:
        with self.lock:
            self.out.write(f" {kind} {name}  {status}\n")
            self.out.flush()

    def warn(self, text: str) -> None:
        with self.lock:
            self.out.write(f"WARN[0000] {text}\n")
            self.out.flush()

    def close(self) -> None:
        pass


class LiveProgress(PlainProgress):
    """docker compose's live block: `[+] Running 2/3` over one line per object,
    redrawn in place; done objects get a ✔."""

    def __init__(self, out=None, verb: str = "Running"):
        super().__init__(out)
        self.verb = verb
        self.items: dict[str, tuple[str, bool]] = {}
        self.drawn = 0

    def event(self, kind: str, name: str, status: str, done: bool = False) -> None:
        with self.lock:
            self.items[f"{kind} {name}"] = (status, done)
            self._draw()

    def _draw(self) -> None:
        done = sum(1 for _, d in self.items.values() if d)
        lines = [f"[+] {self.verb} {done}/{len(self.items)}"]
        width = max(len(k) for k in self.items)
        for key, (status, ok) in self.items.items():
            lines.append(f" {'✔' if ok else '⠿'} {key.ljust(width)}  {status}")
        up = f"\x1b[{self.drawn}A" if self.drawn else ""
        self.out.write(up + "".join(f"\r\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self.drawn = len(lines)


def progress(verb: str = "Running"):
    return LiveProgress(verb=verb) if sys.stderr.isatty() else PlainProgress()


def applier(ctx, project, prog=None):
    from kade.compose.apply import Applier
    from kade.engine.composer import Composer
    return Applier(project, Composer(ctx.engine), prog or PlainProgress())


def _scale(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.isdigit():
            raise Failed(f'invalid --scale value "{item}": expected SERVICE=NUMBER')
        out[name] = int(n)
    return out


def up_parser() -> ArgParser:
    p = ArgParser("compose up", "kade compose up [OPTIONS] [SERVICE...]")
    a = p.add_argument
    a("-d", "--detach", action="store_true", help="Detached mode: Run containers in the background")
    a("--build", action="store_true", help="Build images before starting containers")
    a("--no-build", action="store_true", help="Don't build an image, even if it's policy")
    a("--force-recreate", action="store_true",
      help="Recreate containers even if their configuration and image haven't changed")
    a("--no-recreate", action="store_true",
      help="If containers already exist, don't recreate them")
    a("--no-deps", action="store_true", help="Don't start linked services")
    a("--scale", metavar="scale", action="append", default=[],
      help="Scale SERVICE to NUM instances. Overrides the scale setting in the Compose file")
    a("--wait", action="store_true", help="Wait for services to be running|healthy")
    a("--wait-timeout", metavar="int", type=int, default=0,
      help="Maximum duration to wait for the project to be running|healthy")
    a("--remove-orphans", action="store_true",
      help="Remove containers for services not defined in the Compose file")
    a("--abort-on-container-exit", action="store_true",
      help="Stops all containers if any container was stopped")
    a("--exit-code-from", metavar="string",
      help="Return the exit code of the selected service container")
    a("--attach", metavar="stringArray", action="append", default=[],
      help="Restrict attaching to the specified services")
    a("--no-start", action="store_true", help="Don't start the services after creating them")
    a("--pull", metavar="string", default="policy",
      choices=("always", "missing", "never", "policy"),
      help='Pull image before running ("always"|"missing"|"never")')
    a("-t", "--timeout", metavar="int", type=int, default=None,
      help="Use this timeout in seconds for container shutdown")
    a("--quiet-pull", action="store_true", help="Pull without printing progress information")
    a("services", nargs="*", metavar="SERVICE")
    return p


def up(ctx, ns, args: list[str]) -> int:
    from kade.cli.compose import load_project
    from kade.compose.apply import Graph, UpOptions
    c = up_parser().parse_args(args)
    if c.exit_code_from:
        c.abort_on_container_exit = True  # as compose: --exit-code-from implies it
    if c.detach and c.abort_on_container_exit:
        raise Failed("--abort-on-container-exit and --detach are incompatible")
    project = load_project(ns, c.services)
    for name in c.services:
        if name not in project.services:
            raise Failed(f"no such service: {name}")
    opts = UpOptions(build=c.build, no_build=c.no_build, force_recreate=c.force_recreate,
                     no_recreate=c.no_recreate, no_deps=c.no_deps, scale=_scale(c.scale),
                     remove_orphans=c.remove_orphans, no_start=c.no_start, pull=c.pull,
                     timeout=c.timeout)
    prog = progress()
    a = applier(ctx, project, prog)
    nodes = Graph(project, c.services or list(project.services), not c.no_deps).nodes
    try:
        prepare(a, nodes, opts, c)
        a.converge(nodes, a.images, opts)
    finally:
        prog.close()
    if c.detach or c.no_start:
        return wait_ready(a, nodes, c.wait_timeout) if c.wait else 0
    return attach(a, [n for n in nodes if not c.attach or n in c.attach], c)


def prepare(a, nodes: list[str], opts, c) -> None:
    """Check everything, then networks, volumes, images; orphans reported."""
    from kade.compose import convert
    from kade.compose.apply import orphan_warning
    a.check(nodes)
    for name in nodes:  # every option error before anything exists
        convert.create_options(a.project, name, 1, "", peers=lambda s: s)
    orphans = a.orphans()
    if orphans and opts.remove_orphans:
        for o in orphans:
            a._remove(o, opts.timeout)
    elif orphans:
        a.progress.warn(orphan_warning(a.project.name, [o["name"] for o in orphans]))
    a.ensure_networks(nodes)
    a.ensure_volumes(nodes)
    a.images = a.ensure_images(nodes, opts, build_progress())


def build_progress():
    from kade.cli.build import Plain
    return Plain(sys.stderr)


def wait_ready(a, nodes: list[str], timeout: int) -> int:
    import time
    deadline = time.monotonic() + timeout if timeout else None
    for name in nodes:
        for c in a.containers(name):
            while True:
                state = a.backend.inspect_container(c["id"])["State"]
                health = (state.get("Health") or {}).get("Status")
                if not state["Running"] and state["Status"] in ("exited", "dead"):
                    if state.get("ExitCode"):
                        raise Failed(f"container {c['name']} exited ({state['ExitCode']})")
                    break
                if health in (None, "healthy"):
                    break
                if health == "unhealthy":
                    raise Failed(f"container {c['name']} is unhealthy")
                if deadline and time.monotonic() > deadline:
                    raise Failed("timeout waiting for the project to be running|healthy")
                time.sleep(0.1)
    return 0


# --- attached: every container's log with a prefix ------------------------------------
def prefix_of(c: dict) -> str:
    from kade.compose.convert import NUMBER, SERVICE
    return f"{c['labels'].get(SERVICE, '')}-{c['labels'].get(NUMBER, '')}"


def attach(a, services: list[str], c) -> int:
    containers = [x for s in services for x in a.containers(s)]
    names = [prefix_of(x) for x in containers]
    sys.stdout.write(f"Attaching to {', '.join(names)}\n")
    sys.stdout.flush()
    stream = LogStream(a.backend, containers, follow=True)
    try:
        first = stream.run(stop_on_first=c.abort_on_container_exit)
    except KeyboardInterrupt:
        sys.stdout.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        sys.stdout.flush()
        _stop_all(a, containers, c.timeout)
        return 130
    if c.abort_on_container_exit:
        sys.stdout.write("Aborting on container exit...\n")
        _stop_all(a, containers, c.timeout)
        if c.exit_code_from:
            mine = [x for x in containers if x["labels"].get(
                "com.docker.compose.service") == c.exit_code_from]
            return a.backend.wait_container(mine[0]["id"]) if mine else 1
        return a.backend.wait_container(first["id"]) if first else 0
    return 0


def _stop_all(a, containers: list[dict], timeout) -> None:
    from kade.compose.apply import _parallel
    _parallel([partial(a.backend.stop_container, x["id"], timeout) for x in containers])


class LogStream:
    """Lines of many containers, each prefixed `web-1  | `, one thread per container."""

    def __init__(self, backend, containers: list[dict], *, follow: bool, tail: int = -1,
                 since: float = 0.0, timestamps: bool = False, prefix: bool = True,
                 color: bool = False):
        self.backend = backend
        self.containers = containers
        self.follow, self.tail, self.since = follow, tail, since
        self.timestamps, self.prefix, self.color = timestamps, prefix, color
        self.width = max((len(prefix_of(c)) for c in containers), default=0)
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.first_ended: dict | None = None

    def _head(self, c: dict, i: int) -> str:
        if not self.prefix:
            return ""
        text = prefix_of(c).ljust(self.width) + "  | "
        if self.color:
            return f"\x1b[{31 + i % 6}m{text}\x1b[0m"
        return text

    def _one(self, c: dict, i: int) -> None:
        head = self._head(c, i)
        for e in self.backend.container_logs(c["id"], since=self.since, tail=self.tail,
                                             follow=self.follow):
            line = e["log"]
            if self.timestamps:
                line = f"{e['time']} {line}"
            with self.lock:
                sys.stdout.write(head + line if line.endswith("\n") else head + line + "\n")
                sys.stdout.flush()
        if self.follow:
            code = self.backend.wait_container(c["id"])
            with self.lock:
                sys.stdout.write(f"{prefix_of(c)} exited with code {code}\n")
                sys.stdout.flush()
                if self.first_ended is None:
                    self.first_ended = c
        self.ended.set()

    def run(self, stop_on_first: bool = False) -> dict | None:
        threads = [threading.Thread(target=self._one, args=(c, i), daemon=True)
                   for i, c in enumerate(self.containers)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a join with a timeout lets Ctrl-C through
                if stop_on_first and self.first_ended is not None:
                    return self.first_ended
        return self.first_ended


# --- down -----------------------------------------------------------------------------
def down(ctx, ns, args: list[str]) -> int:
    from kade.cli.compose import load_project
    p = ArgParser("compose down", "kade compose down [OPTIONS] [SERVICES]")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="Remove named volumes declared in the \"volumes\" section of the "
                        "Compose file and anonymous volumes attached to containers")
    p.add_argument("--rmi", metavar="string", choices=("local", "all"),
                   help='Remove images used by services. "local" remove only images that '
                        "don't have a custom tag (\"local\"|\"all\")")
    p.add_argument("--remove-orphans", action="store_true",
                   help="Remove containers for services not defined in the Compose file")
    p.add_argument("-t", "--timeout", metavar="int", type=int, default=None,
                   help="Specify a shutdown timeout in seconds")
    c = p.parse_args(args)
    project = load_project(ns)
    prog = progress()
    try:
        applier(ctx, project, prog).down(c.timeout, c.volumes, c.remove_orphans, c.rmi)
    finally:
        prog.close()
    return 0
