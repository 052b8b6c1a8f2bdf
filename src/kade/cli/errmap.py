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
from kade.util.escape import escape, escape_lines


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
DAEMON_PREFIX = {"cp", "diff", "export", "commit", "top", "stats", "port", "network"}


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
        sys.stderr.write(f"{escape_lines(str(e))}\nSee 'kade {verb} --help'.\n")
        return 125
    except Failed as e:
        sys.stderr.write(f"{escape_lines(str(e))}\n")
        return 1
    except errors.KadeError as e:
        prefix = "Error response from daemon:" if verb in DAEMON_PREFIX else "Error:"
        sys.stderr.write(f"{prefix} {escape(str(e))}\n")
        return code_for(e, verb)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except PermissionError as e:
        if os.geteuid() != 0:
            sys.stderr.write(f"Error: {escape(os_message(e))}: kade needs root\n")
            return 125
        return _last_resort(e, verb)
    except Exception as e:  # noqa: BLE001 - no traceback reaches a user, ever
        return _last_resort(e, verb)


def _last_resort(e: Exception, verb: str) -> int:
    """An error nothing above named: one line saying what failed, never a traceback
    (KADE_DEBUG=1 adds the traceback, for a bug report)."""
    if os.environ.get("KADE_DEBUG"):
        import traceback
        traceback.print_exc()
    sys.stderr.write(f"Error: {escape(describe(e))}\n")
    return code_for(e, verb)


def describe(e: BaseException) -> str:
    """One line for an exception Kade did not raise on purpose."""
    if isinstance(e, RecursionError):
        return "input nested too deeply: exceeded max depth"
    if isinstance(e, OSError):
        return os_message(e)
    text = str(e).strip() or type(e).__name__
    return f"unexpected {type(e).__name__}: {text}"


def os_message(e: OSError) -> str:
    """Go's spelling of a failed system call: `open /x: no space left on device`."""
    if e.errno is None:
        return str(e)
    reason = (e.strerror or os.strerror(e.errno)).lower()
    name = e.filename
    if name is None:
        return reason
    if e.filename2 is not None:
        name = f"{name} -> {e.filename2}"
    return f"{name}: {reason}"
