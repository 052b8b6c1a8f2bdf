"""Parsed nodes to checked instructions: flags, argument counts, docker's messages.

The parser (parser.py) keeps every instruction's words as written; this layer
checks what BuildKit's `instructions` package checks before anything runs, so
that a Dockerfile with an unknown flag or a FROM with two words fails at once,
naming the file and line, and never half-way through a build:

    >>> from kade.build.parser import parse
    >>> cmds = check(parse("FROM busybox AS base\\nCOPY --chown=1:2 a /b/\\n"))
    >>> cmds[1].flags, cmds[1].args
    ({'chown': '1:2'}, ['a', '/b/'])

Variable substitution happens later, at dispatch, with the stage's environment.
"""

from __future__ import annotations

from kade.util.record import field, record as dataclass

from kade.build.parser import Dockerfile, DockerfileError, Heredoc, Instruction

__all__ = ["Command", "check", "check_one", "parse_mount", "NON_STEP"]

# flag name -> kind: "str", "bool" or "list" (repeatable)
_FLAGS: dict[str, dict[str, str]] = {
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str", "security": "str"},
    "COPY": {"from": "str", "chown": "str", "chmod": "str", "link": "bool",
             "parents": "bool", "exclude": "list"},
    "ADD": {"chown": "str", "chmod": "str", "link": "bool", "checksum": "str",
            "keep-git-dir": "bool", "exclude": "list"},
    "HEALTHCHECK": {"interval": "str", "timeout": "str", "start-period": "str",
                    "start-interval": "str", "retries": "str"},
}
# Instructions that need exactly one argument (after parsing).
_ONE_ARG = ("USER", "WORKDIR", "STOPSIGNAL")
# Instructions that are not build steps of their own in a stage (no history entry).
NON_STEP = ("FROM",)


@dataclass
class Command:
    """One checked instruction. `args` are the parser's words (exec-form array when
    `json`); `flags` maps a flag to its value (a list for repeatable ones)."""
    cmd: str
    args: list[str]
    flags: dict = field(default_factory=dict)
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    original: str = ""
    line: int = 0
    filename: str = "Dockerfile"
    sub: Command | None = None  # ONBUILD's trigger
    expand: bool = True  # False for the LABEL steps --label makes: values kept as given

    def error(self, message: str) -> DockerfileError:
        return DockerfileError(self.filename, self.line, message)


def check(df: Dockerfile, filename: str = "Dockerfile") -> list[Command]:
    """Every instruction of a parsed Dockerfile, checked; raises DockerfileError."""
    return [check_one(node, filename) for node in df.instructions]


def check_one(node: Instruction, filename: str = "Dockerfile") -> Command:
    def fail(message: str) -> DockerfileError:
        return DockerfileError(filename, node.start_line, message)
    flags = _parse_flags(node, fail)
    c = Command(node.cmd, list(node.args), flags, node.json, list(node.heredocs),
                node.original, node.start_line, filename)
    _CHECKS.get(node.cmd, _no_check)(c, node, fail)
    return c


def _parse_flags(node: Instruction, fail) -> dict:
    allowed = _FLAGS.get(node.cmd, {})
    out: dict = {}
    for word in node.flags:
        name, eq, value = word[2:].partition("=")
        kind = allowed.get(name)
        if kind is None:
            raise fail(f"unknown flag: {name}")
        if kind != "list" and name in out:  # only lists repeat (BuildKit's BFlags)
            raise fail(f"duplicate flag specified: {name}")
        if kind == "bool":
            if eq and not value:
                raise fail(f"missing a value on flag: {name}")
            if eq and value.lower() not in ("true", "false"):
                raise fail(f'expecting boolean value for flag {name}, not: {value}')
            out[name] = not eq or value.lower() == "true"
        elif not eq:
            raise fail(f"missing a value on flag: {name}")
        elif kind == "list":
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def _no_check(c: Command, node: Instruction, fail) -> None:
    if not c.args and c.cmd not in ("ONBUILD",) and not _empty_exec_form(c):
        raise fail(f"{c.cmd} requires at least one argument")


def _empty_exec_form(c: Command) -> bool:
    """`CMD []` and `ENTRYPOINT []`: docker's way to clear what the base image set."""
    return c.json and c.cmd in ("CMD", "ENTRYPOINT")


def _check_from(c: Command, node: Instruction, fail) -> None:
    if len(c.args) not in (1, 3) or (len(c.args) == 3 and c.args[1].lower() != "as"):
        raise fail("FROM requires either one or three arguments")


def _check_pairs(c: Command, node: Instruction, fail) -> None:
    if not c.args:
        raise fail(f"{c.cmd} requires at least one argument")
    if len(c.args) % 3:
        raise fail(f"{c.cmd} names can not be blank")
    for i in range(0, len(c.args), 3):
        if not c.args[i]:
            raise fail(f"{c.cmd} names can not be blank")
        if c.cmd == "ENV" and c.args[i + 2] == "" and c.args[i + 1] == "":
            raise fail("ENV must have two arguments")


def _check_arg(c: Command, node: Instruction, fail) -> None:
    _no_check(c, node, fail)
    if any(word.startswith("=") for word in c.args):
        raise fail("ARG names can not be blank")


def _check_one_arg(c: Command, node: Instruction, fail) -> None:
    if len(c.args) != 1:
        raise fail(f"{c.cmd} requires exactly one argument")


def _check_copy(c: Command, node: Instruction, fail) -> None:
    if len(c.args) < 2:
        raise fail(f"{c.cmd} requires at least two arguments, but only one was provided. "
                   "Destination could not be determined")


def _check_shell(c: Command, node: Instruction, fail) -> None:
    if not c.json:
        raise fail("SHELL requires the arguments to be in JSON form")
    if not c.args:
        raise fail("SHELL requires at least one argument")


def _check_health(c: Command, node: Instruction, fail) -> None:
    kind = c.args[0].upper() if c.args else ""
    if kind == "NONE":
        if len(c.args) > 1 or c.flags:
            raise fail("HEALTHCHECK NONE takes no arguments")
    elif kind != "CMD":
        raise fail(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    elif len(c.args) < 2:
        raise fail("Missing command after HEALTHCHECK CMD")


def _check_onbuild(c: Command, node: Instruction, fail) -> None:
    sub = node.sub
    if sub is None:
        raise fail("ONBUILD requires at least one argument")
    if sub.cmd == "ONBUILD":
        raise fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if sub.cmd in ("FROM", "MAINTAINER"):
        raise fail(f"{sub.cmd} isn't allowed as an ONBUILD trigger")
    c.sub = check_one(sub, c.filename)


def _check_run(c: Command, node: Instruction, fail) -> None:
    _no_check(c, node, fail)
    if c.flags.get("network", "default") not in ("default", "none", "host"):
        raise fail(f'invalid network mode "{c.flags["network"]}"')
    if c.flags.get("security", "sandbox") not in ("sandbox", "insecure"):
        raise fail(f'security "{c.flags["security"]}" is not valid')
    for spec in c.flags.get("mount", []):
        try:
            parse_mount(spec)
        except ValueError as e:
            raise fail(str(e)) from None


_CHECKS = {
    "FROM": _check_from, "ENV": _check_pairs, "LABEL": _check_pairs,
    "COPY": _check_copy, "ADD": _check_copy, "SHELL": _check_shell,
    "HEALTHCHECK": _check_health, "ONBUILD": _check_onbuild, "RUN": _check_run,
    "ARG": _check_arg,
    **{name: _check_one_arg for name in _ONE_ARG},
}


_MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_MOUNT_KEYS = {"type", "target", "dst", "destination", "source", "src", "from", "ro",
               "readonly", "rw", "readwrite", "id", "sharing", "mode", "uid", "gid",
               "required", "size", "env"}


_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_mount(spec: str) -> dict:
    """`type=cache,target=/root/.cache,sharing=locked` -> a dict, as BuildKit's
    RUN --mount parser reads it (csv fields, bare `ro`/`rw`/`required`). Booleans
    come out as "true" or "false"; type and sharing in lower case."""
    out: dict = {"type": "bind"}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise ValueError(f"unexpected key '{key}' in '{part}'")
        if key in ("ro", "readonly", "rw", "readwrite", "required"):
            value = _bool(key, value) if eq else "true"
        elif key in ("type", "sharing"):
            value = value.lower()
        if key in ("dst", "destination"):
            key = "target"
        elif key == "src":
            key = "source"
        elif key in ("readonly",):
            key = "ro"
        elif key in ("rw", "readwrite"):
            key, value = "ro", "false" if value == "true" else "true"
        out[key] = value
    if out["type"] not in _MOUNT_TYPES:
        raise ValueError(f"unsupported mount type {out['type']!r}")
    if out["type"] == "ssh":
        raise ValueError("RUN --mount=type=ssh is not supported by kade")
    if "target" not in out and out["type"] != "secret":
        raise ValueError("mount destination (target) must be specified")
    if out.get("sharing", "shared") not in ("shared", "private", "locked"):
        raise ValueError(f"unrecognized sharing mode {out['sharing']!r}")
    return out


def _bool(key: str, value: str) -> str:
    if value in _TRUE:
        return "true"
    if value in _FALSE:
        return "false"
    raise ValueError(f"invalid value for {key}: {value}")
