"""`kade [--root DIR] [--storage-driver D] VERB ...`: dispatch to one module per verb.

Verb modules are imported only when used, so `kade ps` loads none of the
image, build or runtime machinery it does not need.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not `from typing`: every command starts here
if TYPE_CHECKING:
    from kade.engine.core import Engine

# verb -> module under kade.cli; "group sub" entries are docker's management commands
VERBS = {
    "run": "run", "create": "run", "start": "lifecycle", "stop": "lifecycle",
    "restart": "lifecycle", "kill": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle",
    "wait": "lifecycle", "rm": "lifecycle", "rename": "lifecycle",
    "ps": "ps", "logs": "logs", "inspect": "inspect", "exec": "exec_", "top": "top",
    "stats": "top", "port": "top", "events": "events", "cp": "files", "diff": "files",
    "export": "files", "commit": "files",
    "images": "images", "rmi": "images", "tag": "images", "history": "images",
    "import": "images", "save": "images", "load": "images",
    "volume": "volume", "network": "network",
    "runtime": "runtime_", "system": "system", "version": "system",
    "info": "system", "pull": "pull", "push": "push", "login": "login", "logout": "login",
    "registry": "registry", "build": "build", "builder": "build", "compose": "compose",
}
GROUPS = {
    "container": {"ls": "ps", "list": "ps", "ps": "ps", "run": "run", "create": "create",
                  "start": "start", "stop": "stop", "restart": "restart", "kill": "kill",
                  "pause": "pause", "unpause": "unpause", "wait": "wait", "rm": "rm",
                  "remove": "rm", "rename": "rename", "logs": "logs", "inspect": "inspect",
                  "exec": "exec", "top": "top", "stats": "stats", "port": "port", "cp": "cp",
                  "diff": "diff", "export": "export", "commit": "commit", "prune": "prune"},
    "image": {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag",
              "history": "history", "import": "import", "save": "save", "load": "load",
              "inspect": "inspect", "prune": "prune", "bootstrap": "bootstrap",
              "pull": "pull", "push": "push", "build": "build", "layers": "layers"},
    "builder": {"prune": "prune", "build": "build"},
}

# groups whose module takes the subcommand itself: the names it knows
OWN_GROUPS = {
    "volume": ("create", "ls", "list", "inspect", "rm", "remove", "prune"),
    "network": ("create", "ls", "list", "inspect", "rm", "remove", "prune", "connect",
                "disconnect"),
    "system": ("df", "prune", "check", "info", "monitor", "service"),
    "registry": ("serve", "gc", "garbage-collect"),
}


class Context:
    """What every verb gets: where the store is, and the engine on demand."""

    def __init__(self, root: str | None, driver: str | None):
        self.root = root
        self.driver = driver
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from kade.engine import Engine
            self._engine = Engine(self.root, self.driver)
        return self._engine


def _globals(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    root = driver = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in ("--root", "--storage-driver", "-H", "--host"):
            if not eq:
                i += 1
                if i >= len(argv):
                    raise SystemExit(_usage_error(f"flag needs an argument: {key}"))
                value = argv[i]
            if key == "--root":
                root = value
            elif key == "--storage-driver":
                driver = value
        elif arg in ("-v", "--version"):
            return root, driver, ["version", "--short"]
        elif arg in ("-h", "--help"):
            return root, driver, ["help"]
        elif arg in ("-D", "--debug"):
            os.environ["KADE_DEBUG"] = "1"
        else:
            raise SystemExit(_usage_error(f"unknown flag: {key}"))
        i += 1
    return root, driver, argv[i:]


def _usage_error(msg: str) -> int:
    from kade.util.escape import escape
    sys.stderr.write(f"{escape(msg)}\nSee 'kade --help'.\n")
    return 125


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root, driver, rest = _globals(argv)
    if not rest or rest[0] == "help":
        from kade.cli.usage import root_help
        sys.stdout.write(root_help())
        return 0
    verb, args = rest[0], rest[1:]
    if verb in OWN_GROUPS and (not args or args[0] not in OWN_GROUPS[verb]):
        from kade.cli.usage import group_usage
        return group_usage(verb, args)
    if verb in GROUPS:
        sub = GROUPS[verb].get(args[0]) if args else None
        if sub is None:
            from kade.cli.usage import group_usage
            return group_usage(verb, args)
        if sub in ("prune", "bootstrap") or (verb == "image" and sub in ("inspect", "layers")):
            verb, args = f"{verb} {sub}", args[1:]
        else:
            verb, args = sub, args[1:]
    module = VERBS.get(verb.split()[0] if " " in verb else verb)
    if " " in verb:
        module = {"container": "lifecycle", "image": "images",
                  "builder": "build"}[verb.split()[0]] if verb != "image layers" else "layers"
    if module is None:  # docker's words and exit code for an unknown command
        from kade.util.escape import escape
        sys.stderr.write(f"kade: '{escape(verb)}' is not a kade command.\nSee 'kade --help'\n")
        return 1
    from kade.cli.errmap import run_verb
    name = f"kade.cli.{module}"
    __import__(name)  # not importlib.import_module: importlib imports warnings
    mod = sys.modules[name]
    code = run_verb(mod.main, Context(root, driver), verb, args)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


def entry() -> None:
    code = main()
    if _needs_teardown():
        sys.exit(code)
    # Nothing but stdio to finish: leave without the interpreter's teardown of every
    # module and object, 3-4 ms of a `kade ps`. An open SQLite connection needs no
    # close: every transaction has committed by now, and SQLite is built to be left
    # at any moment (the WAL is checkpointed by a later writer, never lost).
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


def _needs_teardown() -> bool:
    """Whether leaving with os._exit would skip work: threads to join, temporary
    files to remove, atexit callbacks to run."""
    if "threading" in sys.modules or "tempfile" in sys.modules:
        return True
    import atexit  # built in: no import cost
    count = getattr(atexit, "_ncallbacks", None)
    return count is None or count() > 0
