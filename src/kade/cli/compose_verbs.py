"""`kade compose` verbs over a project's containers: ps, logs, exec, run, start, stop,
restart, kill, pause, unpause, rm, create, build, pull, push, top, port, images, cp,
events, wait, ls, version."""

from __future__ import annotations

import json
import sys
import time

from kade.cli.compose_up import LogStream, PlainProgress, applier, prefix_of, progress
from kade.cli.errmap import ArgParser, Failed


def _load(ctx, ns, services=None):
    from kade.cli.compose import load_project
    project = load_project(ns, services or None)
    for name in services or ():
        if name not in project.services:
            raise Failed(f"no such service: {name}")
    return applier(ctx, project, PlainProgress())


def _selected(a, services: list[str], all: bool = True) -> list[dict]:
    found = a.containers(oneoff=False, all=all)
    if services:
        found = [c for c in found if c["labels"].get("com.docker.compose.service") in services]
    return found


def _parser(verb: str, usage: str, services: bool = True) -> ArgParser:
    p = ArgParser(f"compose {verb}", f"kade compose {verb} {usage}")
    if services:
        p.add_argument("services", nargs="*", metavar="SERVICE")
    return p


# --- ps -------------------------------------------------------------------------------
def ps(ctx, ns, args: list[str]) -> int:
    p = _parser("ps", "[OPTIONS] [SERVICE...]")
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all stopped containers (including those created by the run command)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")
    p.add_argument("--services", dest="list_services", action="store_true",
                   help="Display services")
    p.add_argument("--status", metavar="stringArray", action="append", default=[],
                   help="Filter services by status. Values: [paused | restarting | removing "
                        "| running | dead | created | exited]")
    p.add_argument("--format", metavar="string", default="table",
                   help="Format output using a custom template")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    found = a.containers(oneoff=None if c.all else False, all=c.all or bool(c.status))
    if c.services:
        found = [x for x in found if x["labels"].get("com.docker.compose.service")
                 in c.services]
    if c.status:
        found = [x for x in found if x["status"] in c.status]
    if c.quiet:
        sys.stdout.write("".join(x["id"] + "\n" for x in found))
    elif c.list_services:
        names = dict.fromkeys(x["labels"].get("com.docker.compose.service") for x in found)
        sys.stdout.write("".join(f"{n}\n" for n in names))
    else:
        rows = [_ps_row(a, x) for x in found]
        sys.stdout.write(_ps_json(rows) if c.format == "json" else _ps_table(rows))
    return 0


def _ps_row(a, c: dict) -> dict:
    from kade.cli.ps import status_text
    from kade.util.units import since
    state = a.backend.inspect_container(c["id"])["State"]
    return {"ID": c["id"], "Name": c["name"], "Image": c["image"],
            "Command": c["command"], "Project": a.project.name,
            "Service": c["labels"].get("com.docker.compose.service", ""),
            "Created": c["created"], "RunningFor": since(c["created"]),
            "State": c["status"], "Health": c["health"], "ExitCode": c["exit_code"],
            "Status": status_text(state, time.time()), "Ports": c["ports"],
            "Labels": c["labels"]}


def _ps_json(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _ps_table(rows: list[dict]) -> str:
    head = ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    body = [[r["Name"], r["Image"], f'"{_trunc(r["Command"], 20)}"', r["Service"],
             r["RunningFor"], r["Status"], r["Ports"]] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    return "".join("   ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n"
                   for row in [head] + body)


def _trunc(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


# --- logs -----------------------------------------------------------------------------
def logs(ctx, ns, args: list[str]) -> int:
    p = _parser("logs", "[OPTIONS] [SERVICE...]")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", metavar="string", default="all",
                   help="Number of lines to show from the end of the logs for each container")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--since", metavar="string",
                   help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative")
    p.add_argument("--no-color", action="store_true", help="Produce monochrome output")
    p.add_argument("--no-log-prefix", action="store_true",
                   help="Don't print prefix in logs")
    c = p.parse_args(args)
    from kade.util.units import parse_timestamp
    a = _load(ctx, ns, c.services)
    try:
        tail = -1 if c.tail == "all" else int(c.tail)
    except ValueError:
        raise Failed(f'invalid value for "tail": "{c.tail}"') from None
    since = parse_timestamp(c.since, time.time()) if c.since else 0.0
    found = _selected(a, c.services)
    LogStream(a.backend, found, follow=c.follow, tail=tail, since=since,
              timestamps=c.timestamps, prefix=not c.no_log_prefix,
              color=not c.no_color and sys.stdout.isatty()).run()
    return 0


# --- one container of a service ---------------------------------------------------------
def _one(a, service: str, index: int) -> dict:
    for c in _selected(a, [service]):
        if int(c["labels"].get("com.docker.compose.container-number", "0")) == index:
            return c
    raise Failed(f"service \"{service}\" is not running")


def exec_(ctx, ns, args: list[str]) -> int:
    p = ArgParser("compose exec", "kade compose exec [OPTIONS] SERVICE COMMAND [ARGS...]")
    p.add_argument("-d", "--detach", action="store_true",
                   help="Detached mode: Run command in the background")
    p.add_argument("-e", "--env", metavar="stringArray", action="append", default=[],
                   help="Set environment variables")
    p.add_argument("--index", metavar="int", type=int, default=1,
                   help="index of the container if service has multiple replicas")
    p.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true",
                   help="Disable pseudo-TTY allocation")
    p.add_argument("--privileged", action="store_true",
                   help="Give extended privileges to the process")
    p.add_argument("-u", "--user", metavar="string", help="Run the command as this user")
    p.add_argument("-w", "--workdir", metavar="string",
                   help="Path to workdir directory for this command")
    p.add_argument("service")
    p.add_argument("command", nargs="...")
    c = p.parse_args(args)
    if not c.command:
        raise Failed('"compose exec" requires at least 2 arguments')
    a = _load(ctx, ns)
    if c.service not in a.project.services:
        raise Failed(f"no such service: {c.service}")
    target = _one(a, c.service, c.index)
    if target["status"] != "running":
        raise Failed(f"service \"{c.service}\" is not running")
    tty = not c.no_tty and sys.stdin.isatty()
    return a.backend.exec(target["id"], c.command, user=c.user, workdir=c.workdir,
                          env=c.env, tty=tty, interactive=not c.detach,
                          privileged=c.privileged, detach=c.detach)


def run(ctx, ns, args: list[str]) -> int:
    p = ArgParser("compose run", "kade compose run [OPTIONS] SERVICE [COMMAND] [ARGS...]")
    a_ = p.add_argument
    a_("-d", "--detach", action="store_true",
       help="Run container in background and print container ID")
    a_("--rm", action="store_true", help="Automatically remove the container when it exits")
    a_("-e", "--env", metavar="stringArray", action="append", default=[],
       help="Set environment variables")
    a_("-l", "--label", metavar="stringArray", action="append", default=[],
       help="Add or override a label")
    a_("--name", metavar="string", help="Assign a name to the container")
    a_("-T", "--no-TTY", dest="no_tty", action="store_true", help="Disable pseudo-TTY allocation")
    a_("--service-ports", action="store_true",
       help="Run command with all service's ports enabled and mapped to the host")
    a_("--no-deps", action="store_true", help="Don't start linked services")
    a_("--entrypoint", metavar="string", help="Override the entrypoint of the image")
    a_("-u", "--user", metavar="string", help="Run as specified username or uid")
    a_("-w", "--workdir", metavar="string", help="Working directory inside the container")
    a_("-v", "--volume", metavar="stringArray", action="append", default=[],
       help="Bind mount a volume")
    a_("-i", "--interactive", action="store_true", default=True,
       help="Keep STDIN open even if not attached")
    a_("service")
    a_("command", nargs="...")
    c = p.parse_args(args)
    from kade.cli.compose_run import run_oneoff
    a = _load(ctx, ns, [c.service])
    return run_oneoff(ctx, a, c)


# --- verbs over every selected container --------------------------------------------------
def _each(ctx, ns, args, verb: str, act, *, extra=None, states=None) -> int:
    p = _parser(verb, "[OPTIONS] [SERVICE...]")
    if extra:
        extra(p)
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    prog = progress(verb.capitalize())
    for x in _selected(a, c.services):
        if states and x["status"] not in states:
            continue
        act(a, x, c, prog)
    prog.close()
    return 0


def _timeout(p):
    p.add_argument("-t", "--timeout", metavar="int", type=int, default=None,
                   help="Specify a shutdown timeout in seconds")


def _evented(before: str, after: str, fn):
    def act(a, x, c, prog):
        prog.event("Container", x["name"], before)
        fn(a, x, c)
        prog.event("Container", x["name"], after, True)
    return act


def start(ctx, ns, args):
    def go(a, x, c):
        a.backend.start_container(x["id"])
    return _each(ctx, ns, args, "start", _evented("Starting", "Started", go),
                 states=("created", "exited"))


def stop(ctx, ns, args):
    return _each(ctx, ns, args, "stop", _evented(
        "Stopping", "Stopped", lambda a, x, c: a.backend.stop_container(x["id"], c.timeout)),
        extra=_timeout, states=("running", "paused", "restarting"))


def restart(ctx, ns, args):
    return _each(ctx, ns, args, "restart", _evented(
        "Restarting", "Started",
        lambda a, x, c: a.backend.restart_container(x["id"], c.timeout)), extra=_timeout)


def kill(ctx, ns, args):
    def extra(p):
        p.add_argument("-s", "--signal", metavar="string", default="SIGKILL",
                       help='SIGNAL to send to the container')
        p.add_argument("--remove-orphans", action="store_true",
                       help="Remove containers for services not defined in the Compose file")
    return _each(ctx, ns, args, "kill", _evented(
        "Killing", "Killed", lambda a, x, c: a.backend.kill_container(x["id"], c.signal)),
        extra=extra, states=("running", "paused"))


def pause(ctx, ns, args):
    return _each(ctx, ns, args, "pause", _evented(
        "Pausing", "Paused", lambda a, x, c: a.backend.pause_container(x["id"])),
        states=("running",))


def unpause(ctx, ns, args):
    return _each(ctx, ns, args, "unpause", _evented(
        "Unpausing", "Unpaused", lambda a, x, c: a.backend.unpause_container(x["id"])),
        states=("paused",))


def rm(ctx, ns, args):
    p = _parser("rm", "[OPTIONS] [SERVICE...]")
    p.add_argument("-f", "--force", action="store_true", help="Don't ask to confirm removal")
    p.add_argument("-s", "--stop", action="store_true",
                   help="Stop the containers, if required, before removing")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="Remove any anonymous volumes attached to containers")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    found = _selected(a, c.services)
    if c.stop:
        for x in found:
            if x["status"] in ("running", "paused", "restarting"):
                a.backend.stop_container(x["id"])
        found = _selected(a, c.services)
    gone = [x for x in found if x["status"] in ("created", "exited", "dead")]
    if not gone:
        sys.stderr.write("No stopped containers\n")
        return 0
    if not c.force:
        sys.stdout.write(f"Going to remove {', '.join(x['name'] for x in gone)}\n"
                         "Are you sure? [yN] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    prog = progress("Removing")
    for x in gone:
        prog.event("Container", x["name"], "Removing")
        a.backend.remove_container(x["id"], volumes=c.volumes)
        prog.event("Container", x["name"], "Removed", True)
    prog.close()
    return 0


def create(ctx, ns, args):
    from kade.cli.compose_up import up
    extra = ["--no-start", "-d"]
    return up(ctx, ns, extra + args)


def wait(ctx, ns, args):
    p = _parser("wait", "SERVICE [SERVICE...] [options]")
    p.add_argument("--down-project", action="store_true",
                   help="Drops project when the first container stops")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    code = 0
    for x in _selected(a, c.services):
        code = a.backend.wait_container(x["id"])
        sys.stdout.write(f"{code}\n")
    if c.down_project:
        a.down(None, False, False, None)
    return code


# --- images ----------------------------------------------------------------------------
def build(ctx, ns, args):
    from kade.cli.compose_up import build_progress
    p = _parser("build", "[OPTIONS] [SERVICE...]")
    p.add_argument("--no-cache", action="store_true",
                   help="Do not use cache when building the image")
    p.add_argument("-q", "--quiet", action="store_true", help="Don't print anything to STDOUT")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    for name in c.services or list(a.project.services):
        if a.project.services[name].get("build"):
            if c.no_cache:
                a.project.services[name]["build"]["no_cache"] = True
            a.build(name, build_progress())
    return 0


def pull(ctx, ns, args):
    p = _parser("pull", "[OPTIONS] [SERVICE...]")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Pull without printing progress information")
    p.add_argument("--ignore-buildable", action="store_true",
                   help="Ignore images that can be built")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    prog = progress("Pulling")
    for name in c.services or list(a.project.services):
        svc = a.project.services[name]
        if not svc.get("image") or (svc.get("build") and c.ignore_buildable):
            continue
        prog.event("", name, "Pulling")
        a.backend.pull(svc["image"])
        prog.event("", name, "Pulled", True)
    prog.close()
    return 0


def push(ctx, ns, args):
    c = _parser("push", "[OPTIONS] [SERVICE...]").parse_args(args)
    a = _load(ctx, ns, c.services)
    for name in c.services or list(a.project.services):
        svc = a.project.services[name]
        if svc.get("image") and svc.get("build"):
            a.backend.push(svc["image"])
    return 0


def images(ctx, ns, args):
    p = _parser("images", "[OPTIONS] [SERVICE...]")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    rows = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"]]
    for x in _selected(a, c.services):
        repo, _, tag = x["image"].rpartition(":") if ":" in x["image"] else (x["image"], "",
                                                                            "latest")
        image_id = x["labels"].get("com.docker.compose.image", "")
        if c.quiet:
            sys.stdout.write(image_id + "\n")
            continue
        rows.append([x["name"], repo, tag, image_id.removeprefix("sha256:")[:12]])
    if not c.quiet:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        sys.stdout.write("".join("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                                 + "\n" for r in rows))
    return 0


# --- delegated to the docker verbs on one container ------------------------------------
def _delegate(verb_module: str, verb: str, build_args):
    def handler(ctx, ns, args):
        import importlib
        service, rest, index = build_args(args)
        a = _load(ctx, ns)
        if service not in a.project.services:
            raise Failed(f"no such service: {service}")
        target = _one(a, service, index)
        mod = importlib.import_module(verb_module)
        return mod.main(ctx, verb, rest(target["id"]))
    return handler


def _service_first(args):
    flags = [x for x in args if x.startswith("-")]
    plain = [x for x in args if not x.startswith("-")]
    if not plain:
        raise Failed("requires at least 1 argument: SERVICE")
    return plain[0], (lambda cid: flags + [cid] + plain[1:]), 1


def _port_args(args):
    index, proto, plain = 1, "tcp", []
    i = 0
    while i < len(args):
        if args[i] == "--index":
            index, i = int(args[i + 1]), i + 2
            continue
        if args[i] == "--protocol":
            proto, i = args[i + 1], i + 2
            continue
        plain.append(args[i])
        i += 1
    if len(plain) != 2:
        raise Failed('"compose port" requires exactly 2 arguments: SERVICE PRIVATE_PORT')
    return plain[0], (lambda cid: [cid, f"{plain[1]}/{proto}"]), index


def _cp_args(args):
    for i, x in enumerate(args):
        if ":" in x and not x.startswith("-"):
            service, _, path = x.partition(":")
            return service, (lambda cid, i=i, path=path:
                             args[:i] + [f"{cid}:{path}"] + args[i + 1:]), 1
    raise Failed('"compose cp" requires a SERVICE:PATH argument')


top = _delegate("kade.cli.top", "top", _service_first)
port = _delegate("kade.cli.top", "port", _port_args)
cp = _delegate("kade.cli.files", "cp", _cp_args)


# --- the project list, events, version ----------------------------------------------------
def ls(ctx, ns, args):
    p = ArgParser("compose ls", "kade compose ls [OPTIONS]")
    p.add_argument("-a", "--all", action="store_true", help="Show all stopped Compose projects")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")
    p.add_argument("--format", metavar="string", default="table",
                   help="Format the output. Values: [table | json]")
    c = p.parse_args(args)
    from kade.engine.composer import Composer
    projects: dict[str, dict] = {}
    for x in Composer(ctx.engine).list_containers({"com.docker.compose.project": None}):
        name = x["labels"]["com.docker.compose.project"]
        entry = projects.setdefault(name, {"Name": name, "states": {}, "ConfigFiles":
                                           x["labels"].get("com.docker.compose.project."
                                                           "config_files", "")})
        entry["states"][x["status"]] = entry["states"].get(x["status"], 0) + 1
    rows = []
    for name in sorted(projects):
        e = projects[name]
        if not c.all and "running" not in e["states"]:
            continue
        status = ", ".join(f"{k}({v})" for k, v in sorted(e["states"].items()))
        rows.append({"Name": name, "Status": status, "ConfigFiles": e["ConfigFiles"]})
    if c.quiet:
        sys.stdout.write("".join(r["Name"] + "\n" for r in rows))
    elif c.format == "json":
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        table = [["NAME", "STATUS", "CONFIG FILES"]] + [[r["Name"], r["Status"],
                                                         r["ConfigFiles"]] for r in rows]
        widths = [max(len(r[i]) for r in table) for i in range(3)]
        sys.stdout.write("".join("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                                 + "\n" for r in table))
    return 0


def events(ctx, ns, args):
    p = _parser("events", "[OPTIONS] [SERVICE...]")
    p.add_argument("--json", action="store_true", help="Output events as a stream of json objects")
    c = p.parse_args(args)
    a = _load(ctx, ns, c.services)
    for ev in a.backend.events(0.0, follow=True):
        attrs = dict(ev.get("Actor", {}).get("Attributes") or {})
        if ev.get("Type") != "container" or attrs.get("com.docker.compose.project") != \
                a.project.name:
            continue
        service = attrs.get("com.docker.compose.service", "")
        if c.services and service not in c.services:
            continue
        out = {"time": ev.get("time"), "type": "container", "action": ev.get("Action"),
               "id": ev.get("id"), "service": service, "attributes": attrs}
        if c.json:
            sys.stdout.write(json.dumps(out) + "\n")
        else:
            sys.stdout.write(f"{out['time']} container {out['action']} {out['id']} "
                             f"({', '.join(f'{k}={v}' for k, v in sorted(attrs.items()))})\n")
        sys.stdout.flush()
    return 0


def version(ctx, ns, args):
    p = ArgParser("compose version", "kade compose version [OPTIONS]")
    p.add_argument("--short", action="store_true", help="Shows only Compose's version number")
    p.add_argument("-f", "--format", metavar="string", default="pretty",
                   help='Format the output. Values: [pretty | json]')
    c = p.parse_args(args)
    from kade.compose.convert import COMPOSE_VERSION
    if c.short:
        sys.stdout.write(COMPOSE_VERSION + "\n")
    elif c.format == "json":
        sys.stdout.write(json.dumps({"version": "v" + COMPOSE_VERSION}) + "\n")
    else:
        sys.stdout.write(f"Kade Compose version v{COMPOSE_VERSION}\n")
    return 0


__all__ = ["prefix_of"]
