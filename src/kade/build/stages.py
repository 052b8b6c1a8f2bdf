"""The stage graph: a Dockerfile's FROM sections, what each needs, what a target needs.

    ARG BASE=busybox        <- meta ARG: usable in FROM lines only (unless redeclared)
    FROM $BASE AS build     <- stage 0, "build"
    RUN make
    FROM busybox            <- stage 1: COPY --from=build makes it depend on stage 0
    COPY --from=build /out /

A stage depends on the stages its FROM, COPY --from and RUN --mount from= name
(by name or by index, earlier stages only); anything else they name is an image.
Only the stages the target needs are built, the independent ones in parallel.
"""

from __future__ import annotations

from kade.util.record import field, record as dataclass

from kade.build.instructions import Command, parse_mount
from kade.build.parser import DockerfileError
from kade.build.shell import Lexer

__all__ = ["Stage", "Plan", "plan", "needed"]


@dataclass
class Stage:
    index: int
    name: str | None  # lower case, as docker compares them
    base: str  # FROM's image word after meta-ARG substitution
    platform: str | None
    from_cmd: Command
    commands: list[Command] = field(default_factory=list)
    deps: set[int] = field(default_factory=set)  # indexes of the stages it needs

    @property
    def label(self) -> str:
        """How the step log names it: its name, else stage-N."""
        return self.name or f"stage-{self.index}"


@dataclass
class Plan:
    meta_args: list[Command]
    stages: list[Stage]
    meta_env: dict[str, str]  # meta ARG values after --build-arg, for FROM lines


def plan(commands: list[Command], build_args: dict[str, str], escape: str = "\\",
         builtin: dict[str, str] | None = None) -> Plan:
    """Split checked commands into stages; raises DockerfileError."""
    meta: list[Command] = []
    stages: list[Stage] = []
    lexer = Lexer(escape)
    meta_env = dict(builtin or {})
    for c in commands:
        if c.cmd == "FROM":
            stages.append(_stage(c, len(stages), lexer, meta_env, stages))
        elif not stages:
            if c.cmd != "ARG":
                raise c.error("no build stage in current context")
            meta.append(c)
            _declare(c, lexer, meta_env, build_args)
        else:
            stages[-1].commands.append(c)
    if not stages:
        raise DockerfileError(commands[0].filename if commands else "Dockerfile", 0,
                              "the Dockerfile has no FROM instruction: nothing to build")
    for stage in stages:
        _link(stage, stages, lexer, meta_env)
    return Plan(meta, stages, meta_env)


def _declare(c: Command, lexer: Lexer, env: dict[str, str], build_args: dict[str, str]) -> None:
    for word in c.args:
        name, eq, default = word.partition("=")
        if name in build_args:
            env[name] = build_args[name]
        elif eq:
            env[name] = lexer.process_word(default, env)
        # no default and no --build-arg: unset (not ""), so ${NAME-x} gives x


def _stage(c: Command, index: int, lexer: Lexer, meta_env: dict[str, str],
           earlier: list[Stage]) -> Stage:
    base = lexer.process_word(c.args[0], meta_env)
    if not base:
        raise c.error(f"base name ({c.args[0]}) should not be blank")
    name = c.args[2].lower() if len(c.args) == 3 else None
    if name is not None:
        if not _valid_name(name):
            raise c.error(f'invalid name for build stage: "{c.args[2]}", '
                          "name can't start with a number or contain symbols")
        if any(s.name == name for s in earlier):
            raise c.error(f'duplicate stage name "{name}"')
    platform = c.flags.get("platform")
    if platform:
        platform = lexer.process_word(platform, meta_env)
    return Stage(index, name, base, platform, c)


_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz")
_NAME_CHARS = _NAME_START | frozenset("0123456789._-")


def _valid_name(name: str) -> bool:
    """BuildKit's ^[a-z][a-z0-9-_.]*$ on the lower-cased name: ASCII only."""
    return bool(name) and name[0] in _NAME_START and all(ch in _NAME_CHARS for ch in name)


def find(stages: list[Stage], ref: str, before: int) -> Stage | None:
    """The stage a FROM, --from or from= word names, if it names one."""
    low = ref.lower()
    for s in stages[:before]:
        if s.name == low:
            return s
    if ref.isdigit():
        i = int(ref)
        if i < before:
            return stages[i]
    return None


def _link(stage: Stage, stages: list[Stage], lexer: Lexer, meta_env: dict[str, str]) -> None:
    base = find(stages, stage.base, stage.index)
    if base is not None and not stage.base.isdigit():
        stage.deps.add(base.index)
    for c in stage.commands:
        for ref in _refs(c, lexer, meta_env):
            s = find(stages, ref, stage.index)
            if s is not None:
                stage.deps.add(s.index)
            elif ref.isdigit():
                raise c.error(f"invalid from flag value {ref}: refers to current "
                              "build stage or a later one")


def _refs(c: Command, lexer: Lexer, env: dict[str, str]) -> list[str]:
    if c.cmd == "COPY" and c.flags.get("from"):
        return [lexer.process_word(c.flags["from"], env)]
    if c.cmd == "RUN":
        return [parse_mount(m)["from"] for m in c.flags.get("mount", [])
                if "from" in parse_mount(m)]
    return []


def needed(p: Plan, target: str | None) -> list[Stage]:
    """The stages to build for target (default: the last), in Dockerfile order."""
    if target:
        found = [s for s in p.stages if s.name == target.lower()]
        if not found:
            raise DockerfileError(p.stages[0].from_cmd.filename, 0,
                                  f"failed to reach build target {target} in Dockerfile")
        top = found[0]
    else:
        top = p.stages[-1]
    want = {top.index}
    for s in reversed(p.stages[:top.index + 1]):
        if s.index in want:
            want |= s.deps
    return [s for s in p.stages if s.index in want]
