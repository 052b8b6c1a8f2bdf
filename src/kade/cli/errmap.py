"""The one place where library errors become messages and docker's exit codes.

125: Kade itself failed (bad flag, unknown image, conflict, ...)
126: the container's command cannot be invoked
127: the container's command was not found
"""

from __future__ import annotations

import os
import sys

from kade import errors
from kade.cli.flags import FlagParser, UsageError  # noqa: F401 - re-exported


# docker's flag grammar; argparse's spelling of add_argument (see kade.cli.flags)
ArgParser = FlagParser


EXIT = [
    (errors.CommandNotFound, 127),
    (errors.CommandNotInvocable, 126),
]


# docker exits 125 when `run`/`create` fail before the container runs, and 1 when
# any other verb gets an error back from the engine
ENGINE_FAILURE = {"run": 125, "create": 125}
# verbs whose engine errors carry docker's "Error response from daemon:" prefix
DAEMON_PREFIX = {"cp", "diff", "export", "commit", "top", "stats", "port"}


class Failed(Exception):
    """An error docker's client reports itself: printed as is, exit 1."""


def code_for(e: BaseException, verb: str = "run") -> int:
    for cls, code in EXIT:
        if isinstance(e, cls):
            return code
    return ENGINE_FAILURE.get(verb, 1)


def run_verb(fn, ctx, verb: str, args: list[str]) -> int:
    try:
        return fn(ctx, verb, args) or 0
    except UsageError as e:
        sys.stderr.write(f"{e}\nSee 'kade {verb} --help'.\n")
        return 125
    except Failed as e:
        sys.stderr.write(f"{e}\n")
        return 1
    except errors.KadeError as e:
        prefix = "Error response from daemon:" if verb in DAEMON_PREFIX else "Error:"
        sys.stderr.write(f"{prefix} {e}\n")
        return code_for(e, verb)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except PermissionError as e:
        if os.geteuid() != 0:
            sys.stderr.write(f"Error: {e}: kade needs root\n")
            return 125
        raise
