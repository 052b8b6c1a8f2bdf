"""Dockerfile builds (row 5 of docs/ARCHITECTURE.md): imports only rows below it.

Each module about one thing:

    parser.py        Dockerfile text -> [Instruction], as BuildKit's parser does it:
                     directives (# syntax/escape/check), continuations, JSON vs shell
                     form, flags, heredocs; DockerfileError names file and line.
    instructions.py  parsed nodes -> checked Commands: flags, argument counts and
                     docker's messages, before anything runs.
    stages.py        the stage graph: meta ARGs, stages, what each depends on
                     (FROM, COPY --from, RUN --mount from=), what a --target needs.
    shell.py         docker's shell lexer (BuildKit shell/lex.go): $VAR and ${VAR...}
                     substitution, quotes, escapes.
    dockerignore.py  .dockerignore rules (moby/patternmatcher) and NAME.dockerignore.
    context.py       the build context: sources by name or pattern, never outside it;
                     their checksum (content and metadata, no mtimes).
    builder.py       stages -> images, step by step, each step cached by key; drives
                     the engine through the Backend protocol (engine/build.py).
    backend.py       the seam: RunRequest, CopyRequest, StepFailed, and the Backend
                     and Progress protocols (for type checkers only: no typing import).
"""

from kade.build.backend import CopyRequest, RunRequest, StepFailed
from kade.build.builder import BuildOptions, Builder

__all__ = ["BuildOptions", "Builder", "CopyRequest", "RunRequest", "StepFailed"]
